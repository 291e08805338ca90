package controller

// The release store's copy in the files store's S3 bucket (docs/adr/0023-releases.md):
// with files.store.kind s3, every release is also kept under
// PREFIX/releases/ in files.store.bucket, so that a controller on another
// host has every release, not only the live code.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sync"
	"time"

	"github.com/scalepress/scalepress/internal/release"
	"github.com/scalepress/scalepress/internal/s3store"
)

// releaseBlobTimeout bounds the upload or download of one release blob
// (a file of WordPress core is at most a few MB; the limit of a source is
// 1 GiB in all).
const releaseBlobTimeout = 5 * time.Minute

// s3Remote is a release.Remote over the files store's bucket.
type s3Remote struct{ c *s3store.Client }

func (r s3Remote) Put(name string, body io.Reader, size int64) error {
	ctx, cancel := context.WithTimeout(context.Background(), releaseBlobTimeout)
	defer cancel()
	return r.c.Put(ctx, name, body, size, s3store.PutOptions{})
}

func (r s3Remote) Get(name string) (io.ReadCloser, error) {
	ctx, cancel := context.WithTimeout(context.Background(), releaseBlobTimeout)
	rc, err := r.c.Get(ctx, name, 0)
	if errors.Is(err, s3store.ErrNotFound) {
		cancel()
		return nil, fmt.Errorf("%w: %w", os.ErrNotExist, err)
	}
	if err != nil {
		cancel()
		return nil, err
	}
	return cancelCloser{rc, cancel}, nil
}

type cancelCloser struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c cancelCloser) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

func (r s3Remote) List(prefix string, fn func(string) error) error {
	return r.c.List(context.Background(), prefix, "", func(o s3store.Info) error { return fn(o.Name) })
}

func (r s3Remote) Delete(name string) error { return r.c.Delete(context.Background(), name) }

// releaseRemote is the remote of the release store: nil with a local
// files store; made once.
type releaseRemote struct {
	once   sync.Once
	remote release.Remote
	err    error
}

func (c *Controller) releaseRemote() (release.Remote, error) {
	c.relRemote.once.Do(func() {
		fs := c.cfg.Files.Store
		if fs.Kind != "s3" {
			return
		}
		cfg := s3store.DefaultConfig()
		cfg.Endpoint, cfg.Bucket, cfg.Region = fs.Endpoint, fs.Bucket, fs.Region
		cfg.Prefix = path.Join(fs.Prefix, "releases")
		var err error
		if cfg.AccessKey, err = s3store.ReadSecretFile(fs.AccessKeyFile); err != nil {
			c.relRemote.err = fmt.Errorf("files.store.access_key_file: %w", err)
			return
		}
		if cfg.SecretKey, err = s3store.ReadSecretFile(fs.SecretKeyFile); err != nil {
			c.relRemote.err = fmt.Errorf("files.store.secret_key_file: %w", err)
			return
		}
		if fs.CAFile != "" {
			if cfg.CAPEM, err = os.ReadFile(fs.CAFile); err != nil {
				c.relRemote.err = fmt.Errorf("files.store.ca_file: %w", err)
				return
			}
		}
		client, err := s3store.New(cfg, c.logger)
		if err != nil {
			c.relRemote.err = fmt.Errorf("files.store: %w", err)
			return
		}
		c.relRemote.remote = s3Remote{client}
	})
	return c.relRemote.remote, c.relRemote.err
}

// openReleaseStore opens DIR/releases, with its copy in the files
// store's bucket when there is one.
func (c *Controller) openReleaseStore() (*release.Store, error) {
	st, err := release.OpenStore(filepath.Join(c.layout.Dir, "releases"))
	if err != nil {
		return nil, err
	}
	remote, err := c.releaseRemote()
	if err != nil {
		return nil, fmt.Errorf("releases: the copy in the files store's bucket: %w", err)
	}
	if remote != nil {
		st.WithRemote(remote)
	}
	return st, nil
}
