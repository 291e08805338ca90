package release

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCoreVersion(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"debian", "<?php\n/**\n * @global string $wp_version\n */\n$wp_version = '6.1.9';\n$wp_db_version = 53496;\n", "6.1.9"},
		{"double quotes", "<?php\n$wp_version = \"6.2-RC1\";\n", "6.2-RC1"},
		{"only a comment", "<?php\n// $wp_version is set elsewhere\n", ""},
		{"none", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CoreVersion([]byte(tt.in)); got != tt.want {
				t.Errorf("CoreVersion = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestHeader(t *testing.T) {
	plugin := "<?php\n/**\n * Plugin Name: Akismet Anti-spam\n * Version: 5.0.2\n * Author: Automattic\n */\n"
	theme := "/*\nTheme Name: Twenty Twenty-Three\nVersion: 1.0\n*/\n"
	tests := []struct {
		name, data, field, want string
	}{
		{"plugin name", plugin, "Plugin Name", "Akismet Anti-spam"},
		{"plugin version", plugin, "Version", "5.0.2"},
		{"theme", theme, "Theme Name", "Twenty Twenty-Three"},
		{"theme version", theme, "Version", "1.0"},
		{"case", "<?php\n// plugin name: x\n", "Plugin Name", "x"},
		{"absent", plugin, "Theme Name", ""},
		{"beyond 8 KiB", strings.Repeat("x", 9000) + "\nPlugin Name: late\n", "Plugin Name", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Header([]byte(tt.data), tt.field); got != tt.want {
				t.Errorf("Header(%q) = %q, want %q", tt.field, got, tt.want)
			}
		})
	}
}

func TestCompare(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"6.1.9", "6.1.10", -1},
		{"6.2", "6.1.9", 1},
		{"6.2", "6.2.0", 0},
		{"6.2-RC1", "6.2", -1},
		{"6.2-beta2", "6.2-RC1", -1},
		{"1.0.0", "1.0.0", 0},
		{"10.0", "9.9", 1},
	}
	for _, tt := range tests {
		t.Run(tt.a+"_vs_"+tt.b, func(t *testing.T) {
			if got := Compare(tt.a, tt.b); got != tt.want {
				t.Errorf("Compare(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
			}
			if got := Compare(tt.b, tt.a); got != -tt.want {
				t.Errorf("Compare(%q, %q) = %d, want %d", tt.b, tt.a, got, -tt.want)
			}
		})
	}
	if got := Major("6.1.9"); got != "6.1" {
		t.Errorf("Major = %q", got)
	}
}

func TestUnitOf(t *testing.T) {
	tests := []struct{ path, want string }{
		{"wp-includes/version.php", "wp-includes"},
		{"wp-includes", "wp-includes"},
		{"wp-admin/css/a.css", "wp-admin"},
		{"index.php", ""},
		{"wp-content/plugins/akismet", "wp-content/plugins/akismet"},
		{"wp-content/plugins/akismet/akismet.php", "wp-content/plugins/akismet"},
		{"wp-content/plugins/hello.php", ""},
		{"wp-content/themes/twentytwentythree/style.css", "wp-content/themes/twentytwentythree"},
	}
	for _, tt := range tests {
		if got := UnitOf(tt.path); got != tt.want {
			t.Errorf("UnitOf(%q) = %q, want %q", tt.path, got, tt.want)
		}
	}
	for p, want := range map[string]bool{
		"wp-config.php": false, "robots.txt": false, "wp-login.php": true, "xmlrpc.php": true,
		"wp-content/uploads/a.jpg": false, "wp-content/plugins": false, "wp-content/plugins/x/y.php": true,
	} {
		if got := Managed(p); got != want {
			t.Errorf("Managed(%q) = %v, want %v", p, got, want)
		}
	}
}

func f(p, hash string) File { return File{Path: p, Mode: 0o644, Size: 1, Hash: hash} }
func d(p string) File       { return File{Path: p, Dir: true, Mode: 0o755} }

