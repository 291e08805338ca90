package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"

	"github.com/scalepress/scalepress/internal/s3store"
)

// S3Settings reach the object storage of s3:// targets (config backup.s3).
type S3Settings struct {
	Endpoint, Region             string
	AccessKeyFile, SecretKeyFile string
	CAFile                       string
	// Spool is a directory for an upload's temporary copy: an object's
	// size and SHA-256 go with its PUT, so a stream is spooled first.
	Spool string
}

var _ Target = (*S3Target)(nil)

// S3Target keeps backups in a bucket under a prefix. Every object is one
// PUT with its SHA-256 signed as the payload hash: the server stores all of
// it or nothing, and nothing whose content differs.
type S3Target struct {
	c     *s3store.Client
	url   string
	spool string
}

// openS3 opens s3://BUCKET/PREFIX and checks that the bucket answers.
func openS3(ctx context.Context, to string, s S3Settings) (*S3Target, error) {
	bucket, prefix, _ := strings.Cut(strings.TrimPrefix(to, "s3://"), "/")
	if s.Endpoint == "" {
		return nil, fmt.Errorf("backup: target %s: backup.s3.endpoint is not set in the config", to)
	}
	cfg := s3store.DefaultConfig()
	cfg.Endpoint, cfg.Bucket, cfg.Prefix = s.Endpoint, bucket, strings.Trim(prefix, "/")
	if s.Region != "" {
		cfg.Region = s.Region
	}
	var err error
	if cfg.AccessKey, err = s3store.ReadSecretFile(s.AccessKeyFile); err != nil {
		return nil, fmt.Errorf("backup: backup.s3.access_key_file: %w", err)
	}
	if cfg.SecretKey, err = s3store.ReadSecretFile(s.SecretKeyFile); err != nil {
		return nil, fmt.Errorf("backup: backup.s3.secret_key_file: %w", err)
	}
	if s.CAFile != "" {
		if cfg.CAPEM, err = os.ReadFile(s.CAFile); err != nil {
			return nil, fmt.Errorf("backup: backup.s3.ca_file: %w", err)
		}
	}
	c, err := s3store.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, fmt.Errorf("backup: target %s: %w", to, err)
	}
	if err := c.Check(ctx); err != nil {
		return nil, fmt.Errorf("backup: target %s: %w", to, err)
	}
	spool := s.Spool
	if spool == "" {
		spool = os.TempDir()
	}
	return &S3Target{c: c, url: "s3://" + bucket + "/" + strings.Trim(prefix, "/"), spool: spool}, nil
}

func (s *S3Target) String() string { return strings.TrimSuffix(s.url, "/") }

func (s *S3Target) Put(ctx context.Context, name string, r io.Reader) (int64, error) {
	f, err := os.CreateTemp(s.spool, ".backup-spool-*")
	if err != nil {
		return 0, fmt.Errorf("backup: spool: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), ctxReader{ctx, r})
	if err != nil {
		return n, fmt.Errorf("backup: %s: %w", name, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return n, err
	}
	if err := s.c.Put(ctx, name, f, n, s3store.PutOptions{SHA256: hex.EncodeToString(h.Sum(nil))}); err != nil {
		return n, fmt.Errorf("backup: %w", err)
	}
	return n, nil
}

func (s *S3Target) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	r, err := s.c.Get(ctx, name, 0)
	if errors.Is(err, s3store.ErrNotFound) {
		return nil, fmt.Errorf("backup: %s in %s: %w", name, s, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	return r, nil
}

// errStop ends a listing early.
var errStop = errors.New("stop")

// Has reports whether name is an object or a "directory" (a prefix of one).
func (s *S3Target) Has(ctx context.Context, name string) (bool, error) {
	_, err := s.c.Head(ctx, name)
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, s3store.ErrNotFound) {
		return false, fmt.Errorf("backup: %w", err)
	}
	found := false
	err = s.c.List(ctx, name+"/", "", func(s3store.Info) error { found = true; return errStop })
	if err != nil && !errors.Is(err, errStop) {
		return false, fmt.Errorf("backup: %w", err)
	}
	return found, nil
}

// List names the entries below dir: one listing per entry, each starting
// after the previous entry's keys, so that a directory of many objects
// (blobs/) costs one request, not its size.
func (s *S3Target) List(ctx context.Context, dir string) ([]string, error) {
	prefix := ""
	if dir != "" {
		prefix = strings.TrimSuffix(dir, "/") + "/"
	}
	var out []string
	after := ""
	for {
		next := ""
		err := s.c.List(ctx, prefix, after, func(i s3store.Info) error {
			next, _, _ = strings.Cut(strings.TrimPrefix(i.Name, prefix), "/")
			return errStop
		})
		if err != nil && !errors.Is(err, errStop) {
			return nil, fmt.Errorf("backup: %w", err)
		}
		if next == "" {
			break
		}
		out = append(out, next)
		after = prefix + next + "/\U0010FFFF"
	}
	sort.Strings(out)
	return out, nil
}

func (s *S3Target) RemoveAll(ctx context.Context, name string) error {
	if name == "" {
		return fmt.Errorf("backup: refusing to remove the whole target")
	}
	var names []string
	err := s.c.List(ctx, name+"/", "", func(i s3store.Info) error { names = append(names, i.Name); return nil })
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	for _, n := range append(names, name) {
		if err := s.c.Delete(ctx, n); err != nil {
			return fmt.Errorf("backup: %w", err)
		}
	}
	return nil
}
