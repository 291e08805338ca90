package filesync

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/scalepress/scalepress/internal/s3store"
)

// The S3 backend (docs/adr/0012-files-on-s3.md): the store's objects in
// one bucket under a prefix, through internal/s3store.
//
//	PREFIX/blobs/ab/abcdef…            one immutable object per blob
//	PREFIX/log/<first seq>.log          one immutable object per append
//	PREFIX/snap/<seq>.json              snapshots
//
// Every append of the change log is a conditional create (If-None-Match: *)
// of an object named by the sequence number of its first record: a torn
// append cannot exist, and of two files roles on one bucket only one can
// write a given sequence number; the other is fenced (ErrFenced).

var (
	_ BlobStore     = (*S3BlobStore)(nil)
	_ ObjectStore   = (*S3ObjectStore)(nil)
	_ objectCreator = (*S3ObjectStore)(nil)
)

// S3BlobStore keeps blobs as objects blobs/ab/abcdef… of a bucket.
type S3BlobStore struct {
	c *s3store.Client
	// spool holds uploads of unknown size until they are hashed and
	// measured (an S3 PUT needs both up front).
	spool string
}

// NewS3BlobStore keeps blobs through c; spool is a local directory for
// uploads of unknown length.
func NewS3BlobStore(c *s3store.Client, spool string) (*S3BlobStore, error) {
	if err := os.MkdirAll(spool, 0o700); err != nil {
		return nil, fmt.Errorf("filesync: s3 blob store: %w", err)
	}
	return &S3BlobStore{c: c, spool: spool}, nil
}

func blobObject(hash string) string { return "blobs/" + hash[:2] + "/" + hash }

// Put implements BlobStore. The content is checked twice: the upload is
// signed with the blob's hash as its payload hash, so the server stores
// nothing that hashes otherwise, and the body's last bytes are held back
// unless the content read so far hashes to the name, so that a server that
// did not check gets an incomplete body and stores nothing either.
func (s *S3BlobStore) Put(ctx context.Context, hash string, r io.Reader, size int64) (int64, bool, error) {
	if !validHash(hash) {
		return 0, false, fmt.Errorf("filesync: put blob: %q is not a SHA-256 in lowercase hex", hash)
	}
	if size < 0 {
		f, n, err := s.spoolBody(ctx, hash, r)
		if err != nil {
			return n, false, err
		}
		defer f.Close()
		size, r = n, f
	}
	if size == 0 && hashBytes(nil) != hash {
		return 0, false, ErrHashMismatch
	}
	vr := &verifyReader{r: ctxReader{ctx, r}, h: sha256.New(), left: size, want: hash}
	err := s.c.Put(ctx, blobObject(hash), vr, size, s3store.PutOptions{SHA256: hash, IfAbsent: true})
	switch {
	case err == nil:
		return size, false, nil
	case errors.Is(err, s3store.ErrExists):
		// Stored before (blobs are immutable: same name, same content);
		// the conditional create stored nothing of this body.
		return vr.n, true, nil
	case vr.mismatch, errors.Is(err, s3store.ErrHashMismatch):
		return vr.n, false, ErrHashMismatch
	case vr.err != nil:
		return vr.n, false, vr.err // the body's own error, such as a size limit
	}
	return vr.n, false, fmt.Errorf("filesync: put blob: %w", err)
}

// spoolBody copies a body of unknown length to a temporary file, checking
// its hash; the file is removed when closed.
func (s *S3BlobStore) spoolBody(ctx context.Context, hash string, r io.Reader) (*os.File, int64, error) {
	f, err := os.CreateTemp(s.spool, "upload-*")
	if err != nil {
		return nil, 0, fmt.Errorf("filesync: put blob: %w", err)
	}
	os.Remove(f.Name()) // gone when closed
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), ctxReader{ctx, r})
	if err == nil && hex.EncodeToString(h.Sum(nil)) != hash {
		err = ErrHashMismatch
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, n, err
	}
	return f, n, nil
}

// verifyReader passes on exactly left bytes of r, hashing them; it fails
// with ErrHashMismatch instead of handing over the last ones when the whole
// does not hash to want.
type verifyReader struct {
	r        io.Reader
	h        hashWriter
	left     int64
	want     string
	n        int64
	mismatch bool
	err      error // r's own error
}

