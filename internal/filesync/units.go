package filesync

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/scalepress/scalepress/internal/api"
)

// unitsDir holds the markers of the units PHP is replacing (api.SwapUnitsDir).
var unitsDir = path.Join(api.SwapStageDir, api.SwapUnitsDir)

// unitTimeout is how long a marker may stay: WordPress gives an install
// 300 s (set_time_limit); a marker older than twice that was left by a
// request that died, and the unit is pushed as it stands.
const unitTimeout = 10 * time.Minute

// unitKinds maps a marker's prefix to the directory its units are in.
var unitKinds = map[string]string{"plugins": "wp-content/plugins", "themes": "wp-content/themes"}

// parseUnitMarker returns the unit a marker's file name declares
// ("plugins.akismet" → wp-content/plugins/akismet). Only a plugin's or a
// theme's directory can be declared, by one clean name.
func parseUnitMarker(name string) (string, error) {
	kind, dir, ok := strings.Cut(name, ".")
	base, known := unitKinds[kind]
	if !ok || !known {
		return "", fmt.Errorf("unit marker %q: want plugins.NAME or themes.NAME", name)
	}
	unit := base + "/" + dir
	if err := checkPathSyntax(unit, hardMaxDepth); err != nil || strings.Contains(dir, "/") {
		return "", fmt.Errorf("unit marker %q: %q is not one clean directory name", name, dir)
	}
	if err := checkFSLimits(unit); err != nil {
		return "", fmt.Errorf("unit marker %q: %v", name, err)
	}
	return unit, nil
}

// activeUnits reads the markers: the units PHP is replacing now.
func (a *Agent) activeUnits() map[string]bool {
	entries, err := fs.ReadDir(a.root.FS(), unitsDir)
	if err != nil {
		return nil
	}
	units := make(map[string]bool, len(entries))
	for _, e := range entries {
		if u, err := parseUnitMarker(e.Name()); err == nil && e.Type().IsRegular() {
			units[u] = true
		}
	}
	return units
}

// heldBy reports whether p lies in one of units.
func heldBy(units map[string]bool, p string) bool {
	if units[p] {
		return true
	}
	for _, d := range parentDirs(p) {
		if units[d] {
			return true
		}
	}
	return false
}

// openUnits makes the markers' directory, writable by PHP's group.
func (a *Agent) openUnits() error {
	if err := a.root.MkdirAll(unitsDir, 0o775); err != nil {
		return err
	}
	return a.root.Chmod(unitsDir, 0o775)
}

// unitsLoop pushes a unit when its marker goes away (or grows too old).
func (a *Agent) unitsLoop(ctx context.Context) {
	w, err := fsnotify.NewWatcher()
	if err == nil {
		err = w.Add(path.Join(a.cfg.Docroot, unitsDir))
	}
	if err != nil {
		a.logger.Error("cannot watch the unit markers; updates from wp-admin are synced file by file", "err", err)
		if w != nil {
			w.Close()
		}
		return
	}
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for range w.Errors { // drained, as in watcher: fsnotify sends some under its lock
		}
	}()
	defer func() {
		w.Close()
		<-drained
	}()
	tick := time.NewTicker(unitTimeout / 10)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if !ev.Has(fsnotify.Remove) && !ev.Has(fsnotify.Rename) {
				continue
			}
			unit, err := parseUnitMarker(path.Base(ev.Name))
			if err != nil {
				a.logger.Warn("ignoring a unit marker", "err", err)
				continue
			}
			a.endUnit(unit)
		case <-tick.C:
			a.expireUnits()
		}
	}
}

// expireUnits removes markers older than unitTimeout (their removal ends
// the unit).
func (a *Agent) expireUnits() {
	entries, _ := fs.ReadDir(a.root.FS(), unitsDir)
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil || time.Since(fi.ModTime()) < unitTimeout {
			continue
		}
		a.logger.Warn("a unit marker outlived its update; pushing the unit as it stands", "marker", e.Name(), "age", time.Since(fi.ModTime()).Round(time.Second))
		a.root.Remove(path.Join(unitsDir, e.Name()))
	}
}

// endUnit queues the unit PHP has finished replacing, whole.
func (a *Agent) endUnit(unit string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.index == nil || !a.scanned {
		return // the scan after catching up finds its changes
	}
	a.enqueueUnitLocked(unit)
}

// enqueueUnitLocked queues the tree at unit as the disk holds it now, as
// one unit, unless the index already holds exactly that.
func (a *Agent) enqueueUnitLocked(unit string) {
	cs, err := a.unitChanges(unit)
	if err != nil {
		a.logger.Warn("cannot read a unit; its changes are found by the next scan", "unit", unit, "err", err)
		return
	}
	nt := newTree(false)
	for _, c := range cs {
		nt.apply(c)
	}
	var want []Entry
	for _, e := range nt.sorted() {
		if e.Path == unit || isBelow(e.Path, unit) {
			want = append(want, e)
		}
	}
	if a.index.holds(unit, want) {
		return
	}
	if len(cs) > DefaultConfig().MaxChanges {
		a.logger.Warn("a unit has more files than one push may hold; syncing it file by file", "unit", unit, "files", len(cs))
		a.enqueueLocked(cs)
		return
	}
	if err := a.queue.addUnit(unit, cs); err != nil {
		a.logger.Error("a unit is queued in memory only; it is lost if the agent restarts before files is reachable", "unit", unit, "err", err)
	}
	a.index.apply(Change{Op: OpDelete, Path: unit})
	for _, c := range cs {
		a.index.apply(c)
		a.pending[c.Path]++
	}
	a.logger.Info("unit queued", "unit", unit, "changes", len(cs))
	a.wakePusher()
}

// unitChanges describes the tree at unit on disk as the changes of a unit
// push: its directories and files, or a delete of unit when it is gone.
func (a *Agent) unitChanges(unit string) ([]Change, error) {
	var cs []Change
	err := fs.WalkDir(a.root.FS(), unit, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if a.rules.ignored(p) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		perm, mtime := uint32(fi.Mode().Perm()), fi.ModTime().UnixNano()
		switch {
		case d.IsDir():
			cs = append(cs, Change{Op: OpMkdir, Path: p, Mode: perm, MTime: mtime})
		case d.Type().IsRegular():
			if fi.Size() > a.rules.maxSize {
				a.logger.Warn("file not synced: larger than MaxFileSize", "path", p, "size", fi.Size(), "limit", a.rules.maxSize)
				return nil
			}
			hash, size, err := a.hashLocal(p)
			if err != nil {
				return err
			}
			cs = append(cs, Change{Op: OpPut, Path: p, Mode: perm, Size: size, Hash: hash, MTime: mtime})
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) && len(cs) == 0 {
		return []Change{{Op: OpDelete, Path: unit}}, nil
	}
	return cs, err
}
