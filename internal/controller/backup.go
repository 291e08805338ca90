package controller

// Backups (docs/adr/0016-backups.md): the controller takes them, on
// `scalepress backup` (POST /v1/backups with the operator token) and on
// backup.every, because it is the one that knows which member is the
// router's writer, holds the files token and can reach every member's
// socket and datadir; it archives the binary logs beside them and applies
// the retention. Restores and verifies need no running environment and are
// the CLI's.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/backup"
	"github.com/scalepress/scalepress/internal/config"
	"github.com/scalepress/scalepress/internal/galera"
)

// FilesBackup is the files store as a backup reads it, over the files
// role's API at url with the controller's files token tok. The cli passes
// filesync's: the controller reaches the files role only over the wire.
type FilesBackup func(url, tok string) backup.FilesSource

// backupSecrets are the secrets a restored site needs: the database's
// users are in the copied database with these passwords, the admin logs
// in with the same password, sessions and cookies stay valid. Every
// other secret (the root key and the tokens derived from it, the purge
// secret) is made new by the restored environment's first up.
var backupSecrets = []string{"admin-password", "db-password", "monitor-password", "wp-salts.json"}

// backups runs one backup at a time and keeps the figures of the last ones.
type backups struct {
	mu sync.Mutex // held for a whole run

	ok, failed    atomic.Int64
	lastOK        atomic.Int64 // Unix time of the last good backup
	lastDuration  atomic.Int64 // milliseconds
	lastSize      atomic.Int64 // bytes the last good backup added
	archivedUntil atomic.Int64 // Unix time the binary log archive reaches

	archMu    sync.Mutex
	archivers map[string]*backup.Archiver // by target and member
	archErr   string                      // the last archive error reported
}

// SetFilesBackup gives the controller the files store's reader for backups.
func (c *Controller) SetFilesBackup(f FilesBackup) { c.filesBackup = f }

// backupTarget is the target named by to, else backup.to, else DIR/backups.
func (c *Controller) backupTarget(ctx context.Context, to string) (backup.Target, error) {
	if to == "" {
		to = c.cfg.Backup.To
	}
	if to == "" {
		to = filepath.Join(c.layout.Dir, "backups")
	}
	return backup.OpenTarget(ctx, to, S3Settings(c.cfg.Backup.S3, c.layout.Run()))
}

// S3Settings are backup.s3's, spooling uploads in spool.
func S3Settings(s config.BackupS3, spool string) backup.S3Settings {
	return backup.S3Settings{Endpoint: s.Endpoint, Region: s.Region, AccessKeyFile: s.AccessKeyFile,
		SecretKeyFile: s.SecretKeyFile, CAFile: s.CAFile, Spool: spool}
}

// backupMember is the member backups copy and whose binary logs are
// archived: the highest synced one that is not the router's writer, so
// that its backup locks and desync never touch the writes; the writer
// only when it is the one synced member (a standalone server).
func (c *Controller) backupMember() (galera.MemberConfig, error) {
	if len(c.cfg.DB.Hosts) > 0 {
		// mariadb-backup reads the member's datadir: it must run on the
		// member's host, which the db-agent does not offer yet.
		return galera.MemberConfig{}, fmt.Errorf("backups of members on db.hosts are not supported yet (mariadb-backup must run on the member's host)")
	}
	synced := c.db.SyncedIDs()
	writer := c.db.Status(0).RouterChoice
	pick := ""
	for _, id := range synced {
		if id != writer && id > pick {
			pick = id
		}
	}
	if pick == "" && slices.Contains(synced, writer) {
		pick = writer
	}
	if pick == "" && len(synced) > 0 {
		pick = synced[len(synced)-1]
	}
	for _, m := range c.memberConfigs() {
		if m.ID == pick {
			return m, nil
		}
	}
	return galera.MemberConfig{}, fmt.Errorf("no database member is synced")
}

// takeBackup makes one backup in the target named by to.
func (c *Controller) takeBackup(ctx context.Context, to, why string) (backup.Manifest, backup.Target, error) {
	t0 := time.Now()
	m, t, err := c.runBackup(ctx, to)
	if err != nil {
		c.backups.failed.Add(1)
		c.alert("backup", map[string]any{"why": why}, "backup failed (%s): %v", why, err)
		return m, t, err
	}
	c.backups.ok.Add(1)
	c.backups.lastOK.Store(m.Finished.Unix())
	c.backups.lastDuration.Store(time.Since(t0).Milliseconds())
	c.backups.lastSize.Store(m.Size())
	c.eventWith("backup", "", map[string]any{"id": m.ID, "target": t.String(), "member": m.DB.Member, "bytes": m.Size(),
		"files_seq": m.Files.Seq, "new_blobs": m.Files.NewBlobs, "why": why},
		"backup %s taken (%s) in %s from %s: %d bytes added to %s", m.ID, why, time.Since(t0).Round(time.Millisecond), m.DB.Member, m.Size(), t)
	return m, t, nil
}

