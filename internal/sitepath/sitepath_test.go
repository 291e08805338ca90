package sitepath

import (
	"path"
	"strings"
	"testing"
)

func TestDenied(t *testing.T) {
	tests := []struct {
		name string
		path string
		want bool
	}{
		{"home", "/", false},
		{"empty", "", false},
		{"image", "/wp-content/uploads/2026/a.jpg", false},
		{"css", "/wp-includes/css/a.css", false},
		{"permalink", "/hello-world/", false},
		{"well-known", "/.well-known/acme-challenge/tok", false},
		{"well-known any case", "/.Well-Known/security.txt", false},
		{"php source", "/wp-login.php", true},
		{"php upper case", "/wp-content/uploads/X.PHP", true},
		{"phtml", "/wp-content/uploads/x.phtml", true},
		{"phar", "/x.phar", true},
		{"php3", "/x.php3", true},
		{"php8", "/x.php8", true},
		{"phps", "/x.phps", true},
		{"inc", "/wp-includes/x.inc", true},
		{"sql dump", "/wp-content/uploads/x.sql", true},
		{"log", "/wp-content/debug.log", true},
		{"ini", "/php.ini", true},
		{"shell script", "/deploy.sh", true},
		{"htaccess", "/wp-content/uploads/.htaccess", true},
		{"htpasswd", "/.htpasswd", true},
		{"htaccess as extension", "/x.htaccess", true},
		{"dotfile", "/.env", true},
		{"dot directory", "/.git/config", true},
		{"dot directory deep", "/wp-content/.svn/entries", true},
		{"wp-config", "/wp-config.php", true},
		{"wp-config any case", "/WP-Config.PHP", true},
		{"wp-config in a directory", "/blog/wp-config.php", true},
		{"editor backup", "/wp-config.php~", true},
		{"save", "/wp-config.php.save", true},
		{"old", "/wp-config.old", true},
		{"orig", "/x.orig", true},
		{"bak", "/wp-content/uploads/x.php.bak", true},
		{"swp", "/.wp-config.php.swp", true},
		{"swp not a dotfile", "/wp-config.php.swp", true},
		{"swo", "/x.swo", true},
		{"emacs autosave", "/#wp-config.php#", true},
		{"single hash", "/#", false},
		{"cleaned traversal", "/wp-content/uploads/../../x.sql", true},
		{"traversal out of a dot dir", "/.git/../index.html", false},
		{"trailing slash", "/x.sql/", true},
		{"double slash", "//x.sql", true},
		{"extension only in a directory", "/backup.sql/a.jpg", false},
		{"similar extension", "/x.sqlite", false},
		{"old-ish name", "/gold", false},
		{"tilde in the middle", "/~user/a.jpg", false},
		{"no leading slash", "x.sql", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Denied(tt.path); got != tt.want {
				t.Errorf("Denied(%q) = %v, want %v", tt.path, got, tt.want)
			}
		})
	}
}

func FuzzDenied(f *testing.F) {
	for _, s := range []string{"/", "/a.jpg", "/x.sql", "/.htaccess", "/.well-known/x", "/wp-config.php~", "/#x#", "/a/../.git/x", "/X.PhTmL", "//a//b.bak/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		got := Denied(p)
		// Case never matters.
		if Denied(strings.ToUpper(p)) != got || Denied(strings.ToLower(p)) != got {
			t.Fatalf("Denied(%q) = %v depends on case", p, got)
		}
		// The decision is on the cleaned path.
		if Denied(path.Clean("/"+p)) != got {
			t.Fatalf("Denied(%q) = %v differs from the cleaned path", p, got)
		}
		// Whatever the directory, the same file name gets the same answer
		// (but for dot directories, which are denied themselves).
		c := path.Clean("/" + p)
		if base := path.Base(c); c != "/" && !strings.HasPrefix(base, ".") {
			if Denied("/dir/"+base) != Denied("/"+base) {
				t.Fatalf("Denied of %q depends on its directory", base)
			}
			if strings.HasSuffix(strings.ToLower(base), ".php") && !got {
				t.Fatalf("Denied(%q) = false for PHP source", p)
			}
		}
	})
}

func BenchmarkDenied(b *testing.B) {
	for b.Loop() {
		Denied("/wp-content/uploads/2026/05/some-image-1024x768.jpg")
	}
}
