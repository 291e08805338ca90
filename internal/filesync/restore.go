package filesync

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// RestoreStore makes a new files store in dir (which must not exist or be
// empty) holding exactly the tree doc, a Manifest document as GET
// /v1/manifest answers it and a backup keeps it: every blob the tree names,
// read through open and checked against its hash, and the tree as the
// snapshot at its sequence number, with an empty log after it. A server
// opened on dir serves that tree and commits new changes from Seq+1.
func RestoreStore(ctx context.Context, dir string, doc []byte, open func(ctx context.Context, hash string) (io.ReadCloser, error)) error {
	m, err := decodeManifest(doc)
	if err != nil {
		return fmt.Errorf("filesync: restore: the tree does not check out: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("filesync: restore: %w", err)
	}
	if names, _ := os.ReadDir(dir); len(names) > 0 {
		return fmt.Errorf("filesync: restore: %s is not empty", dir)
	}
	blobs, err := NewDirBlobStore(filepath.Join(dir, "blobs"))
	if err != nil {
		return err
	}
	done := map[string]bool{}
	for _, e := range m.Entries {
		if e.Dir || done[e.Hash] {
			continue
		}
		r, err := open(ctx, e.Hash)
		if err != nil {
			return fmt.Errorf("filesync: restore %s: %w", e.Path, err)
		}
		n, _, err := blobs.Put(ctx, e.Hash, r, e.Size)
		r.Close()
		if err != nil {
			return fmt.Errorf("filesync: restore %s (blob %s): %w", e.Path, e.Hash, err)
		}
		if n != e.Size {
			return fmt.Errorf("filesync: restore %s: blob %s has %d bytes, the tree says %d", e.Path, e.Hash, n, e.Size)
		}
		done[e.Hash] = true
	}
	objs, err := NewDirObjectStore(dir)
	if err != nil {
		return err
	}
	snap, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("filesync: restore: %w", err)
	}
	if err := objs.Put(ctx, snapshotName(m.Seq), snap); err != nil {
		return fmt.Errorf("filesync: restore: %w", err)
	}
	return nil
}
