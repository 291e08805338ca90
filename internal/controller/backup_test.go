package controller

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/backup"
)

// TestApplyRetention removes what the retention does not keep, leaves a
// damaged backup alone, and records one event.
func TestApplyRetention(t *testing.T) {
	c := apiController(t)
	c.cfg.Backup.KeepHourly, c.cfg.Backup.KeepDaily = 2, 2
	ctx := context.Background()
	tg := &backup.DirTarget{Dir: filepath.Join(t.TempDir(), "backups")}
	now := time.Date(2026, 12, 7, 10, 30, 0, 0, time.UTC)
	h := strings.Repeat("ab", 32)
	put := func(ago time.Duration) string {
		at := now.Add(-ago)
		m := backup.Manifest{Format: backup.Format, ID: backup.NewID(at), Started: at, Finished: at.Add(time.Minute),
			Artefacts: []backup.Artefact{{Name: backup.ArtDB, SHA256: h}, {Name: backup.ArtFiles, SHA256: h}, {Name: backup.ArtSecrets, SHA256: h}},
			DB:        backup.DBInfo{Member: "db-1", Database: "wordpress", GaleraSeqno: -1}}
		doc, _ := json.Marshal(m)
		if _, err := tg.Put(ctx, m.ID+"/manifest.json", strings.NewReader(string(doc))); err != nil {
			t.Fatal(err)
		}
		return m.ID
	}
	// Kept: the newest of this hour and the last, of today and yesterday.
	newest, hourAgo, _, lastDay, _ := put(10*time.Minute), put(70*time.Minute), put(20*time.Minute), put(15*time.Hour), put(30*time.Hour)
	damaged := backup.NewID(now.Add(-40 * time.Hour))
	tg.Put(ctx, damaged+"/manifest.json", strings.NewReader("{not json"))
	if err := c.applyRetention(ctx, tg, now); err != nil {
		t.Fatal(err)
	}
	got, _ := tg.List(ctx, "")
	if d := cmp.Diff([]string{damaged, lastDay, hourAgo, newest}, got); d != "" {
		t.Errorf("after retention (-want +got):\n%s", d)
	}
	var evs []api.Event
	for _, e := range c.events.Since(ctx, 0, 0).Events {
		if e.Kind == "backup" {
			evs = append(evs, e)
		}
	}
	if len(evs) != 1 || !strings.Contains(evs[0].Message, "removed 2 backups") {
		t.Errorf("events %+v", evs)
	}
}

// TestBackupAlert: a failed backup is an alert-level event and a metric.
func TestBackupAlert(t *testing.T) {
	c := apiController(t)
	c.cfg.Files.Enabled = false
	if _, _, err := c.takeBackup(context.Background(), t.TempDir(), "scheduled"); err == nil || !strings.Contains(err.Error(), "files role") {
		t.Fatalf("takeBackup = %v, want the files role refusal", err)
	}
	evs := c.events.Since(context.Background(), 0, 0).Events
	if len(evs) != 1 || evs[0].Level != api.LevelAlert || evs[0].Kind != "backup" {
		t.Errorf("events %+v, want one alert of kind backup", evs)
	}
	if c.backups.failed.Load() != 1 {
		t.Errorf("failed count %d", c.backups.failed.Load())
	}
}
