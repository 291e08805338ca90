package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/backup"
	"github.com/scalepress/scalepress/internal/controller"
	"github.com/scalepress/scalepress/internal/filesync"
)

// runBackup asks the running environment's controller for a backup (it
// knows the router's writer and holds the files token), or verifies one.
func runBackup(args []string) error {
	fs := newFlags("backup")
	var d dirFlags
	d.register(fs, true)
	to := fs.String("to", "", "target directory (default backup.to, else DIR/backups)")
	verify := fs.String("verify", "", "verify backup ID instead: restore it into a scratch directory and check checksums and row counts")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *verify != "" {
		return verifyBackup(d, *to, *verify)
	}
	target := *to
	if target != "" && !strings.HasPrefix(target, "s3://") {
		abs, err := filepath.Abs(target)
		if err != nil {
			return err
		}
		target = abs
	}
	c, err := apiClient(d)
	if err != nil {
		return err
	}
	if c.Token, err = operatorToken(d); err != nil {
		return err
	}
	c.HTTP = &http.Client{} // a backup takes as long as it takes; ^C ends it
	ctx, cancel := signalContext()
	defer cancel()
	var res api.BackupResult
	t0 := time.Now()
	if err := c.Post(ctx, api.APIPathBackups, api.BackupRequest{To: target}, &res); err != nil {
		return usageIfRefused(err, http.StatusBadRequest)
	}
	m, err := backup.ParseManifest(res.Manifest)
	if err != nil {
		return err
	}
	fmt.Printf("backup of %s (database from %s, files at seq %d) in %s: %s added (%d new files)\n",
		res.Target, m.DB.Member, m.Files.Seq, time.Since(t0).Round(time.Millisecond), humanBytes(m.Size()), m.Files.NewBlobs)
	fmt.Println(res.ID)
	return nil
}

// backupTarget is --to, else the config's backup.to, else DIR/backups;
// an s3:// target is reached with the config's backup.s3.
func backupTarget(ctx context.Context, d dirFlags, to string) (backup.Target, error) {
	cfg, err := d.load()
	if err != nil {
		return nil, err
	}
	if to == "" {
		to = cfg.Backup.To
	}
	if to == "" {
		to = filepath.Join(d.layout().Dir, "backups")
	}
	return backup.OpenTarget(ctx, to, controller.S3Settings(cfg.Backup.S3, os.TempDir()))
}

func verifyBackup(d dirFlags, to, id string) error {
	ctx, cancel := signalContext()
	defer cancel()
	t, err := backupTarget(ctx, d, to)
	if err != nil {
		return err
	}
	tools, err := backup.FindTools()
	if err != nil {
		return err
	}
	t0 := time.Now()
	res, err := backup.Verify(ctx, t, id, backup.Options{Tools: tools, Scratch: os.TempDir()})
	if err != nil {
		return err
	}
	fmt.Printf("backup %s is good: %d artefacts and %d files match their checksums, %d tables their row counts (%s)\n",
		id, res.Artefacts, res.Blobs, res.Tables, time.Since(t0).Round(time.Millisecond))
	return nil
}

// runBackups lists the backups of the target, newest first.
func runBackups(args []string) error {
	fs := newFlags("backups")
	var d dirFlags
	d.register(fs, true)
	to := fs.String("to", "", "target directory (default backup.to, else DIR/backups)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	ctx, cancel := signalContext()
	defer cancel()
	t, err := backupTarget(ctx, d, *to)
	if err != nil {
		return err
	}
	listed, err := backup.List(ctx, t)
	if err != nil {
		return err
	}
	return printBackups(os.Stdout, t, listed, *asJSON)
}

// listedBackup is one line of `backups --json`.
type listedBackup struct {
	ID       string    `json:"id"`
	Time     time.Time `json:"time,omitzero"`
	Size     int64     `json:"size"`
	Member   string    `json:"db_member,omitempty"`
	FilesSeq uint64    `json:"files_seq"`
	Files    int       `json:"files"`
	Version  string    `json:"version,omitempty"`
	Error    string    `json:"error,omitempty"`
}

func printBackups(w io.Writer, t backup.Target, listed []backup.Listed, asJSON bool) error {
	out := []listedBackup{}
	for _, l := range listed {
		lb := listedBackup{ID: l.ID}
		if l.Err != nil {
			lb.Error = l.Err.Error()
		} else {
			m := l.Manifest
			lb.Time, lb.Size, lb.Member, lb.FilesSeq, lb.Files, lb.Version = m.Started, m.Size(), m.DB.Member, m.Files.Seq, m.Files.Files, m.Version
		}
		out = append(out, lb)
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"target": t.String(), "backups": out})
	}
	if len(out) == 0 {
		fmt.Fprintf(w, "no backups in %s\n", t)
		return nil
	}
	fmt.Fprintf(w, "%-20s  %-20s  %10s  %s\n", "ID", "TIME", "ADDED", "CONTENT")
	for _, b := range out {
		if b.Error != "" {
			fmt.Fprintf(w, "%-20s  %-20s  %10s  %s\n", b.ID, "-", "-", "unreadable: "+b.Error)
			continue
		}
		fmt.Fprintf(w, "%-20s  %-20s  %10s  database from %s, %d files (seq %d)\n", b.ID, b.Time.Format(time.RFC3339), humanBytes(b.Size), b.Member, b.Files, b.FilesSeq)
	}
	return nil
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// filesBackup reads the files store for the controller's backups
// (controller.FilesBackup).
func filesBackup(url, tok string) backup.FilesSource {
	return filesReader{filesync.NewClient(url, tok, nil)}
}

var _ controller.FilesBackup = filesBackup

type filesReader struct{ c *filesync.Client }

func (f filesReader) Tree(ctx context.Context) (backup.FilesTree, error) {
	m, err := f.c.Manifest(ctx)
	if err != nil {
		return backup.FilesTree{}, err
	}
	doc, err := json.Marshal(m)
	if err != nil {
		return backup.FilesTree{}, err
	}
	tree := backup.FilesTree{Seq: m.Seq, Doc: doc}
	seen := map[string]bool{}
	for _, e := range m.Entries {
		if e.Dir {
			continue
		}
		tree.Files++
		tree.Bytes += e.Size
		if !seen[e.Hash] {
			seen[e.Hash] = true
			tree.Blobs = append(tree.Blobs, backup.Blob{Hash: e.Hash, Size: e.Size})
		}
	}
	return tree, nil
}

func (f filesReader) GetBlob(ctx context.Context, hash string, w io.Writer) (int64, error) {
	return f.c.GetBlob(ctx, hash, w)
}
