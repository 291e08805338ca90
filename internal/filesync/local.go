package filesync

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
)

// handleLocal reads the paths the watcher reports and queues the changes
// PHP made.
func (a *Agent) handleLocal(paths []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.index == nil || !a.scanned {
		return // the scan after catching up covers them
	}
	var cs []Change
	held := a.activeUnits()
	for _, p := range paths {
		if heldBy(held, p) {
			continue // PHP is replacing its unit; pushed whole when it is done
		}
		if c, ok := a.processLocal(p); ok {
			cs = append(cs, c)
		}
	}
	a.enqueueLocked(cs)
}

// enqueueLocked queues local changes, records them in the index and wakes
// the pusher.
func (a *Agent) enqueueLocked(cs []Change) {
	if len(cs) == 0 {
		return
	}
	if err := a.queue.add(cs); err != nil {
		a.logger.Error("local changes are queued in memory only; they are lost if the agent restarts before files is reachable", "err", err)
	}
	for _, c := range cs {
		a.index.apply(c)
		a.pending[c.Path]++
	}
	a.wakePusher()
}

// processLocal compares path p on disk with the index and returns the
// change that makes the index (and then the server) match the disk. A file
// whose size, mtime and mode match the index is taken as unchanged without
// reading it; that also recognises the files the agent wrote itself, since
// it sets their mtime from the change. A file whose content hashes to what
// the index holds only gets its index entry refreshed.
func (a *Agent) processLocal(p string) (Change, bool) {
	if a.rules.ignored(p) || a.quar.isFrozen(p) {
		return Change{}, false
	}
	e, has := a.index.get(p)
	fi, err := a.root.Lstat(p)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		a.logger.Warn("cannot stat a local path", "path", p, "err", err)
		return Change{}, false
	}
	var c Change
	switch {
	case err != nil || !fi.IsDir() && !fi.Mode().IsRegular():
		// Missing, or a symlink or special file: none of them is synced.
		if err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			a.logger.Debug("symlinks are not synced", "path", p)
		}
		if !has {
			return Change{}, false
		}
		c = Change{Op: OpDelete, Path: p}
	case fi.IsDir():
		perm := uint32(fi.Mode().Perm())
		if has && e.Dir && e.Mode == perm {
			return Change{}, false
		}
		c = Change{Op: OpMkdir, Path: p, Mode: perm, MTime: fi.ModTime().UnixNano()}
	default:
		perm, size, mtime := uint32(fi.Mode().Perm()), fi.Size(), fi.ModTime().UnixNano()
		if has && !e.Dir && e.Size == size && e.MTime == mtime && e.Mode == perm {
			return Change{}, false
		}
		if size > a.rules.maxSize {
			a.logger.Warn("file not synced: larger than MaxFileSize", "path", p, "size", size, "limit", a.rules.maxSize)
			return Change{}, false
		}
		hash, hsize, err := a.hashLocal(p)
		if err != nil {
			// Gone or changed type meanwhile: its own event follows.
			a.logger.Debug("cannot read a local file", "path", p, "err", err)
			return Change{}, false
		}
		if has && !e.Dir && e.Hash == hash && e.Mode == perm {
			e.Size, e.MTime = hsize, mtime
			a.index.set(e)
			return Change{}, false
		}
		c = Change{Op: OpPut, Path: p, Mode: perm, Size: hsize, Hash: hash, MTime: mtime}
	}
	if err := a.rules.checkPath(p); err != nil {
		a.logger.Warn("local change not synced", "err", err)
		return Change{}, false
	}
	return c, true
}

// hashLocal hashes a regular file of the docroot.
func (a *Agent) hashLocal(p string) (string, int64, error) {
	f, err := a.root.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", 0, err
	}
	if !fi.Mode().IsRegular() {
		return "", 0, fmt.Errorf("%s is not a regular file", p)
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// rescan compares the whole docroot with the index and queues every
// difference: after lost file events, and once after the agent caught up.
func (a *Agent) rescan() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.index == nil || !a.scanned {
		return
	}
	seen := make(map[string]bool)
	var cs []Change
	held := a.activeUnits()
	err := fs.WalkDir(a.root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if p == "." {
			return err
		}
		if err != nil {
			return nil // gone meanwhile, or unreadable: logged below if it matters
		}
		if a.removeStaleTemp(p, d) || a.rules.ignored(p) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		seen[p] = true
		if heldBy(held, p) {
			return nil
		}
		if c, ok := a.processLocal(p); ok {
			cs = append(cs, c)
		}
		return nil
	})
	if err != nil {
		a.logger.Warn("rescan failed", "err", err)
		return
	}
	var gone []string
	for p := range a.index.entries {
		if !seen[p] {
			gone = append(gone, p)
		}
	}
	slices.Sort(gone)
	for _, p := range gone {
		if _, ok := a.index.get(p); !ok || heldBy(held, p) {
			continue // below a directory already found gone, or PHP's unit
		}
		if c, ok := a.processLocal(p); ok {
			cs = append(cs, c)
			if c.Op == OpDelete {
				a.index.apply(c) // drops the subtree, so its entries are not deleted one by one
			}
		}
	}
	if len(cs) > 0 {
		a.logger.Info("rescan found local changes", "changes", len(cs))
	}
	a.enqueueLocked(cs)
}

// removeStaleTemp removes p if it is a temporary file of the agent, left by
// a crash (the caller holds a.mu, so no write is in flight).
func (a *Agent) removeStaleTemp(p string, d fs.DirEntry) bool {
	if !d.Type().IsRegular() || !strings.HasPrefix(path.Base(p), tempPrefix) {
		return false
	}
	if err := a.root.Remove(p); err != nil {
		a.logger.Warn("cannot remove a stale temporary file", "path", p, "err", err)
	}
	return true
}
