package filesync

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/scalepress/scalepress/internal/atomicfile"
)

// BlobStore keeps file contents addressed by their SHA-256 in lowercase hex.
// DirBlobStore is the local-directory backend; an object-storage backend maps
// every blob to one immutable object named by its hash, so that Put is one
// upload, Has a HEAD, List a prefix listing and Remove a DELETE.
type BlobStore interface {
	// Put stores what r yields under hash, durably before it returns, and
	// returns the bytes read. It stores nothing and returns
	// ErrHashMismatch when the content does not hash to hash. A blob
	// already present is kept as it is: Put then returns existed true, and
	// n is not a size the backend checked (the bytes sent may not have
	// been read, let alone hashed, before the backend said the blob was
	// there). Errors from r (such as a size limit) are returned unchanged.
	// size is the length r announced, -1 if unknown.
	Put(ctx context.Context, hash string, r io.Reader, size int64) (n int64, existed bool, err error)
	// Get opens a blob for reading and returns its size; ErrBlobNotFound
	// when it is missing.
	Get(ctx context.Context, hash string) (io.ReadSeekCloser, int64, error)
	// Has reports whether the blob is stored.
	Has(ctx context.Context, hash string) (bool, error)
	// List calls fn for every stored blob, in no particular order, until fn
	// returns an error.
	List(ctx context.Context, fn func(BlobInfo) error) error
	// Remove deletes a blob; removing a missing blob is not an error. Only
	// the Store's garbage collection calls it.
	Remove(ctx context.Context, hash string) error
}

// BlobInfo describes a stored blob.
type BlobInfo struct {
	Hash string
	Size int64
	// ModTime is when the blob was stored.
	ModTime time.Time
}

var (
	// ErrHashMismatch means uploaded content does not hash to its name.
	ErrHashMismatch = errors.New("content does not match its SHA-256")
	// ErrBlobNotFound means a blob is not stored.
	ErrBlobNotFound = errors.New("blob not found")
)

var _ BlobStore = (*DirBlobStore)(nil)

// DirBlobStore stores blobs as files in a directory, fanned out by the first
// two hex digits (ab/abcdef…), written to a temporary file, fsynced and
// renamed into place.
type DirBlobStore struct {
	dir string
}

// NewDirBlobStore opens (creating it if needed) a blob directory and removes
// temporary files left by an interrupted Put.
func NewDirBlobStore(dir string) (*DirBlobStore, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("filesync: blob store: %w", err)
	}
	os.RemoveAll(filepath.Join(dir, "tmp")) // where binaries before atomicfile wrote
	fans, _ := os.ReadDir(dir)
	for _, fan := range fans {
		if !fan.IsDir() || len(fan.Name()) != 2 {
			continue
		}
		names, _ := os.ReadDir(filepath.Join(dir, fan.Name()))
		for _, n := range names {
			if atomicfile.IsTemp(n.Name()) {
				os.Remove(filepath.Join(dir, fan.Name(), n.Name()))
			}
		}
	}
	return &DirBlobStore{dir: dir}, nil
}

func (s *DirBlobStore) path(hash string) string {
	return filepath.Join(s.dir, hash[:2], hash)
}

// Put implements BlobStore.
func (s *DirBlobStore) Put(ctx context.Context, hash string, r io.Reader, _ int64) (int64, bool, error) {
	if !validHash(hash) {
		return 0, false, fmt.Errorf("filesync: put blob: %q is not a SHA-256 in lowercase hex", hash)
	}
	final := s.path(hash)
	fan := filepath.Dir(final)
	if err := os.Mkdir(fan, 0o755); err == nil {
		if err := atomicfile.SyncDir(s.dir); err != nil {
			return 0, false, fmt.Errorf("filesync: put blob: %w", err)
		}
	} else if !errors.Is(err, fs.ErrExist) {
		return 0, false, fmt.Errorf("filesync: put blob: %w", err)
	}
	tmp, err := atomicfile.Create(final, 0o600)
	if err != nil {
		return 0, false, fmt.Errorf("filesync: put blob: %w", err)
	}
	defer tmp.Close() // discards the content unless committed
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), ctxReader{ctx, r})
	if err != nil {
		return n, false, err
	}
	if hex.EncodeToString(h.Sum(nil)) != hash {
		return n, false, ErrHashMismatch
	}
	if _, err := os.Stat(final); err == nil {
		return n, true, nil
	}
	if err := tmp.Commit(); err != nil {
		return n, false, fmt.Errorf("filesync: put blob: %w", err)
	}
	return n, false, nil
}

// Get implements BlobStore.
func (s *DirBlobStore) Get(_ context.Context, hash string) (io.ReadSeekCloser, int64, error) {
	if !validHash(hash) {
		return nil, 0, ErrBlobNotFound
	}
	f, err := os.Open(s.path(hash))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, ErrBlobNotFound
	}
	if err != nil {
		return nil, 0, fmt.Errorf("filesync: get blob: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("filesync: get blob: %w", err)
	}
	return f, fi.Size(), nil
}

// Has implements BlobStore.
func (s *DirBlobStore) Has(_ context.Context, hash string) (bool, error) {
	if !validHash(hash) {
		return false, nil
	}
	_, err := os.Stat(s.path(hash))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("filesync: has blob: %w", err)
	}
}

// List implements BlobStore.
func (s *DirBlobStore) List(ctx context.Context, fn func(BlobInfo) error) error {
	fans, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("filesync: list blobs: %w", err)
	}
	for _, fan := range fans {
		if !fan.IsDir() || len(fan.Name()) != 2 {
			continue
		}
		names, err := os.ReadDir(filepath.Join(s.dir, fan.Name()))
		if err != nil {
			return fmt.Errorf("filesync: list blobs: %w", err)
		}
		for _, n := range names {
			if err := ctx.Err(); err != nil {
				return err
			}
			if !validHash(n.Name()) || !strings.HasPrefix(n.Name(), fan.Name()) {
				continue
			}
			fi, err := n.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed meanwhile
			}
			if err != nil {
				return fmt.Errorf("filesync: list blobs: %w", err)
			}
			if err := fn(BlobInfo{Hash: n.Name(), Size: fi.Size(), ModTime: fi.ModTime()}); err != nil {
				return err
			}
		}
	}
	return nil
}

// Remove implements BlobStore. The removal is not fsynced: a blob that
// comes back after a crash is collected again.
func (s *DirBlobStore) Remove(_ context.Context, hash string) error {
	if !validHash(hash) {
		return fmt.Errorf("filesync: remove blob: %q is not a SHA-256 in lowercase hex", hash)
	}
	if err := os.Remove(s.path(hash)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("filesync: remove blob: %w", err)
	}
	return nil
}

// ctxReader stops a copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

// limitedReader fails with err once more than n bytes have been read.
type limitedReader struct {
	r   io.Reader
	n   int64
	err error
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n < 0 {
		return 0, l.err
	}
	if int64(len(p)) > l.n+1 {
		p = p[:l.n+1]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	if l.n < 0 {
		return n, l.err
	}
	return n, err
}

// hashBytes returns the lowercase hex SHA-256 of b.
func hashBytes(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