func TestPlan(t *testing.T) {
	from := []File{
		f("index.php", "a"), f("readme.html", "r"), f("wp-old.php", "o"),
		d("wp-content/plugins/akismet"), f("wp-content/plugins/akismet/akismet.php", "k1"), f("wp-content/plugins/akismet/gone.php", "g"),
		d("wp-content/plugins/keep"), f("wp-content/plugins/keep/keep.php", "k"),
		d("wp-includes"), f("wp-includes/version.php", "v1"), f("wp-includes/same.php", "s"),
	}
	to := []File{
		f("index.php", "a"), f("readme.html", "r2"),
		d("wp-content/plugins/akismet"), f("wp-content/plugins/akismet/akismet.php", "k2"),
		d("wp-content/plugins/keep"), f("wp-content/plugins/keep/keep.php", "k"),
		d("wp-includes"), f("wp-includes/version.php", "v2"), f("wp-includes/same.php", "s"),
	}
	want := []Step{
		{Unit: "wp-includes", Put: []File{d("wp-includes"), f("wp-includes/same.php", "s"), f("wp-includes/version.php", "v2")}},
		{Unit: "", Put: []File{f("readme.html", "r2")}, Remove: []string{"wp-old.php"}},
		{Unit: "wp-content/plugins/akismet", Put: []File{d("wp-content/plugins/akismet"), f("wp-content/plugins/akismet/akismet.php", "k2")},
			Remove: []string{"wp-content/plugins/akismet/gone.php"}},
	}
	if diff := cmp.Diff(want, Plan(from, to)); diff != "" {
		t.Errorf("Plan (-want +got):\n%s", diff)
	}
	if got := Plan(to, to); len(got) != 0 {
		t.Errorf("Plan of a tree to itself = %v, want no steps", got)
	}
	// A unit that goes away entirely is removed, deepest first.
	gone := Plan(from, Filter(from, func(p string) bool { return !within(p, "wp-content/plugins/keep") }))
	if diff := cmp.Diff([]Step{{Unit: "wp-content/plugins/keep", Remove: []string{"wp-content/plugins/keep/keep.php", "wp-content/plugins/keep"}}}, gone); diff != "" {
		t.Errorf("Plan removing a plugin (-want +got):\n%s", diff)
	}
}

// memStore is a Put that keeps content in memory.
type memStore map[string][]byte

func (m memStore) put(r io.Reader) (string, int64, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return "", 0, err
	}
	h := sha(b)
	m[h] = b
	return h, int64(len(b)), nil
}

func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

const versionPHP = "<?php\n$wp_version = '6.1.10';\n"

func coreFiles() map[string]string {
	return map[string]string{
		"wordpress/index.php":                "<?php // front",
		"wordpress/wp-login.php":             "<?php // login",
		"wordpress/wp-config.php":            "<?php // never a release's",
		"wordpress/wp-includes/version.php":  versionPHP,
		"wordpress/wp-admin/index.php":       "<?php // admin",
		"wordpress/wp-content/index.php":     "<?php // silence",
		"wordpress/wp-content/themes/x.css":  "/* not core's */",
		"wordpress/license.txt":              "GPL",
		"wordpress/wp-admin/css/install.css": "body{}",
	}
}

func TestLoadCoreDir(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, coreFiles())
	m := memStore{}
	st, err := Load(filepath.Join(dir, "wordpress"), KindCore, "", DefaultLimits(), m.put)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, f := range st.Files {
		paths = append(paths, f.Path)
		if f.Dir && f.Mode != 0o755 || !f.Dir && f.Mode != 0o644 {
			t.Errorf("%s: mode %o, want 0755 for directories and 0644 for files", f.Path, f.Mode)
		}
	}
	want := []string{"index.php", "license.txt", "wp-admin", "wp-admin/css", "wp-admin/css/install.css", "wp-admin/index.php",
		"wp-includes", "wp-includes/version.php", "wp-login.php"}
	if diff := cmp.Diff(want, paths); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	if got := Inspect(st.Files, st.Content).Core; got != "6.1.10" {
		t.Errorf("core version %q, want 6.1.10", got)
	}
}

