package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"path"
	"strings"
	"time"

	"github.com/scalepress/scalepress/internal/galera"
)

// FilesSource is the files store as a backup reads it.
type FilesSource interface {
	// Tree is the store's current tree: its sequence number, the tree as
	// the store's own manifest document, and the blobs it names.
	Tree(ctx context.Context) (FilesTree, error)
	// GetBlob writes blob hash to w; the caller checks the hash.
	GetBlob(ctx context.Context, hash string, w io.Writer) (int64, error)
}

// FilesTree is the files store's tree at one sequence number.
type FilesTree struct {
	Seq   uint64
	Doc   []byte // the store's manifest document, kept as files.json
	Blobs []Blob // every blob the tree names, once
	Files int    // files in the tree
	Bytes int64  // their content
}

// Blob is a files store blob.
type Blob struct {
	Hash string
	Size int64
}

// Source is what a backup copies.
type Source struct {
	Member   galera.MemberConfig // the database member to copy
	Database string              // the site's database
	Files    FilesSource
	// Secrets are the secrets a restored site needs, by file name in
	// DIR/secrets (admin-password, db-password, ...).
	Secrets map[string]string
	Config  []byte // DIR/scalepress.yaml; nil when there is none
	Version string // scalepress version
}

// Options are the tools, a scratch directory and the clock.
type Options struct {
	Tools   Tools
	Scratch string // a directory for temporary work; removed after
	Now     func() time.Time
	Logger  *slog.Logger
}

func (o Options) now() time.Time {
	if o.Now == nil {
		return time.Now()
	}
	return o.Now()
}

// Run makes one backup of src in t and returns its manifest. The database
// is copied first, then the files tree: every file the copied database can
// name is in the tree (WordPress writes an upload before its row). The
// manifest goes last; on any failure the backup's directory is removed, so a
// partial backup never exists under its id.
func Run(ctx context.Context, src Source, t Target, o Options) (m Manifest, err error) {
	started := o.now().UTC()
	id, err := freeID(ctx, t, started)
	if err != nil {
		return m, err
	}
	m = Manifest{Format: Format, ID: id, Version: src.Version, Started: started,
		DB: DBInfo{Member: src.Member.ID, Database: src.Database}}
	work, err := os.MkdirTemp(o.Scratch, "backup-"+id+"-")
	if err != nil {
		return m, fmt.Errorf("backup: scratch: %w", err)
	}
	defer os.RemoveAll(work)
	defer func() {
		if err != nil {
			t.RemoveAll(context.WithoutCancel(ctx), id)
		}
	}()

	// The database: streamed to the target and, at once, unpacked into the
	// scratch directory, prepared and counted by a scratch server.
	if err := os.MkdirAll(path.Join(work, "data"), 0o700); err != nil {
		return m, fmt.Errorf("backup: scratch: %w", err)
	}
	art, err := putDB(ctx, src.Member, t, id, work, o)
	if err != nil {
		return m, fmt.Errorf("backup: database: %w", err)
	}
	m.Artefacts = append(m.Artefacts, art)
	if err := prepare(ctx, o.Tools, path.Join(work, "data")); err != nil {
		return m, fmt.Errorf("backup: database: %w", err)
	}
	pos, err := readPosition(path.Join(work, "data"))
	if err != nil {
		return m, fmt.Errorf("backup: database: %w", err)
	}
	m.DB.GaleraUUID, m.DB.GaleraSeqno, m.DB.GTID = pos.galeraUUID, pos.galeraSeqno, pos.gtid
	if m.DB.Rows, err = countRows(ctx, o.Tools, path.Join(work, "data"), path.Join(work, "run"), src.Database); err != nil {
		return m, fmt.Errorf("backup: database: %w", err)
	}

	// The files: only the blobs the target lacks are copied.
	tree, err := src.Files.Tree(ctx)
	if err != nil {
		return m, fmt.Errorf("backup: files: %w", err)
	}
	m.Files.Seq, m.Files.Files, m.Files.Bytes = tree.Seq, tree.Files, tree.Bytes
	for _, b := range tree.Blobs {
		has, err := t.Has(ctx, blobName(b.Hash))
		if err != nil {
			return m, fmt.Errorf("backup: files: %w", err)
		}
		if has {
			continue
		}
		n, err := putBlob(ctx, src.Files, t, b.Hash)
		if err != nil {
			return m, fmt.Errorf("backup: files: blob %s: %w", b.Hash, err)
		}
		m.Files.NewBlobs++
		m.Files.NewBytes += n
	}
	if art, err = putArtefact(ctx, t, id, ArtFiles, tree.Doc); err != nil {
		return m, err
	}
	m.Artefacts = append(m.Artefacts, art)

	sec, err := json.MarshalIndent(src.Secrets, "", "  ")
	if err != nil {
		return m, fmt.Errorf("backup: secrets: %w", err)
	}
	if art, err = putArtefact(ctx, t, id, ArtSecrets, sec); err != nil {
		return m, err
	}
	m.Artefacts = append(m.Artefacts, art)
	if src.Config != nil {
		if art, err = putArtefact(ctx, t, id, ArtConfig, src.Config); err != nil {
			return m, err
		}
		m.Artefacts = append(m.Artefacts, art)
	}

	m.Finished = o.now().UTC()
	if err := m.Validate(); err != nil {
		return m, fmt.Errorf("backup: %w", err)
	}
	doc, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return m, fmt.Errorf("backup: manifest: %w", err)
	}
	if _, err := t.Put(ctx, path.Join(id, ManifestArt), bytesReader(doc)); err != nil {
		return m, fmt.Errorf("backup: manifest: %w", err)
	}
	return m, nil
}

