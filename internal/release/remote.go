package release

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Remote is a second copy of the store off the controller's host (the
// files store's S3 bucket, docs/adr/0023-releases.md): every record, tree
// and blob written to the store is written there too before the write
// returns, and what the local directory lacks (a controller on a new
// host) is read from it. Names are the store's relative paths
// ("releases.json", "trees/r2.json", "blobs/ab/abcd…").
type Remote interface {
	Put(name string, r io.Reader, size int64) error
	// Get opens name; an error matching os.ErrNotExist when it is missing.
	Get(name string) (io.ReadCloser, error)
	// List calls fn with every name under prefix.
	List(prefix string, fn func(name string) error) error
	Delete(name string) error
}

// WithRemote makes s keep a copy of everything in r.
func (s *Store) WithRemote(r Remote) *Store {
	s.remote = r
	return s
}

// putRemote copies the local file at rel to the remote.
func (s *Store) putRemote(rel string) error {
	if s.remote == nil {
		return nil
	}
	f, err := os.Open(filepath.Join(s.dir, filepath.FromSlash(rel)))
	if err != nil {
		return fmt.Errorf("releases: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("releases: %w", err)
	}
	if err := s.remote.Put(rel, f, info.Size()); err != nil {
		return fmt.Errorf("releases: copy %s to the remote store: %w", rel, err)
	}
	return nil
}

// fetch copies rel from the remote into the local directory, checking a
// blob's content against its name; false when the remote lacks it too.
func (s *Store) fetch(rel string) (bool, error) {
	if s.remote == nil {
		return false, nil
	}
	rc, err := s.remote.Get(rel)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("releases: read %s from the remote store: %w", rel, err)
	}
	defer rc.Close()
	dst := filepath.Join(s.dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return false, fmt.Errorf("releases: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(dst), ".fetch-*.tmp")
	if err != nil {
		return false, fmt.Errorf("releases: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, h), rc); err != nil {
		return false, fmt.Errorf("releases: read %s from the remote store: %w", rel, err)
	}
	if hash, ok := strings.CutPrefix(rel, "blobs/"); ok && hex.EncodeToString(h.Sum(nil)) != filepath.Base(hash) {
		return false, fmt.Errorf("releases: the remote store's %s does not hash to its name: not used", rel)
	}
	if err := f.Sync(); err != nil {
		return false, fmt.Errorf("releases: %w", err)
	}
	if err := os.Rename(f.Name(), dst); err != nil {
		return false, fmt.Errorf("releases: %w", err)
	}
	return true, nil
}

// syncRemote makes the remote hold exactly the kept trees and needed
// blobs (after a prune): it removes the rest and uploads what it lacks
// (releases recorded before the remote was configured).
func (s *Store) syncRemote(keepTree map[string]bool, need map[string]bool) (removed int, err error) {
	if s.remote == nil {
		return 0, nil
	}
	local := func(rel string) bool {
		_, err := os.Stat(filepath.Join(s.dir, filepath.FromSlash(rel)))
		return err == nil
	}
	if local("releases.json") {
		if err := s.putRemote("releases.json"); err != nil {
			return 0, err
		}
	}
	have := map[string]bool{}
	err = s.remote.List("", func(name string) error {
		switch dir, base := filepath.Dir(name), filepath.Base(name); {
		case dir == "trees" && !keepTree[base], strings.HasPrefix(name, "blobs/") && !need[base]:
			if err := s.remote.Delete(name); err != nil {
				return err
			}
			removed++
		default:
			have[name] = true
		}
		return nil
	})
	if err != nil {
		return removed, fmt.Errorf("releases: the remote store: %w", err)
	}
	for t := range keepTree {
		if !have["trees/"+t] && local("trees/"+t) {
			if err := s.putRemote("trees/" + t); err != nil {
				return removed, err
			}
		}
	}
	for h := range need {
		if rel := "blobs/" + h[:2] + "/" + h; !have[rel] && local(rel) {
			if err := s.putRemote(rel); err != nil {
				return removed, err
			}
		}
	}
	return removed, nil
}

// readAll reads a small local file, or the remote's copy when the local
// one is missing.
func (s *Store) readAll(rel string) ([]byte, error) {
	p := filepath.Join(s.dir, filepath.FromSlash(rel))
	data, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		if ok, ferr := s.fetch(rel); ferr != nil {
			return nil, ferr
		} else if ok {
			return os.ReadFile(p)
		}
	}
	return data, err
}
