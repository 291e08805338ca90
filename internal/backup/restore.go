package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/scalepress/scalepress/internal/atomicfile"
)

// ErrOutsideLogs means a point in time the archived binary logs do not reach.
var ErrOutsideLogs = errors.New("the time is outside what the backup and its binary logs cover")

// FilesRestorer writes a files store in dir holding exactly the tree doc
// (the store's manifest document), reading blobs through open.
type FilesRestorer func(ctx context.Context, dir string, doc []byte, open func(ctx context.Context, hash string) (io.ReadCloser, error)) error

// RestoreRequest is one restore.
type RestoreRequest struct {
	ID string
	// Dir is the new state directory; it must not exist.
	Dir string
	// At replays the archived binary logs up to this moment; zero restores
	// the backup as it was taken.
	At time.Time
	// MemberDir is where the first database member's files go, relative to
	// Dir (the state directory's layout: "db/db-1").
	MemberDir string
	// Files writes the files store (the state directory's "files").
	FilesDir string
	Files    FilesRestorer
	// Prepared is called with the datadir before the scratch directory is
	// moved into place (the database layer marks it initialised).
	Prepared func(datadir string) error
	// State writes the state file of the restored directory.
	State func(dir string) error
	// CheckConfig may refuse the backed-up configuration before anything
	// is restored (nil accepts any).
	CheckConfig func(cfg []byte) error
}

// Restore makes a complete, stopped environment in req.Dir from backup
// req.ID: built in a temporary directory beside it and renamed into place
// at the end, so that on any failure req.Dir does not exist.
func Restore(ctx context.Context, t Target, req RestoreRequest, o Options) (Manifest, error) {
	if _, err := os.Lstat(req.Dir); err == nil {
		return Manifest{}, fmt.Errorf("restore: %s exists; restore makes a new state directory (it never writes over an environment, running or not): name a new --dir", req.Dir)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return Manifest{}, fmt.Errorf("restore: %w", err)
	}
	m, err := ReadManifest(ctx, t, req.ID)
	if err != nil {
		return m, fmt.Errorf("restore: %w", err)
	}
	parent := filepath.Dir(req.Dir)
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(req.Dir)+".restore-")
	if err != nil {
		return m, fmt.Errorf("restore: %w", err)
	}
	defer os.RemoveAll(tmp) // gone after the rename; the half-made one otherwise
	if err := os.Chmod(tmp, 0o755); err != nil {
		return m, fmt.Errorf("restore: %w", err)
	}
	if err := build(ctx, t, m, req, tmp, o); err != nil {
		return m, fmt.Errorf("restore %s: %w", req.ID, err)
	}
	if err := os.Rename(tmp, req.Dir); err != nil {
		return m, fmt.Errorf("restore: %w", err)
	}
	if err := atomicfile.SyncDir(parent); err != nil {
		return m, fmt.Errorf("restore: %w", err)
	}
	return m, nil
}

func build(ctx context.Context, t Target, m Manifest, req RestoreRequest, dir string, o Options) error {
	var cfg []byte
	if _, ok := m.Artefact(ArtConfig); ok {
		var err error
		if cfg, err = readChecked(ctx, t, m, ArtConfig, 1<<20); err != nil {
			return err
		}
		if req.CheckConfig != nil {
			if err := req.CheckConfig(cfg); err != nil {
				return err
			}
		}
	}
	var logs []string
	if !req.At.IsZero() {
		var err error
		if logs, err = binlogsFor(ctx, t, m, req.At, filepath.Join(dir, "run", "binlog")); err != nil {
			return err
		}
	}
	// The database: checked, unpacked, prepared, replayed to At.
	// The member's directory like the database layer makes it: reachable
	// by the service user (mysql) that owns the datadir below.
	memberDir := filepath.Join(dir, filepath.FromSlash(req.MemberDir))
	if err := os.MkdirAll(memberDir, 0o755); err != nil {
		return err
	}
	for d := memberDir; d != dir; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			return err
		}
	}
	datadir := filepath.Join(memberDir, "data")
	if err := os.MkdirAll(datadir, 0o750); err != nil {
		return err
	}
	r, err := openChecked(ctx, t, m, ArtDB)
	if err != nil {
		return err
	}
	err = extractChecked(ctx, o.Tools, r, datadir)
	r.Close()
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	if err := prepare(ctx, o.Tools, datadir); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	s, err := startScratch(ctx, o.Tools, datadir, filepath.Join(dir, "run", "scratch"))
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	if len(logs) > 0 {
		err = s.replay(ctx, logs, m.DB.GTID, req.At)
	} else {
		var rows map[string]int64
		if rows, err = s.rows(ctx, m.DB.Database); err == nil {
			if d := diffRows(m.DB.Rows, rows); d != "" {
				err = fmt.Errorf("%w: database: %s", ErrCorrupt, d)
			}
		}
	}
	if serr := s.stop(); err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	os.RemoveAll(filepath.Join(dir, "run"))
	if req.Prepared != nil {
		if err := req.Prepared(datadir); err != nil {
			return fmt.Errorf("database: %w", err)
		}
	}

	// The files store.
	doc, err := readChecked(ctx, t, m, ArtFiles, 1<<30)
	if err != nil {
		return err
	}
	open := func(ctx context.Context, hash string) (io.ReadCloser, error) {
		return t.Open(ctx, blobName(hash))
	}
	if err := req.Files(ctx, filepath.Join(dir, filepath.FromSlash(req.FilesDir)), doc, open); err != nil {
		return fmt.Errorf("files: %w", err)
	}

	// Secrets (the database's passwords, the admin's, the salts) and the
	// configuration; every other secret is made new by the first up.
	sec, err := readChecked(ctx, t, m, ArtSecrets, 1<<20)
	if err != nil {
		return err
	}
	var secrets map[string]string
	if err := json.Unmarshal(sec, &secrets); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrCorrupt, ArtSecrets, err)
	}
	sdir := filepath.Join(dir, "secrets")
	if err := os.MkdirAll(sdir, 0o700); err != nil {
		return err
	}
	for name, v := range secrets {
		if !fs.ValidPath(name) || strings.Contains(name, "/") {
			return fmt.Errorf("%w: %s: secret name %q", ErrCorrupt, ArtSecrets, name)
		}
		if err := atomicfile.Write(filepath.Join(sdir, name), []byte(v), 0o600); err != nil {
			return err
		}
	}
	if cfg != nil {
		if err := atomicfile.Write(filepath.Join(dir, "scalepress.yaml"), cfg, 0o644); err != nil {
			return err
		}
	}
	if req.State != nil {
		if err := req.State(dir); err != nil {
			return err
		}
	}
	return nil
}