func (c *Controller) runBackup(ctx context.Context, to string) (backup.Manifest, backup.Target, error) {
	if !c.backups.mu.TryLock() {
		return backup.Manifest{}, nil, fmt.Errorf("a backup is running already; try again when it is done")
	}
	defer c.backups.mu.Unlock()
	t, err := c.backupTarget(ctx, to)
	if err != nil {
		return backup.Manifest{}, nil, err
	}
	if !c.cfg.Files.Enabled || c.filesBackup == nil {
		return backup.Manifest{}, t, fmt.Errorf("backups need the files role (files.enabled: true): the site's files live nowhere else")
	}
	tools, err := backup.FindTools()
	if err != nil {
		return backup.Manifest{}, t, err
	}
	member, err := c.backupMember()
	if err != nil {
		return backup.Manifest{}, t, err
	}
	src := backup.Source{Member: member, Database: c.cfg.DB.Name, Version: c.version, Secrets: map[string]string{},
		Files: c.filesBackup(c.filesURL(), c.filesToken(api.FilesControllerID))}
	for _, n := range backupSecrets {
		b, err := os.ReadFile(c.layout.Secret(n))
		if err != nil {
			return backup.Manifest{}, t, fmt.Errorf("secrets: %w", err)
		}
		src.Secrets[n] = string(b)
	}
	if b, err := os.ReadFile(filepath.Join(c.layout.Dir, "scalepress.yaml")); err == nil {
		src.Config = b
	}
	m, err := backup.Run(ctx, src, t, backup.Options{Tools: tools, Scratch: c.layout.Run(), Logger: c.logger})
	return m, t, err
}

// handleBackup takes a backup now and answers with its manifest. It takes
// as long as the backup; the CLI waits for it.
func (c *Controller) handleBackup(w http.ResponseWriter, r *http.Request, _ string) {
	var req api.BackupRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		http.Error(w, "backup: bad request body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if req.To != "" && !filepath.IsAbs(req.To) && !strings.HasPrefix(req.To, "s3://") {
		http.Error(w, fmt.Sprintf("backup: to %q must be an absolute directory or s3://BUCKET/PREFIX", req.To), http.StatusBadRequest)
		return
	}
	m, t, err := c.takeBackup(r.Context(), req.To, "requested")
	if err != nil {
		http.Error(w, "backup: "+err.Error(), http.StatusInternalServerError)
		return
	}
	doc, _ := json.Marshal(m)
	writeJSON(w, api.BackupResult{ID: m.ID, Target: t.String(), Manifest: doc})
}

// backupLoop takes a backup every backup.every and applies the retention
// after each.
func (c *Controller) backupLoop(ctx context.Context) {
	tick := time.NewTicker(c.cfg.Backup.Every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		_, t, err := c.takeBackup(ctx, "", "scheduled")
		if err != nil || ctx.Err() != nil {
			continue
		}
		if err := c.applyRetention(ctx, t, time.Now()); err != nil {
			c.alert("backup", nil, "retention: %v", err)
		}
	}
}

// applyRetention removes the backups the retention does not keep.
func (c *Controller) applyRetention(ctx context.Context, t backup.Target, now time.Time) error {
	listed, err := backup.List(ctx, t)
	if err != nil {
		return err
	}
	var dated []backup.Dated
	for _, l := range listed {
		if l.Err != nil {
			continue // a damaged or newer backup is the operator's to judge
		}
		dated = append(dated, backup.Dated{ID: l.ID, Time: l.Manifest.Started})
	}
	r := backup.Retention{KeepHourly: c.cfg.Backup.KeepHourly, KeepDaily: c.cfg.Backup.KeepDaily}
	_, drop := r.Plan(dated, now)
	for _, id := range drop {
		if err := t.RemoveAll(ctx, id); err != nil {
			return err
		}
	}
	if len(drop) > 0 {
		c.eventWith("backup", "", map[string]any{"removed": drop}, "retention removed %d backups: %v", len(drop), drop)
	}
	return nil
}

// binlogLoop archives the backup member's binary logs every
// backup.binlog_interval.
func (c *Controller) binlogLoop(ctx context.Context) {
	tick := time.NewTicker(c.cfg.Backup.BinlogInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		err := c.archiveBinlogs(ctx, time.Now())
		c.backups.archMu.Lock()
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		changed := msg != c.backups.archErr
		c.backups.archErr = msg
		c.backups.archMu.Unlock()
		switch {
		case err != nil && changed && ctx.Err() == nil:
			c.alert("backup", nil, "binary log archive: %v", err)
		case err == nil && changed:
			c.event("backup", "", "binary log archive works again")
		}
	}
}

func (c *Controller) archiveBinlogs(ctx context.Context, now time.Time) error {
	t, err := c.backupTarget(ctx, "")
	if err != nil {
		return err
	}
	member, err := c.backupMember()
	if err != nil {
		return err
	}
	tools, err := backup.FindTools()
	if err != nil {
		return err
	}
	c.backups.archMu.Lock()
	key := t.String() + "\x00" + member.ID
	a := c.backups.archivers[key]
	if a == nil {
		a = &backup.Archiver{Target: t, Member: member, Tools: tools}
		if c.backups.archivers == nil {
			c.backups.archivers = map[string]*backup.Archiver{}
		}
		c.backups.archivers[key] = a
	}
	c.backups.archMu.Unlock()
	if err := a.Sync(ctx, now); err != nil {
		return err
	}
	c.backups.archivedUntil.Store(now.Unix())
	return nil
}

// alert records an event an operator must act on.
func (c *Controller) alert(kind string, inputs map[string]any, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if c.events != nil {
		c.events.Add(api.Event{Kind: kind, Level: api.LevelAlert, Message: msg, Inputs: inputs})
	}
	c.logger.Error(msg, "kind", kind)
}

// backupFigures are the backup counters at one scrape.
type backupFigures struct {
	ok, failed, lastOK, lastDurationMS, lastSize, archivedUntil int64
}

func (b *backups) figures() backupFigures {
	return backupFigures{ok: b.ok.Load(), failed: b.failed.Load(), lastOK: b.lastOK.Load(),
		lastDurationMS: b.lastDuration.Load(), lastSize: b.lastSize.Load(), archivedUntil: b.archivedUntil.Load()}
}
