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
