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
	want := make(map[string]Entry, len(m.Entries))
	var fetch []Entry
	for _, e := range m.Entries {
		if a.rules.ignored(e.Path) {
			continue
		}
		want[e.Path] = e
		if e.Dir {
			if err := a.makeDir(e.Path, e.Mode); err != nil {
				return fmt.Errorf("filesync: bootstrap: %s: %w", e.Path, err)
			}
			continue
		}
		c := Change{Op: OpPut, Path: e.Path, Mode: e.Mode, Size: e.Size, Hash: e.Hash, MTime: e.MTime}
		if _, ok := a.sameContent(c.Path, c); ok {
			if err := a.writeFile(ctx, c); err != nil { // mode and mtime only
				return fmt.Errorf("filesync: bootstrap: %s: %w", e.Path, err)
			}
			continue
		}
		fetch = append(fetch, e)
	}
	if err := a.fetchAll(ctx, fetch); err != nil {
		return fmt.Errorf("filesync: bootstrap: %w", err)
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
			return fmt.Errorf("filesync: bootstrap: remove %s: %w", p, err)
		}
		kept = append(kept, k...)
	}
	a.index = treeFromEntries(m.Entries, false)
	a.keepDirs(kept)
	a.applied.Store(m.Seq)
	a.scanned = false
	if err := a.saveApplied(true); err != nil {
		return fmt.Errorf("filesync: bootstrap: %w", err)
	}
	a.logger.Info("docroot bootstrapped", "seq", m.Seq, "entries", len(m.Entries), "downloaded", len(fetch), "removed", len(extra), "took", time.Since(start))
	return nil
}

// fetchAll downloads and writes files, Uploaders at a time.
func (a *Agent) fetchAll(ctx context.Context, es []Entry) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	sem := make(chan struct{}, a.cfg.Uploaders)
	for _, e := range es {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c := Change{Op: OpPut, Path: e.Path, Mode: e.Mode, Size: e.Size, Hash: e.Hash, MTime: e.MTime}
			if err := a.writeFetched(ctx, c); err != nil {
				mu.Lock()
				if first == nil {
					first = fmt.Errorf("%s: %w", e.Path, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return first
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