// openChecked opens artefact name of m; reading it to the end fails unless
// its size and SHA-256 are the manifest's.
func openChecked(ctx context.Context, t Target, m Manifest, name string) (io.ReadCloser, error) {
	a, ok := m.Artefact(name)
	if !ok {
		return nil, fmt.Errorf("%w: %s is not in the manifest", ErrCorrupt, name)
	}
	r, err := t.Open(ctx, path.Join(m.ID, name))
	if err != nil {
		return nil, err
	}
	return &checkedReader{rc: r, h: sha256.New(), a: a}, nil
}

type checkedReader struct {
	rc io.ReadCloser
	h  interface {
		io.Writer
		Sum([]byte) []byte
	}
	n int64
	a Artefact
}

func (c *checkedReader) Read(p []byte) (int, error) {
	n, err := c.rc.Read(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	if c.n > c.a.Size {
		return n, fmt.Errorf("%w: %s is longer than the manifest's %d bytes", ErrCorrupt, c.a.Name, c.a.Size)
	}
	if errors.Is(err, io.EOF) {
		if c.n != c.a.Size {
			return n, fmt.Errorf("%w: %s has %d bytes, the manifest says %d", ErrCorrupt, c.a.Name, c.n, c.a.Size)
		}
		if got := hex.EncodeToString(c.h.Sum(nil)); got != c.a.SHA256 {
			return n, fmt.Errorf("%w: %s has SHA-256 %s, the manifest says %s (checksum mismatch)", ErrCorrupt, c.a.Name, got, c.a.SHA256)
		}
	}
	return n, err
}

func (c *checkedReader) Close() error { return c.rc.Close() }

// extractChecked unpacks a checked artefact and reads it to its end, so
// that a damaged copy is reported as the checksum mismatch it is (mbstream
// may notice first and stop).
func extractChecked(ctx context.Context, tools Tools, r io.Reader, dir string) error {
	err := extract(ctx, tools, r, dir)
	if _, derr := io.Copy(io.Discard, r); derr != nil && (err != nil || errors.Is(derr, ErrCorrupt)) {
		return derr
	}
	return err
}

func readChecked(ctx context.Context, t Target, m Manifest, name string, limit int64) ([]byte, error) {
	r, err := openChecked(ctx, t, m, name)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, limit))
	if err != nil {
		return nil, err
	}
	return data, nil
}

// binlogArchive is binlog/<member>/archived.json: the archive holds every
// transaction the member committed before Until.
type binlogArchive struct {
	Until time.Time `json:"until"`
	Files []string  `json:"files"` // in order
}

// binlogsFor copies to dir the archived binary logs of the backup's member
// that a replay to at needs, and checks that they reach at.
func binlogsFor(ctx context.Context, t Target, m Manifest, at time.Time, dir string) ([]string, error) {
	if at.Before(m.Started) {
		return nil, fmt.Errorf("%w: %s is before backup %s was taken (%s); restore an older backup", ErrOutsideLogs, at.UTC().Format(time.RFC3339), m.ID, m.Started.Format(time.RFC3339))
	}
	if m.DB.GTID == "" {
		return nil, fmt.Errorf("%w: backup %s has no binary log position (the member ran without binary logs)", ErrOutsideLogs, m.ID)
	}
	base := path.Join("binlog", m.DB.Member)
	data, err := readAll(ctx, t, path.Join(base, "archived.json"), 1<<20)
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%w: no binary logs of %s are archived in %s", ErrOutsideLogs, m.DB.Member, t)
	}
	if err != nil {
		return nil, err
	}
	var a binlogArchive
	if err := json.Unmarshal(data, &a); err != nil {
		return nil, fmt.Errorf("%w: %s/archived.json: %v", ErrCorrupt, base, err)
	}
	if !at.Before(a.Until) {
		return nil, fmt.Errorf("%w: the binary logs of %s are archived up to %s; %s is later", ErrOutsideLogs, m.DB.Member, a.Until.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339))
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	files := append([]string(nil), a.Files...)
	sort.Strings(files) // binlog.000001, … : the names order them
	var out []string
	for _, f := range files {
		if !binlogNameRE.MatchString(f) {
			return nil, fmt.Errorf("%w: %s/archived.json: file %q", ErrCorrupt, base, f)
		}
		r, err := t.Open(ctx, path.Join(base, f))
		if err != nil {
			return nil, fmt.Errorf("binary log %s: %w", f, err)
		}
		err = writeFrom(filepath.Join(dir, f), r)
		r.Close()
		if err != nil {
			return nil, err
		}
		out = append(out, filepath.Join(dir, f))
	}
	return out, nil
}

// writeFrom writes what r yields to p, atomically.
func writeFrom(p string, r io.Reader) error {
	f, err := atomicfile.Create(p, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.Copy(f, r); err != nil {
		return err
	}
	return f.Commit()
}
