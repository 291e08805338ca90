package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// Listed is one backup of a target: its manifest, or why it cannot be read.
type Listed struct {
	ID       string
	Manifest Manifest
	Err      error // a damaged or newer manifest
}

// List returns the complete backups of t, newest first. A directory without
// a manifest is an unfinished (or failed) backup and is not listed.
func List(ctx context.Context, t Target) ([]Listed, error) {
	names, err := t.List(ctx, "")
	if err != nil {
		return nil, err
	}
	var out []Listed
	for _, id := range names {
		if !ValidID(id) {
			continue
		}
		m, err := ReadManifest(ctx, t, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		out = append(out, Listed{ID: id, Manifest: m, Err: err})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID > out[j].ID })
	return out, nil
}

// ReadManifest reads and validates backup id's manifest; ErrNotFound when
// there is no such (complete) backup.
func ReadManifest(ctx context.Context, t Target, id string) (Manifest, error) {
	if !ValidID(id) {
		return Manifest{}, fmt.Errorf("backup: %q is not a backup id (like 20261207T090000Z)", id)
	}
	data, err := readAll(ctx, t, path.Join(id, ManifestArt), 1<<20)
	if err != nil {
		return Manifest{}, err
	}
	m, err := ParseManifest(data)
	if err != nil {
		return m, fmt.Errorf("backup %s: %w", id, err)
	}
	if m.ID != id {
		return m, fmt.Errorf("backup %s: %w: manifest names id %s", id, ErrCorrupt, m.ID)
	}
	return m, nil
}

// readAll reads name, at most limit bytes.
func readAll(ctx context.Context, t Target, name string, limit int64) ([]byte, error) {
	r, err := t.Open(ctx, name)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("backup: %s: %w", name, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("backup: %w: %s is over %d bytes", ErrCorrupt, name, limit)
	}
	return data, nil
}
