package filesync

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestRestoreStore restores a store's tree into a new directory: a store
// opened there has the same manifest and commits after it.
func TestRestoreStore(t *testing.T) {
	src := openTestStore(t, t.TempDir(), nil)
	putFile(t, src, "wp-content/uploads/a.jpg", "jpeg bytes")
	putFile(t, src, "wp-content/plugins/p/p.php", "<?php // plugin")
	putFile(t, src, "wp-content/uploads/b.jpg", "jpeg bytes") // same blob twice
	putFile(t, src, "wp-content/uploads/old.txt", "old")
	commit(t, src, Change{Op: OpDelete, Path: "wp-content/uploads/old.txt"})
	want := src.Manifest()
	doc, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	var opened []string
	open := func(ctx context.Context, hash string) (io.ReadCloser, error) {
		opened = append(opened, hash)
		r, _, err := src.OpenBlob(ctx, hash)
		return r, err
	}
	dir := filepath.Join(t.TempDir(), "files")
	if err := RestoreStore(context.Background(), dir, doc, open); err != nil {
		t.Fatal(err)
	}
	if len(opened) != 2 {
		t.Errorf("opened %d blobs, want the 2 the tree names", len(opened))
	}
	got := openTestStore(t, dir, nil)
	if d := cmp.Diff(want, got.Manifest()); d != "" {
		t.Errorf("restored manifest (-want +got):\n%s", d)
	}
	if seq := putFile(t, got, "new.txt", "new"); seq != want.Seq+1 {
		t.Errorf("first commit after the restore got seq %d, want %d", seq, want.Seq+1)
	}

	// A blob whose content does not match its hash is refused.
	bad := func(ctx context.Context, hash string) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader([]byte("not it"))), nil
	}
	if err := RestoreStore(context.Background(), filepath.Join(t.TempDir(), "files"), doc, bad); err == nil {
		t.Error("a blob with the wrong content was restored")
	}
	// A tree that does not check out is refused before anything is written.
	dir2 := filepath.Join(t.TempDir(), "files")
	if err := RestoreStore(context.Background(), dir2, []byte(`{"seq":1,"entries":[{"path":"../x","mode":420}]}`), open); err == nil || !strings.Contains(err.Error(), "does not check out") {
		t.Errorf("bad tree: %v", err)
	}
	if _, err := os.Stat(dir2); err == nil {
		t.Error("a refused tree left a directory")
	}
}