type hashWriter interface {
	io.Writer
	Sum([]byte) []byte
}

func (v *verifyReader) Read(p []byte) (int, error) {
	if v.mismatch {
		return 0, ErrHashMismatch
	}
	if v.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > v.left {
		p = p[:v.left]
	}
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.left -= int64(n)
	if v.left == 0 && hex.EncodeToString(v.h.Sum(nil)) != v.want {
		v.mismatch = true
		return 0, ErrHashMismatch
	}
	v.n += int64(n)
	if err == io.EOF && v.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	if err != nil && err != io.EOF {
		v.err = err
	}
	return n, err
}

// Get implements BlobStore: a HEAD for the size, then ranged GETs as the
// reader is read and seeked.
func (s *S3BlobStore) Get(ctx context.Context, hash string) (io.ReadSeekCloser, int64, error) {
	if !validHash(hash) {
		return nil, 0, ErrBlobNotFound
	}
	info, err := s.c.Head(ctx, blobObject(hash))
	if errors.Is(err, s3store.ErrNotFound) {
		return nil, 0, ErrBlobNotFound
	}
	if err != nil {
		return nil, 0, fmt.Errorf("filesync: get blob: %w", err)
	}
	return &objectReader{ctx: ctx, c: s.c, name: blobObject(hash), size: info.Size}, info.Size, nil
}

// OpenWhole implements wholeOpener: one GET that also gives the size, for
// a download that reads the blob from its start (no Range, no
// conditional request).
func (s *S3BlobStore) OpenWhole(ctx context.Context, hash string) (io.ReadSeekCloser, int64, error) {
	if !validHash(hash) {
		return nil, 0, ErrBlobNotFound
	}
	body, size, err := s.c.Open(ctx, blobObject(hash))
	if errors.Is(err, s3store.ErrNotFound) {
		return nil, 0, ErrBlobNotFound
	}
	if err != nil {
		return nil, 0, fmt.Errorf("filesync: get blob: %w", err)
	}
	return &objectReader{ctx: ctx, c: s.c, name: blobObject(hash), size: size, body: body}, size, nil
}

// Has implements BlobStore.
func (s *S3BlobStore) Has(ctx context.Context, hash string) (bool, error) {
	if !validHash(hash) {
		return false, nil
	}
	_, err := s.c.Head(ctx, blobObject(hash))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, s3store.ErrNotFound):
		return false, nil
	}
	return false, fmt.Errorf("filesync: has blob: %w", err)
}

// List implements BlobStore.
func (s *S3BlobStore) List(ctx context.Context, fn func(BlobInfo) error) error {
	err := s.c.List(ctx, "blobs/", "", func(o s3store.Info) error {
		fan, hash, ok := strings.Cut(strings.TrimPrefix(o.Name, "blobs/"), "/")
		if !ok || !validHash(hash) || !strings.HasPrefix(hash, fan) || len(fan) != 2 {
			return nil
		}
		return fn(BlobInfo{Hash: hash, Size: o.Size, ModTime: o.ModTime})
	})
	if err != nil {
		return fmt.Errorf("filesync: list blobs: %w", err)
	}
	return nil
}

// Remove implements BlobStore.
func (s *S3BlobStore) Remove(ctx context.Context, hash string) error {
	if !validHash(hash) {
		return fmt.Errorf("filesync: remove blob: %q is not a SHA-256 in lowercase hex", hash)
	}
	if err := s.c.Delete(ctx, blobObject(hash)); err != nil {
		return fmt.Errorf("filesync: remove blob: %w", err)
	}
	return nil
}

// objectReader reads an object of known size with ranged GETs, opened
// lazily, so that seeking (http.ServeContent looks for the size first)
// costs no request: a body open at another offset than the one read next
// is dropped only when read.
type objectReader struct {
	ctx  context.Context
	c    *s3store.Client
	name string
	size int64
	off  int64         // where the next Read reads
	body io.ReadCloser // open at bodyAt, or nil
	// bodyAt is the offset body reads next.
	bodyAt int64
}

