package node

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/scalepress/scalepress/internal/sitepath"
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
		{"pretty permalink", "/hello-world/", route{kind: routePHP, script: "/index.php", missing: true}},
		{"rest api", "/wp-json/wp/v2/posts", route{kind: routePHP, script: "/index.php", missing: true}},
		{"script", "/wp-login.php", route{kind: routePHP, script: "/wp-login.php"}},
		{"path info", "/index.php/wp/v2/posts", route{kind: routePHP, script: "/index.php", pathInfo: "/wp/v2/posts"}},
		{"missing script goes to wordpress", "/nope.php", route{kind: routePHP, script: "/index.php", missing: true}},
		{"dir index", "/wp-admin/", route{kind: routePHP, script: "/wp-admin/index.php"}},
		{"dir without slash", "/wp-admin", route{kind: routeRedirect}},
		{"static", "/wp-admin/css/login.css", route{kind: routeStatic, file: "wp-admin/css/login.css"}},
		{"upload", "/wp-content/uploads/2026/a.jpg", route{kind: routeStatic, file: "wp-content/uploads/2026/a.jpg"}},
		{"php in uploads never runs", "/wp-content/uploads/2026/evil.php", route{kind: routeForbidden}},
		{"wp-config hidden", "/wp-config.php", route{kind: routeForbidden}},
		{"wp-config any case", "/WP-CONFIG.php", route{kind: routeForbidden}},
		{"wp-config via path info", "/wp-config.php/x", route{kind: routeForbidden}},
		{"dotfile", "/.htaccess", route{kind: routeForbidden}},
		{"dot directory", "/.git/config", route{kind: routeForbidden}},
		{"script in a dot directory", "/.git/x.php", route{kind: routeForbidden}},
		{"php in uploads that does not exist", "/wp-content/uploads/2026/nope.php", route{kind: routeForbidden}},
		{"php in uploads upper case", "/wp-content/uploads/2026/EVIL.PHP", route{kind: routeForbidden}},
		{"uploads path any case", "/WP-Content/Uploads/2026/evil.php", route{kind: routeForbidden}},
		{"sql in uploads, missing", "/wp-content/uploads/x.sql", route{kind: routeForbidden}},
		{"log in uploads, missing", "/wp-content/uploads/x.log", route{kind: routeForbidden}},
		{"htaccess in uploads, missing", "/wp-content/uploads/.htaccess", route{kind: routeForbidden}},
		{"phtml in uploads, missing", "/wp-content/uploads/x.phtml", route{kind: routeForbidden}},
		{"editor backup, missing", "/wp-config.php~", route{kind: routeForbidden}},
		{"backup copy of php", "/wp-content/uploads/x.php.bak", route{kind: routeForbidden}},
		{"well-known allowed", "/.well-known/security.txt", route{kind: routeStatic, file: ".well-known/security.txt"}},
		{"log not served", "/wp-content/debug.log", route{kind: routeForbidden}},
		{"traversal cleaned inside root", "/wp-admin/../readme.html", route{kind: routeStatic, file: "readme.html"}},
		{"traversal above root", "/../../etc/passwd", route{kind: routePHP, script: "/index.php", missing: true}},
		{"symlink escape", "/escape.txt", route{kind: routeNotFound}},
		{"nul byte", "/index.php\x00.jpg", route{kind: routeNotFound}},
		{"backslash", "/..\\..\\etc", route{kind: routeNotFound}},
		{"relative", "index.php", route{kind: routeNotFound}},
		{"static index.html", "/docs/", route{kind: routeStatic, file: "docs/index.html"}},
		{"directory without an index", "/wp-content/", route{kind: routePHP, script: "/index.php", missing: true}},
		{"php-looking dir segment", "/foo.phpx/bar", route{kind: routePHP, script: "/index.php", missing: true}},
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
			if filepath.Base(r.file) == "wp-config.php" || filepath.Ext(r.file) == ".php" || sitepath.Denied("/"+r.file) {
				t.Fatalf("resolve(%q) serves %q as a file", p, r.file)
			}
			if _, err := root.Stat(r.file); err != nil {
				t.Fatalf("resolve(%q) serves %q which the root cannot open: %v", p, r.file, err)
			}
		}
		if r.kind == routePHP && underUploads(r.script) {
			t.Fatalf("resolve(%q) runs %q from uploads", p, r.script)
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

func TestRunnable(t *testing.T) {
	dir := t.TempDir()
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"index.php":                            "<?php",
		"wp-content/plugins/p/p.php":           "<?php",
		"wp-content/uploads/2026/evil.php":     "<?php",
		"shared/uploads/2026/evil2.php":        "<?php",
		"other/wp-content/uploads/ok-here.php": "<?php",
	} {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "x.php"), []byte("<?php"), 0o644)
	links := map[string]string{
		"link.php":                     "wp-content/uploads/2026/evil.php", // a file link into uploads
		"wp-content/plugins/dir":       "../uploads/2026",                  // a directory link into uploads
		"wp-content/plugins/p/out.php": filepath.Join(outside, "x.php"),    // out of the docroot
		"good.php":                     "wp-content/plugins/p/p.php",       // a link that stays outside uploads
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name, script, wantFile string
		wantOK                 bool
	}{
		{"plain script", "/index.php", "/index.php", true},
		{"plugin script", "/wp-content/plugins/p/p.php", "/wp-content/plugins/p/p.php", true},
		{"link to a plugin script runs it", "/good.php", "/wp-content/plugins/p/p.php", true},
		{"upload", "/wp-content/uploads/2026/evil.php", "", false},
		{"link into uploads", "/link.php", "", false},
		{"directory link into uploads", "/wp-content/plugins/dir/evil.php", "", false},
		{"link out of the docroot", "/wp-content/plugins/p/out.php", "", false},
		{"missing", "/nope.php", "", false},
		{"uploads elsewhere is another directory", "/other/wp-content/uploads/ok-here.php", "/other/wp-content/uploads/ok-here.php", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file, ok := runnable(real, tt.script)
			want := ""
			if tt.wantFile != "" {
				want = real + tt.wantFile
			}
			if ok != tt.wantOK || file != want {
				t.Errorf("runnable(%q) = %q, %v; want %q, %v", tt.script, file, ok, want, tt.wantOK)
			}
		})
	}
	// uploads itself a link (to a shared disk inside the docroot here)
	os.RemoveAll(filepath.Join(dir, "wp-content/uploads"))
	if err := os.Symlink("../shared/uploads", filepath.Join(dir, "wp-content/uploads")); err != nil {
		t.Fatal(err)
	}
	if file, ok := runnable(real, "/shared/uploads/2026/evil2.php"); ok {
		t.Errorf("runnable runs %q in the linked uploads directory", file)
	}
}
