package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/scalepress/scalepress/internal/galera"
)

var binlogNameRE = regexp.MustCompile(`^binlog\.[0-9]{6,}$`)

// Archiver copies one member's binary logs to a target, continuously, so
// that a restore can replay them to a moment after a backup. Each Sync
// closes the member's current binary log when it has grown (FLUSH BINARY
// LOGS), copies every closed one not yet copied, and then records in
// binlog/<member>/archived.json the moment before the flush: every
// transaction committed before it is in the archive.
type Archiver struct {
	Target Target
	Member galera.MemberConfig
	Tools  Tools

	copied map[string]bool
	files  []string
	fresh  map[string]int64 // size of the active binary log right after a flush
}

// Sync archives what the member has written up to now.
func (a *Archiver) Sync(ctx context.Context, now time.Time) error {
	base := path.Join("binlog", a.Member.ID)
	if a.copied == nil {
		a.copied, a.fresh = map[string]bool{}, map[string]int64{}
		if data, err := readAll(ctx, a.Target, path.Join(base, "archived.json"), 1<<20); err == nil {
			var prev binlogArchive
			if json.Unmarshal(data, &prev) == nil {
				for _, f := range prev.Files {
					a.copied[f] = true
				}
				a.files = prev.Files
			}
		} else if !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("binlog archive: %w", err)
		}
	}
	until := now.UTC()
	logs, err := a.index()
	if err != nil {
		return err
	}
	if len(logs) == 0 {
		return fmt.Errorf("binlog archive: %s writes no binary log", a.Member.ID)
	}
	active := logs[len(logs)-1]
	fi, err := os.Stat(filepath.Join(a.Member.DataDir(), active))
	if err != nil {
		return fmt.Errorf("binlog archive: %w", err)
	}
	if size, ok := a.fresh[active]; !ok || size != fi.Size() {
		if _, err := galera.RootSQL(ctx, a.Member, galera.Binaries{Client: a.Tools.Client}, "FLUSH BINARY LOGS;"); err != nil {
			return fmt.Errorf("binlog archive: %w", err)
		}
		if logs, err = a.index(); err != nil {
			return err
		}
		active = logs[len(logs)-1]
		if fi, err := os.Stat(filepath.Join(a.Member.DataDir(), active)); err == nil {
			a.fresh[active] = fi.Size()
		}
	}
	for _, f := range logs[:len(logs)-1] {
		if a.copied[f] {
			continue
		}
		r, err := os.Open(filepath.Join(a.Member.DataDir(), f))
		if err != nil {
			return fmt.Errorf("binlog archive: %w", err)
		}
		_, err = a.Target.Put(ctx, path.Join(base, f), r)
		r.Close()
		if err != nil {
			return fmt.Errorf("binlog archive: %w", err)
		}
		a.copied[f] = true
		a.files = append(a.files, f)
	}
	doc, err := json.MarshalIndent(binlogArchive{Until: until, Files: a.files}, "", "  ")
	if err != nil {
		return err
	}
	if _, err := a.Target.Put(ctx, path.Join(base, "archived.json"), bytesReader(doc)); err != nil {
		return fmt.Errorf("binlog archive: %w", err)
	}
	return nil
}

// index lists the member's binary logs in order (binlog.index).
func (a *Archiver) index() ([]string, error) {
	b, err := os.ReadFile(filepath.Join(a.Member.DataDir(), "binlog.index"))
	if err != nil {
		return nil, fmt.Errorf("binlog archive: %w", err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		n := filepath.Base(strings.TrimSpace(l))
		if binlogNameRE.MatchString(n) {
			out = append(out, n)
		}
	}
	return out, nil
}