func (o *objectReader) Read(p []byte) (int, error) {
	if o.off >= o.size {
		return 0, io.EOF
	}
	if o.body != nil && o.bodyAt != o.off {
		o.body.Close()
		o.body = nil
	}
	if o.body == nil {
		b, err := o.c.Get(o.ctx, o.name, o.off)
		if err != nil {
			return 0, err
		}
		o.body, o.bodyAt = b, o.off
	}
	n, err := o.body.Read(p)
	o.off += int64(n)
	o.bodyAt += int64(n)
	if err == io.EOF && o.off < o.size {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (o *objectReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		offset += o.off
	case io.SeekEnd:
		offset += o.size
	}
	if offset < 0 {
		return 0, errors.New("filesync: seek before the start of a blob")
	}
	o.off = offset
	return offset, nil
}

func (o *objectReader) Close() error {
	if o.body != nil {
		return o.body.Close()
	}
	return nil
}

// S3ObjectStore keeps the change log and the snapshots as objects.
type S3ObjectStore struct {
	c *s3store.Client
}

// NewS3ObjectStore keeps the store's named objects through c.
func NewS3ObjectStore(c *s3store.Client) *S3ObjectStore { return &S3ObjectStore{c: c} }

func (s *S3ObjectStore) check(name string) error {
	if err := checkPathSyntax(name, 8); err != nil {
		return fmt.Errorf("filesync: object name: %w", err)
	}
	return nil
}

// List implements ObjectStore (S3 lists in key order).
func (s *S3ObjectStore) List(ctx context.Context, prefix string) ([]string, error) {
	var out []string
	err := s.c.List(ctx, prefix, "", func(o s3store.Info) error {
		out = append(out, o.Name)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("filesync: list objects: %w", err)
	}
	return out, nil
}

// Open implements ObjectStore.
func (s *S3ObjectStore) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := s.check(name); err != nil {
		return nil, err
	}
	rc, err := s.c.Get(ctx, name, 0)
	if errors.Is(err, s3store.ErrNotFound) {
		return nil, fmt.Errorf("filesync: open object %s: %w", name, fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("filesync: open object: %w", err)
	}
	return rc, nil
}

// Put implements ObjectStore: an S3 PUT replaces an object atomically, and
// is durable when it is answered.
func (s *S3ObjectStore) Put(ctx context.Context, name string, data []byte) error {
	if err := s.check(name); err != nil {
		return err
	}
	if err := s.c.Replace(ctx, name, data); err != nil {
		return fmt.Errorf("filesync: put object: %w", err)
	}
	return nil
}

// Create implements objectCreator: fs.ErrExist when name exists.
func (s *S3ObjectStore) Create(ctx context.Context, name string, data []byte) error {
	if err := s.check(name); err != nil {
		return err
	}
	err := s.c.Create(ctx, name, data)
	if errors.Is(err, s3store.ErrExists) {
		return fmt.Errorf("filesync: create object %s: %w", name, fs.ErrExist)
	}
	if err != nil {
		return fmt.Errorf("filesync: create object: %w", err)
	}
	return nil
}

// Append implements ObjectStore; objects in S3 are immutable, and the
// change log creates one per append instead (objectCreator).
func (s *S3ObjectStore) Append(context.Context, string, []byte) error {
	return fmt.Errorf("filesync: append object: %w (S3 objects are immutable)", errors.ErrUnsupported)
}

// Truncate implements ObjectStore by rewriting the object; only the repair
// of a damaged last log object needs it.
func (s *S3ObjectStore) Truncate(ctx context.Context, name string, size int64) error {
	data, err := s.c.ReadAll(ctx, name)
	if err != nil {
		return fmt.Errorf("filesync: truncate object: %w", err)
	}
	if int64(len(data)) <= size {
		return nil
	}
	return s.Put(ctx, name, bytes.Clone(data[:size]))
}

// Remove implements ObjectStore.
func (s *S3ObjectStore) Remove(ctx context.Context, name string) error {
	if err := s.check(name); err != nil {
		return err
	}
	if err := s.c.Delete(ctx, name); err != nil {
		return fmt.Errorf("filesync: remove object: %w", err)
	}
	return nil
}
