package wordpress

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/scalepress/scalepress/internal/fileperm"
)

// TestSetPermissionsLeavesLinkedFiles: a file with another hard link (the
// filesync link pool's, ADR 29) is never chmod-ed in place, since that
// would change every docroot sharing it; a file of its own is.
func TestSetPermissionsLeavesLinkedFiles(t *testing.T) {
	dir := t.TempDir()
	docroot := filepath.Join(dir, "docroot")
	plugin := filepath.Join(docroot, "wp-content", "plugins", "p")
	if err := os.MkdirAll(plugin, 0o755); err != nil {
		t.Fatal(err)
	}
	linked, own := filepath.Join(plugin, "linked.php"), filepath.Join(plugin, "own.php")
	for _, p := range []string{linked, own} {
		if err := os.WriteFile(p, []byte("<?php"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pool := filepath.Join(dir, "pool-entry")
	if err := os.Link(linked, pool); err != nil {
		t.Fatal(err)
	}
	if err := SetPermissions(docroot, fileperm.Policy{Writable: fileperm.Writable}, false, 0, 0); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{pool: 0o644, own: 0o664} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %04o, want %04o", filepath.Base(p), fi.Mode().Perm(), want)
		}
	}
}