func zipOf(t *testing.T, entries []zipEntry) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "x.zip")
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		h.SetMode(e.mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, e.content)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

type zipEntry struct {
	name    string
	mode    os.FileMode
	content string
}

func tgzOf(t *testing.T, hdrs []*tar.Header, contents []string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "x.tar.gz")
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for i, h := range hdrs {
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(contents[i]))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			io.WriteString(tw, contents[i])
		}
	}
	tw.Close()
	gz.Close()
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const pluginMain = "<?php\n/*\n * Plugin Name: Demo\n * Version: 2.0\n */\n"

func TestLoadPlugin(t *testing.T) {
	z := zipOf(t, []zipEntry{
		{"demo/", os.ModeDir | 0o755, ""},
		{"demo/demo.php", 0o600, pluginMain},
		{"demo/inc/a.php", 0o755, "<?php"},
	})
	m := memStore{}
	st, err := Load(z, KindPlugin, "demo", DefaultLimits(), m.put)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, f := range st.Files {
		paths = append(paths, f.Path)
	}
	want := []string{"wp-content/plugins/demo", "wp-content/plugins/demo/demo.php", "wp-content/plugins/demo/inc", "wp-content/plugins/demo/inc/a.php"}
	if diff := cmp.Diff(want, paths); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	inv := Inspect(st.Files, st.Content)
	if diff := cmp.Diff([]Component{{Name: "demo", Title: "Demo", Version: "2.0"}}, inv.Plugins); diff != "" {
		t.Errorf("plugins (-want +got):\n%s", diff)
	}
}

// TestLoadRefuses: every source that is not what it claims, or that would
// write outside its directory, is refused with ErrBadSource and a message
// naming the entry, before anything is stored for it.
func TestLoadRefuses(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, filepath.Join(dir, "notwp"), map[string]string{"index.php": "<?php"})
	writeTree(t, filepath.Join(dir, "linked"), coreFiles())
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "linked", "wordpress", "wp-admin", "passwd.txt")); err != nil {
		t.Fatal(err)
	}
	writeTree(t, filepath.Join(dir, "nover"), map[string]string{"wp-includes/version.php": "<?php // no version"})
	writeTree(t, filepath.Join(dir, "noplugin"), map[string]string{"readme.txt": "hi", "x.php": "<?php"})
	tests := []struct {
		name string
		from string
		kind Kind
		plug string
		lim  Limits
		want string
	}{
		{"not wordpress", filepath.Join(dir, "notwp"), KindCore, "", DefaultLimits(), "is not WordPress: it has no wp-includes/version.php"},
		{"symlink in a directory", filepath.Join(dir, "linked", "wordpress"), KindCore, "", DefaultLimits(), "wp-admin/passwd.txt is a symlink"},
		{"no version", filepath.Join(dir, "nover"), KindCore, "", DefaultLimits(), "assigns no $wp_version"},
		{"not a plugin", filepath.Join(dir, "noplugin"), KindPlugin, "demo", DefaultLimits(), "is not a WordPress plugin"},
		{"bad plugin name", filepath.Join(dir, "noplugin"), KindPlugin, "../x", DefaultLimits(), `plugin name "../x"`},
		{"zip slip", zipOf(t, []zipEntry{{"demo/demo.php", 0o644, pluginMain}, {"demo/../../../wp-config.php", 0o644, "<?php"}}), KindPlugin, "demo", DefaultLimits(), "climbs out of the directory"},
		{"zip absolute", zipOf(t, []zipEntry{{"/etc/cron.d/x", 0o644, "x"}}), KindPlugin, "demo", DefaultLimits(), "is an absolute path"},
		{"zip backslash", zipOf(t, []zipEntry{{"demo\\..\\..\\x.php", 0o644, "x"}}), KindPlugin, "demo", DefaultLimits(), "backslash"},
		{"zip symlink", zipOf(t, []zipEntry{{"demo/demo.php", 0o644, pluginMain}, {"demo/link", os.ModeSymlink | 0o777, "/etc/passwd"}}), KindPlugin, "demo", DefaultLimits(), `"demo/link" is a symlink`},
		{"zip unclean", zipOf(t, []zipEntry{{"demo/./demo.php", 0o644, pluginMain}}), KindPlugin, "demo", DefaultLimits(), "is not a clean path"},
		{"zip too big", zipOf(t, []zipEntry{{"demo/demo.php", 0o644, pluginMain + strings.Repeat(" ", 1000)}}), KindPlugin, "demo", Limits{MaxFiles: 10, MaxBytes: 100}, "more than the limit"},
		{"zip too many", zipOf(t, []zipEntry{{"demo/demo.php", 0o644, pluginMain}, {"demo/b", 0o644, ""}}), KindPlugin, "demo", Limits{MaxFiles: 1, MaxBytes: 1 << 20}, "more than 1 entries"},
		{"tar symlink", tgzOf(t, []*tar.Header{{Name: "wordpress/wp-includes/version.php", Typeflag: tar.TypeReg, Mode: 0o644}, {Name: "wordpress/wp-admin", Typeflag: tar.TypeSymlink, Linkname: "/"}}, []string{versionPHP, ""}), KindCore, "", DefaultLimits(), `"wordpress/wp-admin" is a symlink`},
		{"tar hard link", tgzOf(t, []*tar.Header{{Name: "wordpress/wp-includes/version.php", Typeflag: tar.TypeReg, Mode: 0o644}, {Name: "wordpress/x", Typeflag: tar.TypeLink, Linkname: "/etc/shadow"}}, []string{versionPHP, ""}), KindCore, "", DefaultLimits(), "is a hard link"},
		{"tar slip", tgzOf(t, []*tar.Header{{Name: "../../x.php", Typeflag: tar.TypeReg, Mode: 0o644}}, []string{"x"}), KindCore, "", DefaultLimits(), "climbs out"},
		{"not an archive", filepath.Join(dir, "notwp", "index.php"), KindCore, "", DefaultLimits(), "neither a directory nor a .zip"},
		{"missing", filepath.Join(dir, "nope"), KindCore, "", DefaultLimits(), "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := memStore{}
			_, err := Load(tt.from, tt.kind, tt.plug, tt.lim, m.put)
			if !errors.Is(err, ErrBadSource) {
				t.Fatalf("Load = %v, want ErrBadSource", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load = %q, want it to say %q", err, tt.want)
			}
		})
	}
}

