package release

import (
	"archive/zip"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoadZip: whatever a zip holds, Load either refuses it or returns
// files that all lie in the plugin's directory, with clean paths.
func FuzzLoadZip(f *testing.F) {
	for _, names := range [][]string{
		{"demo/demo.php"},
		{"demo/../../x.php"},
		{"/abs.php"},
		{"demo/./a.php", "demo/b/"},
		{"demo.php", "readme.txt"},
	} {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		for _, n := range names {
			w, _ := zw.Create(n)
			w.Write([]byte(pluginMain))
		}
		zw.Close()
		f.Add(buf.Bytes())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "x.zip")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if id, err := Identify(p, Limits{MaxFiles: 1000, MaxBytes: 1 << 20}); err == nil && id.Kind != KindCore && CheckName(id.Kind, id.Name) != nil {
			t.Fatalf("Identify named a %s %q that is not one directory name", id.Kind, id.Name)
		}
		st, err := Load(p, KindPlugin, "demo", Limits{MaxFiles: 1000, MaxBytes: 1 << 20}, memStore{}.put)
		if err != nil {
			return
		}
		for _, f := range st.Files {
			if !within(f.Path, PluginsDir+"/demo") {
				t.Fatalf("Load put %q outside the plugin's directory", f.Path)
			}
			if _, err := checkEntryName(f.Path); err != nil || strings.Contains(f.Path, "//") {
				t.Fatalf("Load returned an unclean path %q", f.Path)
			}
		}
	})
}

// FuzzHeader: header and version parsing never panic and return one line.
func FuzzHeader(f *testing.F) {
	f.Add([]byte(pluginMain), "Plugin Name")
	f.Add([]byte(versionPHP), "Version")
	f.Add([]byte("/*\r\nTheme Name: x\r\n*/"), "Theme Name")
	f.Fuzz(func(t *testing.T, data []byte, field string) {
		if strings.ContainsAny(Header(data, field), "\r\n") {
			t.Fatal("a header value spans lines")
		}
		if strings.ContainsAny(CoreVersion(data), "\r\n'\"") {
			t.Fatal("a version holds a quote or a line break")
		}
		Compare(string(data), field)
	})
}

// FuzzVersion: Compare is a total order consistent with Line and Major
// (equal versions are on the same line), and nothing panics, whatever a
// plugin's Version header holds.
func FuzzVersion(f *testing.F) {
	for _, s := range [][3]string{
		{"6.1.9", "6.1.10", "6.2"},
		{"6.2-RC1", "6.2", "6.2.0"},
		{"5.0.2", "5", "22.1"},
		{"1.0beta", "1.0-dev", "1.0+build"},
		{"20231201", "", "v2.0"},
		{"99999999999999999999999", "1..2", ".1"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, a, b, c string) {
		if Compare(a, a) != 0 {
			t.Fatalf("Compare(%q, itself) != 0", a)
		}
		ab, bc, ac := Compare(a, b), Compare(b, c), Compare(a, c)
		if Compare(b, a) != -ab {
			t.Fatalf("Compare(%q, %q) = %d but the reverse is %d", a, b, ab, Compare(b, a))
		}
		if ab <= 0 && bc <= 0 && ac > 0 {
			t.Fatalf("not transitive: %q <= %q <= %q but %q > %q", a, b, c, a, c)
		}
		for _, k := range []Kind{KindCore, KindPlugin, KindTheme} {
			if ab == 0 && Line(k, a) != Line(k, b) {
				t.Fatalf("%q and %q compare equal but %s lines %q and %q", a, b, k, Line(k, a), Line(k, b))
			}
		}
		if ab == 0 && PreRelease(a) != PreRelease(b) {
			t.Fatalf("%q and %q compare equal but only one is a pre-release", a, b)
		}
	})
}
