package filesync

import (
	"context"
	"fmt"
	"io/fs"
	"sync"
	"time"
)

// Bootstrap makes the docroot identical to the server's latest manifest
// (except ignored paths, which it leaves alone) and records its sequence
// number as applied: missing or different files are downloaded, checked
// against their hash and renamed into place; files that already match are
// kept; paths the manifest does not have are removed. Local changes still
// queued from an earlier run are pushed first, so that none is lost; other
// local differences are overwritten, as the node is not in service yet.
// Call it before the node goes in service and before Run.
func (a *Agent) Bootstrap(ctx context.Context) (err error) {
	for a.queue.len() > 0 {
		if err := a.pushOnce(ctx); err != nil {
			return fmt.Errorf("filesync: bootstrap: push queued local changes: %w", err)
		}
	}
	rctx, cancel := context.WithTimeout(ctx, a.cfg.RequestTimeout)
	m, err := a.client.Manifest(rctx)
	cancel()
	if err != nil {
		return fmt.Errorf("filesync: bootstrap: %w", err)
	}
	start := time.Now()

	a.mu.Lock()
	defer a.mu.Unlock()
	// Until it succeeds the docroot matches no manifest: with no index,
	// Run fetches the one at AppliedSeq and replays from there.
	a.index = newTree(false)
	defer func() {
		if err != nil {
			a.index = nil
		}
	}()
	// A path that fails for a reason of its own (see quarantine.go) does
	// not stop the others; the bootstrap fails, to be retried, until each
	// such path has failed QuarantineAfter times and is quarantined.
	failed := make(map[string]bool)
	var retry []string
	fail := func(seq uint64, op Op, p string, err error) error {
		failed[p] = true
		if !ownFailure(err) {
			return err
		}
		if !a.failedLocked(seq, op, p, err) {
			retry = append(retry, p)
		}
		return nil
	}
	want := make(map[string]Entry, len(m.Entries))
	var fetch []Entry
	for _, e := range m.Entries {
		if a.rules.ignored(e.Path) {
			continue
		}
		want[e.Path] = e
		if a.quar.quarantined(e.Seq, e.Path) {
			failed[e.Path] = true // quarantined before: not retried
			continue
		}
		if e.Dir {
			if err := a.makeDir(e.Path, e.Mode); err != nil {
				if err := fail(e.Seq, OpMkdir, e.Path, err); err != nil {
					return fmt.Errorf("filesync: bootstrap: %s: %w", e.Path, err)
				}
			}
			continue
		}
		c := Change{Op: OpPut, Path: e.Path, Mode: e.Mode, Size: e.Size, Hash: e.Hash, MTime: e.MTime}
		if _, ok := a.sameContent(c.Path, c); ok {
			if err := a.writeFile(ctx, c); err != nil { // mode and mtime only
				if err := fail(e.Seq, OpPut, e.Path, err); err != nil {
					return fmt.Errorf("filesync: bootstrap: %s: %w", e.Path, err)
				}
			}
			continue
		}
		fetch = append(fetch, e)
	}
	for i, err := range a.fetchAll(ctx, fetch) {
		if err == nil {
			continue
		}
		e := fetch[i]
		if err := fail(e.Seq, OpPut, e.Path, err); err != nil {
			return fmt.Errorf("filesync: bootstrap: %s: %w", e.Path, err)
		}
	}
	var extra []string
	err = fs.WalkDir(a.root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if p == "." || err != nil {
			return err
		}
		if a.removeStaleTemp(p, d) || a.rules.ignored(p) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if failed[p] || a.quar.isFrozen(p) {
			return nil // what could not be written there stays as it is
		}
		if e, ok := want[p]; !ok || e.Dir != d.IsDir() {
			extra = append(extra, p)
			if d.IsDir() {
				return fs.SkipDir
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("filesync: bootstrap: %w", err)
	}
	var kept []string
	for _, p := range extra {
		k, err := a.removeTree(p)
		if err != nil {
			if err := fail(m.Seq, OpDelete, p, err); err != nil {
				return fmt.Errorf("filesync: bootstrap: remove %s: %w", p, err)
			}
			continue
		}
		kept = append(kept, k...)
	}
	if len(retry) > 0 {
		return fmt.Errorf("filesync: bootstrap: %d paths failed (first %s); retrying before they are quarantined", len(retry), retry[0])
	}
	a.index = treeFromEntries(m.Entries, false)
	a.keepDirs(kept)
	a.applied.Store(m.Seq)
	a.scanned = false
	clear(a.quar.fails)
	for q := range a.quar.frozen {
		if !failed[q] { // written as the manifest has it now
			a.releaseLocked(m.Seq, q)
		}
	}
	if err := a.saveApplied(true); err != nil {
		return fmt.Errorf("filesync: bootstrap: %w", err)
	}
	a.logger.Info("docroot bootstrapped", "seq", m.Seq, "entries", len(m.Entries), "downloaded", len(fetch), "removed", len(extra), "linked", a.pool != nil && !a.poolWarned.Load(), "took", time.Since(start))
	if n := a.prunePool(time.Now()); n > 0 {
		a.logger.Info("link pool: pruned entries no docroot links", "removed", n)
	}
	return nil
}

// fetchAll downloads and writes files, Uploaders at a time, and returns
// the error of each.
func (a *Agent) fetchAll(ctx context.Context, es []Entry) []error {
	errs := make([]error, len(es))
	var wg sync.WaitGroup
	sem := make(chan struct{}, a.cfg.Uploaders)
	for i, e := range es {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c := Change{Op: OpPut, Path: e.Path, Mode: e.Mode, Size: e.Size, Hash: e.Hash, MTime: e.MTime}
			errs[i] = a.writeFetched(ctx, c)
		})
	}
	wg.Wait()
	return errs
}

// writeFetched is writeFile for a file known to differ, safe to run in
// parallel for different paths once their parents exist.
func (a *Agent) writeFetched(ctx context.Context, c Change) error {
	tmp := a.tempName(c.Path)
	if err := a.download(ctx, c.Hash, tmp, c.Mode, time.Unix(0, c.MTime)); err != nil {
		return err
	}
	if fi, err := a.root.Lstat(c.Path); err == nil && fi.IsDir() {
		if err := a.root.RemoveAll(c.Path); err != nil {
			a.root.Remove(tmp)
			return err
		}
	}
	if err := a.root.Rename(tmp, c.Path); err != nil {
		a.root.Remove(tmp)
		return err
	}
	return nil
}