func TestLoadTarballCore(t *testing.T) {
	p := tgzOf(t, []*tar.Header{
		{Name: "wordpress/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "wordpress/wp-includes/version.php", Typeflag: tar.TypeReg, Mode: 0o644},
		{Name: "wordpress/index.php", Typeflag: tar.TypeReg, Mode: 0o644},
	}, []string{"", versionPHP, "<?php"})
	st, err := Load(p, KindCore, "", DefaultLimits(), memStore{}.put)
	if err != nil {
		t.Fatal(err)
	}
	if got := Inspect(st.Files, st.Content).Core; got != "6.1.10" {
		t.Errorf("core %q, want 6.1.10", got)
	}
}

func TestStore(t *testing.T) {
	s, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h, n, err := s.PutBlob(strings.NewReader("hello"))
	if err != nil || n != 5 || h != sha([]byte("hello")) || !s.HasBlob(h) {
		t.Fatalf("PutBlob = %q %d %v", h, n, err)
	}
	if b, err := s.ReadBlob(h, 100); err != nil || string(b) != "hello" {
		t.Fatalf("ReadBlob = %q %v", b, err)
	}
	tree := []File{d("wp-includes"), f("wp-includes/version.php", h)}
	if err := s.SaveTree("r1", tree); err != nil {
		t.Fatal(err)
	}
	got, err := s.Tree("r1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(tree, got); diff != "" {
		t.Errorf("Tree (-want +got):\n%s", diff)
	}
	if _, err := s.Tree("../x"); err == nil {
		t.Error("Tree(../x) took a path for an id")
	}
	if _, err := s.OpenBlob("../../etc/passwd"); err == nil {
		t.Error("OpenBlob took a path for a hash")
	}
}

func sha(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func TestDBVersion(t *testing.T) {
	for in, want := range map[string]int{
		"<?php\n$wp_version = '6.1.9';\n$wp_db_version = 53496;\n": 53496,
		"<?php\n$wp_db_version=1;":                                 1,
		"<?php\n// $wp_db_version = 5;":                            0,
		"":                                                         0,
	} {
		if got := DBVersion([]byte(in)); got != want {
			t.Errorf("DBVersion(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestIdentify(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, coreFiles())
	theme := "/*\nTheme Name: Twenty Demo\nVersion: 1.2\n*/\n"
	tests := []struct {
		name string
		from string
		want Identity
		err  string
	}{
		{"core directory", filepath.Join(dir, "wordpress"), Identity{Kind: KindCore, Version: "6.1.10"}, ""},
		{"core tarball", tgzOf(t, []*tar.Header{{Name: "wordpress/wp-includes/version.php", Typeflag: tar.TypeReg, Mode: 0o644}}, []string{versionPHP}), Identity{Kind: KindCore, Version: "6.1.10"}, ""},
		{"plugin zip", zipOf(t, []zipEntry{{"akismet/", os.ModeDir | 0o755, ""}, {"akismet/akismet.php", 0o644, "<?php\n/*\nPlugin Name: Akismet\nVersion: 5.3\n*/"}}), Identity{Kind: KindPlugin, Name: "akismet", Version: "5.3"}, ""},
		{"theme zip", zipOf(t, []zipEntry{{"twentydemo/style.css", 0o644, theme}, {"twentydemo/index.php", 0o644, "<?php"}}), Identity{Kind: KindTheme, Name: "twentydemo", Version: "1.2"}, ""},
		{"zip slip", zipOf(t, []zipEntry{{"demo/demo.php", 0o644, pluginMain}, {"demo/../../../wp-config.php", 0o644, "<?php"}}), Identity{}, "climbs out of the directory"},
		{"symlink", zipOf(t, []zipEntry{{"demo/demo.php", 0o644, pluginMain}, {"demo/link", os.ModeSymlink | 0o777, "/etc/passwd"}}), Identity{}, "is a symlink"},
		{"neither", zipOf(t, []zipEntry{{"demo/readme.txt", 0o644, "hi"}, {"demo/x.php", 0o644, "<?php"}}), Identity{}, "is neither WordPress core (no wp-includes/version.php), a plugin"},
		{"no one directory", zipOf(t, []zipEntry{{"a/demo.php", 0o644, pluginMain}, {"b/demo.php", 0o644, pluginMain}}), Identity{}, "everything in one directory named after it"},
		{"bad directory name", zipOf(t, []zipEntry{{"de mo/demo.php", 0o644, pluginMain}}), Identity{}, `plugin name "de mo"`},
		{"not an archive", filepath.Join(dir, "wordpress", "index.php"), Identity{}, "neither a directory nor a .zip"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Identify(tt.from, DefaultLimits())
			if tt.err != "" {
				if !errors.Is(err, ErrBadSource) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Identify = %+v, %v; want ErrBadSource saying %q", got, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Identify (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLine(t *testing.T) {
	tests := []struct {
		kind         Kind
		v, line      string
		isPreRelease bool
	}{
		{KindCore, "6.1.9", "6.1", false},
		{KindCore, "6.2-RC1", "6.2", true},
		{KindPlugin, "5.0.2", "5", false},
		{KindPlugin, "22.1", "22", false},
		{KindPlugin, "2", "2", false},
		{KindTheme, "1.0beta", "1", true},
		{KindTheme, "20231201", "20231201", false},
		{KindPlugin, "", "0", false},
	}
	for _, tt := range tests {
		if got := Line(tt.kind, tt.v); got != tt.line {
			t.Errorf("Line(%s, %q) = %q, want %q", tt.kind, tt.v, got, tt.line)
		}
		if got := PreRelease(tt.v); got != tt.isPreRelease {
			t.Errorf("PreRelease(%q) = %v, want %v", tt.v, got, tt.isPreRelease)
		}
	}
}
