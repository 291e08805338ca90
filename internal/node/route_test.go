package node

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func testRoot(t *testing.T) *os.Root {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"index.php":                        "<?php",
		"wp-login.php":                     "<?php",
		"wp-config.php":                    "<?php secret",
		"wp-admin/index.php":               "<?php",
		"wp-admin/css/login.css":           "css",
		"wp-content/uploads/2026/a.jpg":    "jpg",
		"wp-content/uploads/2026/evil.php": "<?php",
		"wp-content/debug.log":             "log",
		"readme.html":                      "html",
		".htaccess":                        "deny",
		".well-known/security.txt":         "txt",
		"docs/index.html":                  "html",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "passwd"), []byte("x"), 0o644)
	if err := os.Symlink(filepath.Join(outside, "passwd"), filepath.Join(dir, "escape.txt")); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	return root
}

func TestResolve(t *testing.T) {
	root := testRoot(t)
	tests := []struct {
		name string
		path string
		want route
	}{
		{"home", "/", route{kind: routePHP, script: "/index.php"}},
		{"pretty permalink", "/hello-world/", route{kind: routePHP, script: "/index.php"}},
		{"rest api", "/wp-json/wp/v2/posts", route{kind: routePHP, script: "/index.php"}},
		{"script", "/wp-login.php", route{kind: routePHP, script: "/wp-login.php"}},
		{"path info", "/index.php/wp/v2/posts", route{kind: routePHP, script: "/index.php", pathInfo: "/wp/v2/posts"}},
		{"missing script goes to wordpress", "/nope.php", route{kind: routePHP, script: "/index.php"}},
		{"dir index", "/wp-admin/", route{kind: routePHP, script: "/wp-admin/index.php"}},
		{"dir without slash", "/wp-admin", route{kind: routeRedirect}},
		{"static", "/wp-admin/css/login.css", route{kind: routeStatic, file: "wp-admin/css/login.css"}},
		{"upload", "/wp-content/uploads/2026/a.jpg", route{kind: routeStatic, file: "wp-content/uploads/2026/a.jpg"}},
		{"php in uploads never runs", "/wp-content/uploads/2026/evil.php", route{kind: routeForbidden}},
		{"wp-config hidden", "/wp-config.php", route{kind: routeNotFound}},
		{"wp-config via path info", "/wp-config.php/x", route{kind: routeNotFound}},
		{"dotfile", "/.htaccess", route{kind: routeNotFound}},
		{"well-known allowed", "/.well-known/security.txt", route{kind: routeStatic, file: ".well-known/security.txt"}},
		{"log not served", "/wp-content/debug.log", route{kind: routeNotFound}},
		{"traversal cleaned inside root", "/wp-admin/../readme.html", route{kind: routeStatic, file: "readme.html"}},
		{"traversal above root", "/../../etc/passwd", route{kind: routePHP, script: "/index.php"}},
		{"symlink escape", "/escape.txt", route{kind: routeNotFound}},
		{"nul byte", "/index.php\x00.jpg", route{kind: routeNotFound}},
		{"backslash", "/..\\..\\etc", route{kind: routeNotFound}},
		{"relative", "index.php", route{kind: routeNotFound}},
		{"static index.html", "/docs/", route{kind: routeStatic, file: "docs/index.html"}},
		{"php-looking dir segment", "/foo.phpx/bar", route{kind: routePHP, script: "/index.php"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := resolve(root, tt.path)
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(route{})); diff != "" {
				t.Errorf("resolve(%q) (-want +got):\n%s", tt.path, diff)
			}
		})
	}
}

func FuzzResolve(f *testing.F) {
	for _, s := range []string{"/", "/wp-login.php", "/a/../../b", "/.git/config", "/x.php/y", "/wp-content/uploads/a.php"} {
		f.Add(s)
	}
	root := testRootF(f)
	f.Fuzz(func(t *testing.T, p string) {
		r := resolve(root, p)
		if r.kind == routeStatic {
			if filepath.Base(r.file) == "wp-config.php" || filepath.Ext(r.file) == ".php" {
				t.Fatalf("resolve(%q) serves %q as a file", p, r.file)
			}
			if _, err := root.Stat(r.file); err != nil {
				t.Fatalf("resolve(%q) serves %q which the root cannot open: %v", p, r.file, err)
			}
		}
		if r.kind == routePHP && (r.script == "" || r.script[0] != '/') {
			t.Fatalf("resolve(%q) gives script %q", p, r.script)
		}
	})
}

func testRootF(f *testing.F) *os.Root {
	dir := f.TempDir()
	os.WriteFile(filepath.Join(dir, "index.php"), []byte("<?php"), 0o644)
	os.WriteFile(filepath.Join(dir, "wp-config.php"), []byte("<?php"), 0o644)
	os.WriteFile(filepath.Join(dir, "a.css"), []byte("x"), 0o644)
	root, err := os.OpenRoot(dir)
	if err != nil {
		f.Fatal(err)
	}
	return root
}
