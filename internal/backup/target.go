package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/scalepress/scalepress/internal/atomicfile"
)

// ErrNotFound means an object of a target does not exist.
var ErrNotFound = errors.New("not found")

// Target is where backups are kept: a directory, or object storage. Names
// are slash-separated and relative ("20261207T090000Z/manifest.json",
// "blobs/ab/abcd…").
type Target interface {
	// Put stores what r yields as name, atomically: a reader of name sees
	// all of it or nothing.
	Put(ctx context.Context, name string, r io.Reader) (int64, error)
	// Open reads name; ErrNotFound when it does not exist.
	Open(ctx context.Context, name string) (io.ReadCloser, error)
	// Has reports whether name exists.
	Has(ctx context.Context, name string) (bool, error)
	// List names the entries directly below dir ("" for the top).
	List(ctx context.Context, dir string) ([]string, error)
	// RemoveAll removes name and everything below it.
	RemoveAll(ctx context.Context, name string) error
	// String is the target as a user names it (--to).
	String() string
}

var _ Target = (*DirTarget)(nil)

// DirTarget keeps backups in a local directory, readable by its owner only:
// a backup holds the site's secrets.
type DirTarget struct{ Dir string }

// OpenTarget returns the target a user named with --to (or backup.to): a
// directory, or s3://BUCKET/PREFIX reached with s3 (which it checks).
func OpenTarget(ctx context.Context, to string, s3 S3Settings) (Target, error) {
	if strings.HasPrefix(to, "s3://") {
		return openS3(ctx, to, s3)
	}
	if strings.Contains(to, "://") {
		return nil, fmt.Errorf("backup: target %s: want a directory or s3://BUCKET/PREFIX", to)
	}
	abs, err := filepath.Abs(to)
	if err != nil {
		return nil, fmt.Errorf("backup: target %s: %w", to, err)
	}
	return &DirTarget{Dir: abs}, nil
}

func (d *DirTarget) String() string { return d.Dir }

func (d *DirTarget) path(name string) (string, error) {
	if name != "" && (!fs.ValidPath(name) || strings.Contains(name, "\\")) {
		return "", fmt.Errorf("backup: bad object name %q", name)
	}
	return filepath.Join(d.Dir, filepath.FromSlash(name)), nil
}

func (d *DirTarget) Put(ctx context.Context, name string, r io.Reader) (int64, error) {
	p, err := d.path(name)
	if err != nil {
		return 0, err
	}
	if err := mkdirs(d.Dir, filepath.Dir(p)); err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	f, err := atomicfile.Create(p, 0o600)
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	defer f.Close()
	n, err := io.Copy(f, ctxReader{ctx, r})
	if err != nil {
		return n, fmt.Errorf("backup: %s: %w", name, err)
	}
	if err := f.Commit(); err != nil {
		return n, fmt.Errorf("backup: %w", err)
	}
	return n, nil
}

// mkdirs makes dir (below root, with root) with mode 0700.
func mkdirs(root, dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.Chmod(root, 0o700)
}

func (d *DirTarget) Open(_ context.Context, name string) (io.ReadCloser, error) {
	p, err := d.path(name)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("backup: %s in %s: %w", name, d.Dir, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	return f, nil
}

func (d *DirTarget) Has(_ context.Context, name string) (bool, error) {
	p, err := d.path(name)
	if err != nil {
		return false, err
	}
	_, err = os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

func (d *DirTarget) List(_ context.Context, dir string) ([]string, error) {
	p, err := d.path(dir)
	if err != nil {
		return nil, err
	}
	es, err := os.ReadDir(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	var out []string
	for _, e := range es {
		if !atomicfile.IsTemp(e.Name()) {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

func (d *DirTarget) RemoveAll(_ context.Context, name string) error {
	p, err := d.path(name)
	if err != nil {
		return err
	}
	if name == "" {
		return fmt.Errorf("backup: refusing to remove the whole target")
	}
	return os.RemoveAll(p)
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// blobName is where a files blob is kept in a target.
func blobName(hash string) string { return path.Join("blobs", hash[:2], hash) }
