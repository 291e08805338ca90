package local

import (
	"os"
	"path/filepath"
	"testing"
)

func TestInstallSelf(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "orig")
	os.WriteFile(src, []byte("binary v1"), 0o700)
	got, err := InstallSelf(src, filepath.Join(dir, "run", "bin"))
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(got)
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("installed %s: %v mode %v", got, err, fi.Mode())
	}
	os.WriteFile(src, []byte("binary v2"), 0o700)
	if _, err := InstallSelf(src, filepath.Join(dir, "run", "bin")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(got); string(b) != "binary v2" {
		t.Errorf("not updated: %q", b)
	}
}
