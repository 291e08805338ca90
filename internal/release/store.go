package release

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/atomicfile"
)

// Store keeps the releases of one environment under a directory:
//
//	releases.json         every release record, oldest first
//	trees/ID.json         the managed tree of each release (paths, modes, hashes)
//	blobs/ab/abcdef…      the content of every file any release names
//
// The blobs are kept here rather than only in the files store, whose
// garbage collection removes what the live tree no longer names: a
// rollback needs the old content.
type Store struct {
	dir    string
	remote Remote // nil: the local directory only
}

// OpenStore opens (making it when missing) the store in dir.
func OpenStore(dir string) (*Store, error) {
	for _, d := range []string{dir, filepath.Join(dir, "trees"), filepath.Join(dir, "blobs")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("releases: %w", err)
		}
	}
	return &Store{dir: dir}, nil
}

var hashRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

func (s *Store) blobPath(hash string) string {
	return filepath.Join(s.dir, "blobs", hash[:2], hash)
}

// HasBlob says whether the store holds blob hash.
func (s *Store) HasBlob(hash string) bool {
	if !hashRE.MatchString(hash) {
		return false
	}
	if _, err := os.Stat(s.blobPath(hash)); err == nil {
		return true
	}
	ok, _ := s.fetch(blobRel(hash))
	return ok
}

func blobRel(hash string) string { return "blobs/" + hash[:2] + "/" + hash }

// PutBlob stores r's content (a Put).
func (s *Store) PutBlob(r io.Reader) (string, int64, error) {
	f, err := os.CreateTemp(filepath.Join(s.dir, "blobs"), ".put-*.tmp")
	if err != nil {
		return "", 0, fmt.Errorf("releases: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), r)
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		return "", 0, fmt.Errorf("releases: put blob: %w", err)
	}
	hash := hex.EncodeToString(h.Sum(nil))
	dst := s.blobPath(hash)
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return "", 0, fmt.Errorf("releases: %w", err)
	}
	if err := os.Chmod(f.Name(), 0o600); err != nil {
		return "", 0, fmt.Errorf("releases: %w", err)
	}
	_, statErr := os.Stat(dst)
	if err := os.Rename(f.Name(), dst); err != nil {
		return "", 0, fmt.Errorf("releases: %w", err)
	}
	if statErr != nil {
		// New here: the remote gets it before it counts as stored (a blob
		// held locally is one the remote holds).
		if err := s.putRemote(blobRel(hash)); err != nil {
			os.Remove(dst)
			return "", 0, err
		}
	}
	return hash, n, nil
}

// OpenBlob opens blob hash.
func (s *Store) OpenBlob(hash string) (io.ReadCloser, error) {
	if !hashRE.MatchString(hash) {
		return nil, fmt.Errorf("releases: %q is not a blob hash", hash)
	}
	f, err := os.Open(s.blobPath(hash))
	if errors.Is(err, os.ErrNotExist) {
		if ok, ferr := s.fetch(blobRel(hash)); ferr != nil {
			return nil, ferr
		} else if ok {
			f, err = os.Open(s.blobPath(hash))
		}
	}
	if err != nil {
		return nil, fmt.Errorf("releases: %w", err)
	}
	return f, nil
}

// ReadBlob reads up to limit bytes of blob hash.
func (s *Store) ReadBlob(hash string, limit int64) ([]byte, error) {
	rc, err := s.OpenBlob(hash)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, limit))
}

// Records are every release, oldest first (none when the store is new).
func (s *Store) Records() ([]api.Release, error) {
	data, err := s.readAll("releases.json")
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("releases: %w", err)
	}
	var doc struct {
		Releases []api.Release `json:"releases"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("releases: releases.json: %w", err)
	}
	return doc.Releases, nil
}

// SaveRecords replaces the release records.
func (s *Store) SaveRecords(rs []api.Release) error {
	doc := struct {
		Releases []api.Release `json:"releases"`
	}{rs}
	if err := atomicfile.WriteJSON(filepath.Join(s.dir, "releases.json"), doc, 0o600); err != nil {
		return fmt.Errorf("releases: %w", err)
	}
	return s.putRemote("releases.json")
}

var idRE = regexp.MustCompile(`^r[0-9]{1,9}$`)

// ValidID says whether id names a release (r1, r2, ...).
func ValidID(id string) bool { return idRE.MatchString(id) }

// SaveTree records the managed tree of release id.
func (s *Store) SaveTree(id string, tree []File) error {
	if !ValidID(id) {
		return fmt.Errorf("releases: bad release id %q", id)
	}
	if err := atomicfile.WriteJSON(filepath.Join(s.dir, "trees", id+".json"), tree, 0o600); err != nil {
		return fmt.Errorf("releases: %w", err)
	}
	return s.putRemote("trees/" + id + ".json")
}

// Tree is the managed tree of release id.
func (s *Store) Tree(id string) ([]File, error) {
	if !ValidID(id) {
		return nil, fmt.Errorf("releases: bad release id %q", id)
	}
	data, err := s.readAll("trees/" + id + ".json")
	if err != nil {
		return nil, fmt.Errorf("releases: %w", err)
	}
	var t []File
	if err := json.Unmarshal(data, &t); err != nil {
		return nil, fmt.Errorf("releases: trees/%s.json: %w", id, err)
	}
	return t, nil
}
