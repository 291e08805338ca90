package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// VerifyResult is what a verify checked.
type VerifyResult struct {
	Manifest  Manifest
	Artefacts int // artefacts whose size and SHA-256 matched
	Blobs     int // blobs present with the right content
	Tables    int // tables whose row count matched
}

// Verify restores backup id into a scratch directory and checks every
// artefact's size and SHA-256, every blob the files tree names, and the row
// count of every table against the manifest. It leaves nothing behind.
func Verify(ctx context.Context, t Target, id string, o Options) (VerifyResult, error) {
	var res VerifyResult
	m, err := ReadManifest(ctx, t, id)
	if err != nil {
		return res, fmt.Errorf("verify: %w", err)
	}
	res.Manifest = m
	for _, a := range m.Artefacts {
		if a.Name == ArtDB {
			continue // checked while it is unpacked below
		}
		r, err := openChecked(ctx, t, m, a.Name)
		if err != nil {
			return res, fmt.Errorf("verify %s: %w", id, err)
		}
		_, err = io.Copy(io.Discard, r)
		r.Close()
		if err != nil {
			return res, fmt.Errorf("verify %s: %w", id, err)
		}
		res.Artefacts++
	}
	doc, err := readChecked(ctx, t, m, ArtFiles, 1<<30)
	if err != nil {
		return res, fmt.Errorf("verify %s: %w", id, err)
	}
	blobs, err := treeBlobs(doc)
	if err != nil {
		return res, fmt.Errorf("verify %s: %w", id, err)
	}
	for _, b := range blobs {
		if err := checkBlob(ctx, t, b); err != nil {
			return res, fmt.Errorf("verify %s: blob %s: %w", id, b.Hash, err)
		}
		res.Blobs++
	}

	work, err := os.MkdirTemp(o.Scratch, "verify-"+id+"-")
	if err != nil {
		return res, fmt.Errorf("verify: scratch: %w", err)
	}
	defer os.RemoveAll(work)
	datadir := filepath.Join(work, "data")
	if err := os.MkdirAll(datadir, 0o700); err != nil {
		return res, fmt.Errorf("verify: scratch: %w", err)
	}
	r, err := openChecked(ctx, t, m, ArtDB)
	if err != nil {
		return res, fmt.Errorf("verify %s: %w", id, err)
	}
	err = extractChecked(ctx, o.Tools, r, datadir)
	r.Close()
	if err != nil {
		return res, fmt.Errorf("verify %s: %w", id, err)
	}
	res.Artefacts++
	if err := prepare(ctx, o.Tools, datadir); err != nil {
		return res, fmt.Errorf("verify %s: %w", id, err)
	}
	rows, err := countRows(ctx, o.Tools, datadir, filepath.Join(work, "run"), m.DB.Database)
	if err != nil {
		return res, fmt.Errorf("verify %s: %w", id, err)
	}
	if d := diffRows(m.DB.Rows, rows); d != "" {
		return res, fmt.Errorf("verify %s: %w: row counts: %s", id, ErrCorrupt, d)
	}
	res.Tables = len(rows)
	return res, nil
}

// treeBlobs are the blobs a files tree document names, once each. Only the
// fields a backup needs are read; the files store validates the rest when a
// restore writes it.
func treeBlobs(doc []byte) ([]Blob, error) {
	var tree struct {
		Entries []struct {
			Dir  bool   `json:"dir"`
			Size int64  `json:"size"`
			Hash string `json:"hash"`
		} `json:"entries"`
	}
	if err := json.Unmarshal(doc, &tree); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, ArtFiles, err)
	}
	seen := map[string]bool{}
	var out []Blob
	for _, e := range tree.Entries {
		if e.Dir || seen[e.Hash] {
			continue
		}
		if !hashRE.MatchString(e.Hash) {
			return nil, fmt.Errorf("%w: %s: hash %q", ErrCorrupt, ArtFiles, e.Hash)
		}
		seen[e.Hash] = true
		out = append(out, Blob{Hash: e.Hash, Size: e.Size})
	}
	return out, nil
}

// checkBlob reads a stored blob and checks its content.
func checkBlob(ctx context.Context, t Target, b Blob) error {
	r, err := t.Open(ctx, blobName(b.Hash))
	if err != nil {
		return err
	}
	defer r.Close()
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != b.Hash || n != b.Size {
		return fmt.Errorf("%w: %d bytes hashing to %s, want %d bytes (checksum mismatch)", ErrCorrupt, n, got, b.Size)
	}
	return nil
}