// freeID is the id of a backup started at t, with a suffix when one
// started in the same second.
func freeID(ctx context.Context, t Target, at time.Time) (string, error) {
	base := NewID(at)
	for i := 0; i < 1000; i++ {
		id := base
		if i > 0 {
			id = fmt.Sprintf("%s-%d", base, i)
		}
		has, err := t.Has(ctx, id)
		if err != nil {
			return "", fmt.Errorf("backup: %w", err)
		}
		if !has {
			return id, nil
		}
	}
	return "", fmt.Errorf("backup: no free id for %s", base)
}

// putDB streams the member's copy to the target and into mbstream at once.
func putDB(ctx context.Context, mc galera.MemberConfig, t Target, id, work string, o Options) (Artefact, error) {
	pr, pw := io.Pipe()
	xr, xw := io.Pipe()
	h := sha256.New()
	streamErr := make(chan error, 1)
	go func() {
		err := streamDB(ctx, o.Tools, mc, work, io.MultiWriter(pw, xw))
		pw.CloseWithError(errOr(err, io.EOF))
		xw.CloseWithError(errOr(err, io.EOF))
		streamErr <- err
	}()
	extractErr := make(chan error, 1)
	go func() {
		err := extract(ctx, o.Tools, xr, path.Join(work, "data"))
		xr.CloseWithError(errOr(err, io.ErrClosedPipe))
		extractErr <- err
	}()
	n, perr := t.Put(ctx, path.Join(id, ArtDB), io.TeeReader(pr, h))
	pr.CloseWithError(errOr(perr, io.ErrClosedPipe))
	serr, xerr := <-streamErr, <-extractErr
	if err := rootCause(perr, xerr, serr); err != nil {
		return Artefact{}, err
	}
	return Artefact{Name: ArtDB, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// rootCause is the first of errs that is not a consequence of another
// failing (a pipe closed under a writer), else the first non-nil one.
func rootCause(errs ...error) error {
	var first error
	for _, err := range errs {
		if err == nil {
			continue
		}
		if first == nil {
			first = err
		}
		if !errors.Is(err, io.ErrClosedPipe) && !strings.Contains(err.Error(), "Broken pipe") && !strings.Contains(err.Error(), "broken pipe") {
			return err
		}
	}
	return first
}

func errOr(err, def error) error {
	if err != nil {
		return err
	}
	return def
}

// countRows starts a scratch server on a prepared copy and counts the rows
// of db's tables.
func countRows(ctx context.Context, tools Tools, datadir, run, db string) (map[string]int64, error) {
	s, err := startScratch(ctx, tools, datadir, run)
	if err != nil {
		return nil, err
	}
	rows, err := s.rows(ctx, db)
	if serr := s.stop(); err == nil {
		err = serr
	}
	return rows, err
}

// putBlob copies blob hash from the files store to the target, checking
// its content before it is committed there.
func putBlob(ctx context.Context, fs FilesSource, t Target, hash string) (int64, error) {
	pr, pw := io.Pipe()
	go func() {
		_, err := fs.GetBlob(ctx, hash, pw)
		pw.CloseWithError(err)
	}()
	n, err := t.Put(ctx, blobName(hash), &hashCheck{r: pr, h: sha256.New(), want: hash})
	pr.CloseWithError(errOr(err, io.ErrClosedPipe))
	return n, err
}

// hashCheck reads r and fails at its end unless the content hashes to want:
// a Put reading it never commits wrong content.
type hashCheck struct {
	r    io.Reader
	h    hash.Hash
	want string
}

func (c *hashCheck) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	if errors.Is(err, io.EOF) {
		if got := hex.EncodeToString(c.h.Sum(nil)); got != c.want {
			return n, fmt.Errorf("%w: content hashes to %s, want %s", ErrCorrupt, got, c.want)
		}
	}
	return n, err
}

func putArtefact(ctx context.Context, t Target, id, name string, data []byte) (Artefact, error) {
	if _, err := t.Put(ctx, path.Join(id, name), bytesReader(data)); err != nil {
		return Artefact{}, fmt.Errorf("backup: %s: %w", name, err)
	}
	sum := sha256.Sum256(data)
	return Artefact{Name: name, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}, nil
}
