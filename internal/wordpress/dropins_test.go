package wordpress

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestInstallDropins(t *testing.T) {
	docroot := t.TempDir()
	if err := InstallDropins(docroot); err == nil || !strings.Contains(err.Error(), "not a WordPress tree") {
		t.Fatalf("install into a tree without wp-content: %v", err)
	}
	if err := os.Mkdir(filepath.Join(docroot, "wp-content"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := InstallDropins(docroot); err != nil {
		t.Fatal(err)
	}
	check := func() {
		t.Helper()
		for _, d := range Dropins() {
			p := filepath.Join(docroot, d.Path)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, d.Data) {
				t.Errorf("%s differs from the embedded file", d.Path)
			}
			if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o644 {
				t.Errorf("%s mode %v, want 0644", d.Path, fi.Mode().Perm())
			}
		}
		if fi, err := os.Stat(filepath.Join(docroot, "wp-content", "mu-plugins")); err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("mu-plugins: %v %v, want a 0755 directory", fi, err)
		}
		for _, dir := range []string{"wp-content", filepath.Join("wp-content", "mu-plugins")} {
			entries, _ := os.ReadDir(filepath.Join(docroot, dir))
			for _, e := range entries {
				if strings.HasPrefix(e.Name(), ".") {
					t.Errorf("temporary file left: %s", filepath.Join(dir, e.Name()))
				}
			}
		}
	}
	check()

	// Idempotent: an unchanged file is not rewritten (file sync sees no change).
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	for _, d := range Dropins() {
		os.Chtimes(filepath.Join(docroot, d.Path), old, old)
	}
	if err := InstallDropins(docroot); err != nil {
		t.Fatal(err)
	}
	for _, d := range Dropins() {
		if fi, _ := os.Stat(filepath.Join(docroot, d.Path)); !fi.ModTime().Equal(old) {
			t.Errorf("%s rewritten although unchanged", d.Path)
		}
	}
	check()

	// A changed file is put back.
	cache := filepath.Join(docroot, "wp-content", "object-cache.php")
	if err := os.WriteFile(cache, []byte("<?php // someone else's"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := InstallDropins(docroot); err != nil {
		t.Fatal(err)
	}
	check()
}

// TestDropinsAreValidPHP lints both files with the real PHP CLI.
func TestDropinsAreValidPHP(t *testing.T) {
	php := phpBinary(t)
	dir := t.TempDir()
	for _, d := range Dropins() {
		f := filepath.Join(dir, filepath.Base(d.Path))
		if err := os.WriteFile(f, d.Data, 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(php, "-l", f).CombinedOutput(); err != nil {
			t.Errorf("php -l %s: %v\n%s", d.Path, err, out)
		}
	}
}
