package filesync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/scalepress/scalepress/internal/atomicfile"
)

// ObjectStore keeps the named objects of the store besides blobs: the
// change-log segments (log/…) and the snapshots (snap/…). DirObjectStore is
// the local-directory backend. An object-storage backend keeps a segment's
// appends as consecutive part objects (or uses a native append), so that an
// append is one conditional upload and a torn append cannot exist there;
// Truncate is then only a rewrite of the last part.
type ObjectStore interface {
	// List returns the names that start with prefix, sorted.
	List(ctx context.Context, prefix string) ([]string, error)
	// Open reads an object; an error matching fs.ErrNotExist if missing.
	Open(ctx context.Context, name string) (io.ReadCloser, error)
	// Put replaces an object atomically and durably.
	Put(ctx context.Context, name string, data []byte) error
	// Append adds data at the end of an object (creating it), durably
	// before it returns.
	Append(ctx context.Context, name string, data []byte) error
	// Truncate cuts an object to size bytes, durably.
	Truncate(ctx context.Context, name string, size int64) error
	// Remove deletes an object; a missing one is not an error.
	Remove(ctx context.Context, name string) error
}

var _ ObjectStore = (*DirObjectStore)(nil)

// DirObjectStore stores objects as files under a directory; an object name
// is a '/'-separated relative path.
type DirObjectStore struct {
	dir string
}

// NewDirObjectStore opens (creating it if needed) an object directory.
func NewDirObjectStore(dir string) (*DirObjectStore, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("filesync: object store: %w", err)
	}
	return &DirObjectStore{dir: dir}, nil
}

func (s *DirObjectStore) path(name string) (string, error) {
	if err := checkPathSyntax(name, 8); err != nil {
		return "", fmt.Errorf("filesync: object name: %w", err)
	}
	return filepath.Join(s.dir, filepath.FromSlash(name)), nil
}

// List implements ObjectStore.
func (s *DirObjectStore) List(_ context.Context, prefix string) ([]string, error) {
	var out []string
	start := s.dir
	if i := strings.LastIndexByte(prefix, '/'); i > 0 {
		start = filepath.Join(s.dir, filepath.FromSlash(prefix[:i]))
	}
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p == start {
			return filepath.SkipDir
		}
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() || atomicfile.IsTemp(d.Name()) {
			return nil
		}
		rel, err := filepath.Rel(s.dir, p)
		if err != nil {
			return err
		}
		if rel = filepath.ToSlash(rel); strings.HasPrefix(rel, prefix) {
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("filesync: list objects: %w", err)
	}
	sort.Strings(out)
	return out, nil
}

// Open implements ObjectStore.
func (s *DirObjectStore) Open(_ context.Context, name string) (io.ReadCloser, error) {
	p, err := s.path(name)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("filesync: open object: %w", err)
	}
	return f, nil
}

// Put implements ObjectStore: a temporary file, fsync, rename, fsync of the
// directory.
func (s *DirObjectStore) Put(_ context.Context, name string, data []byte) error {
	p, err := s.path(name)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(p, data, 0o644); err != nil {
		return fmt.Errorf("filesync: put object: %w", err)
	}
	return nil
}

// writeFileAtomic writes a file so that readers see either the old or the
// new content, durably, creating its directory if needed.
func writeFileAtomic(p string, data []byte, perm fs.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(p, data, perm)
}

// Append implements ObjectStore: O_APPEND, then fsync (and an fsync of the
// directory when the file is new).
func (s *DirObjectStore) Append(_ context.Context, name string, data []byte) error {
	p, err := s.path(name)
	if err != nil {
		return err
	}
	_, statErr := os.Stat(p)
	created := errors.Is(statErr, fs.ErrNotExist)
	if created {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("filesync: append object: %w", err)
		}
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("filesync: append object: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && created {
		err = atomicfile.SyncDir(filepath.Dir(p))
	}
	if err != nil {
		return fmt.Errorf("filesync: append object: %w", err)
	}
	return nil
}

// Truncate implements ObjectStore.
func (s *DirObjectStore) Truncate(_ context.Context, name string, size int64) error {
	p, err := s.path(name)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("filesync: truncate object: %w", err)
	}
	err = f.Truncate(size)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("filesync: truncate object: %w", err)
	}
	return nil
}

// Remove implements ObjectStore.
func (s *DirObjectStore) Remove(_ context.Context, name string) error {
	p, err := s.path(name)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("filesync: remove object: %w", err)
	}
	return nil
}
