package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/scalepress/scalepress/internal/backup"
	"github.com/scalepress/scalepress/internal/config"
	"github.com/scalepress/scalepress/internal/controller"
	"github.com/scalepress/scalepress/internal/filesync"
	"github.com/scalepress/scalepress/internal/galera"
	"github.com/scalepress/scalepress/internal/statedir"
)

// runRestore makes a complete, stopped environment in --dir from a backup.
// It needs no running environment: it reads the target and runs its own
// scratch database server.
func runRestore(args []string) error {
	fs := newFlags("restore")
	dir := fs.String("dir", "", "the new state directory (must not exist)")
	from := fs.String("from", "", "the target holding BACKUP when BACKUP is an id (default ./.scalepress/backups)")
	cfgPath := fs.String("config", "", "a config whose backup.s3 reaches an s3:// target (default ./.scalepress/scalepress.yaml when it exists)")
	at := fs.String("at", "", "replay the archived binary logs up to this RFC 3339 time")
	// BACKUP comes first (restore BACKUP --dir NEWDIR); flags may follow it.
	var backupArg string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		backupArg, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if backupArg == "" && fs.NArg() > 0 {
		backupArg = fs.Arg(0)
	} else if fs.NArg() > 0 {
		return errUsagef("unexpected argument %q", fs.Arg(0))
	}
	if backupArg == "" || *dir == "" {
		return errUsagef("usage: scalepress restore BACKUP --dir NEWDIR [--at RFC3339-TIME] (BACKUP: TARGET/ID, or ID with --from TARGET)")
	}
	var when time.Time
	if *at != "" {
		var err error
		if when, err = time.Parse(time.RFC3339, *at); err != nil {
			return errUsagef("--at %q: want an RFC 3339 time such as 2026-12-07T09:30:00Z", *at)
		}
	}
	ctx, cancel := signalContext()
	defer cancel()
	target, id, err := resolveBackup(ctx, backupArg, *from, *cfgPath)
	if err != nil {
		return err
	}
	newDir, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	tools, err := backup.FindTools()
	if err != nil {
		return err
	}
	memberDir, _ := filepath.Rel(newDir, statedir.Layout{Dir: newDir}.DBMember(config.DBMemberID(1)))
	filesDir, _ := filepath.Rel(newDir, statedir.Layout{Dir: newDir}.Files())
	req := backup.RestoreRequest{
		ID: id, Dir: newDir, At: when,
		MemberDir: filepath.ToSlash(memberDir), FilesDir: filepath.ToSlash(filesDir), Files: filesync.RestoreStore,
		Prepared: galera.MarkInitialized,
		CheckConfig: func(data []byte) error {
			// The files are restored into a local store: a config that
			// keeps them in a bucket would point the new environment at
			// the original's store.
			cfg, err := config.Parse("scalepress.yaml of the backup", data)
			if err != nil {
				return err
			}
			if s := cfg.Files.Store; s.Kind == "s3" {
				return fmt.Errorf("the backed-up environment keeps its files in s3://%s/%s; a restore writes them to a local store, and the restored config would point at the original's bucket: not restoring (restore into an S3 files store is not supported yet)", s.Bucket, s.Prefix)
			}
			return nil
		},
		State: func(d string) error {
			return statedir.WriteState(statedir.Layout{Dir: d}.StateFile(), statedir.State{
				CreatedAt: time.Now().UTC().Format(time.RFC3339), Version: Version, Installed: true})
		},
	}
	t0 := time.Now()
	m, err := backup.Restore(ctx, target, req, backup.Options{Tools: tools, Scratch: os.TempDir()})
	if err != nil {
		return err
	}
	point := "as it was taken at " + m.Started.Format(time.RFC3339)
	if !when.IsZero() {
		point = "replayed to " + when.UTC().Format(time.RFC3339)
	}
	fmt.Printf("restored backup %s (%s) into %s in %s; start it with: scalepress up --dir %s\n",
		id, point, newDir, time.Since(t0).Round(time.Millisecond), *dir)
	return nil
}

// resolveBackup splits BACKUP into its target and id: a path TARGET/ID,
// s3://BUCKET/PREFIX/ID, or an id in --from (default ./.scalepress/backups).
func resolveBackup(ctx context.Context, arg, from, cfgPath string) (backup.Target, string, error) {
	id := path.Base(filepath.ToSlash(arg))
	if !backup.ValidID(id) {
		return nil, "", errUsagef("BACKUP %q: want TARGET/ID or an id like 20261207T090000Z (see `scalepress backups`)", arg)
	}
	dir := from
	if strings.ContainsRune(arg, '/') {
		if from != "" {
			return nil, "", errUsagef("BACKUP %q is a path; --from is for an id", arg)
		}
		dir = strings.TrimSuffix(arg, "/"+id)
	}
	if dir == "" {
		dir = filepath.Join(".scalepress", "backups")
	}
	var s3 config.BackupS3
	if strings.HasPrefix(dir, "s3://") {
		d := dirFlags{dir: ".scalepress", config: cfgPath}
		cfg, err := d.load()
		if err != nil {
			return nil, "", err
		}
		s3 = cfg.Backup.S3
	} else if fi, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil, "", fmt.Errorf("restore: target %s does not exist", dir)
	} else if err == nil && !fi.IsDir() {
		return nil, "", fmt.Errorf("restore: target %s is not a directory", dir)
	}
	t, err := backup.OpenTarget(ctx, dir, controller.S3Settings(s3, os.TempDir()))
	if err != nil {
		return nil, "", err
	}
	return t, id, nil
}
