package filesync

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"slices"
	"strconv"
	"time"
)

// applyRemote applies one change of the stream to the docroot and the
// index. Every node applies the log in sequence order, its own changes
// included (reconciled by hash, so they are not written again), which makes
// the last change by sequence number win everywhere.
func (a *Agent) applyRemote(ctx context.Context, c Change) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c.Origin == a.cfg.NodeID && a.pending[c.Path] > 0 {
		a.pending[c.Path]-- // our change, confirmed
		if a.pending[c.Path] == 0 {
			delete(a.pending, c.Path)
		}
	}
	if a.pending[c.Path] > 0 {
		// A local change to this path is queued or in flight: it will get
		// a higher sequence number and win, so this one is skipped rather
		// than written and overwritten again.
		return nil
	}
	if a.rules.ignored(c.Path) {
		return nil
	}
	if a.scanned {
		// A local write the watcher has not reported yet must not be
		// overwritten unseen: queue it (it wins, being later) and skip.
		if lc, ok := a.processLocal(c.Path); ok {
			a.enqueueLocked([]Change{lc})
			return nil
		}
	}
	var err error
	var kept []string
	switch c.Op {
	case OpPut:
		err = a.writeFile(ctx, c)
	case OpMkdir:
		err = a.makeDir(c.Path, c.Mode)
	case OpDelete:
		kept, err = a.removeTree(c.Path)
	}
	if err != nil {
		return err
	}
	a.index.apply(c)
	a.keepDirs(kept)
	delete(a.quar.fails, failKey(c.Seq, c.Op.String(), c.Path))
	a.releaseLocked(c.Seq, c.Path)
	return nil
}

// ensureParents makes every parent of p a directory, replacing a file or
// symlink in the way (as the log's semantics say).
func (a *Agent) ensureParents(p string) error {
	for _, d := range parentDirs(p) {
		if err := a.ensureDir(d, uint32(a.rules.perms.Mode(d, true, 0o755)), false); err != nil {
			return err
		}
	}
	return nil
}

// ensureDir makes d a directory; with setMode, it gets mode.
func (a *Agent) ensureDir(d string, mode uint32, setMode bool) error {
	fi, err := a.root.Lstat(d)
	switch {
	case err == nil && fi.IsDir():
		if setMode && uint32(fi.Mode().Perm()) != mode {
			return a.root.Chmod(d, fs.FileMode(mode))
		}
		return nil
	case err == nil:
		if err := a.root.RemoveAll(d); err != nil {
			return err
		}
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	if err := a.root.Mkdir(d, fs.FileMode(mode)); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return a.root.Chmod(d, fs.FileMode(mode)) // past the umask
}

func (a *Agent) makeDir(p string, mode uint32) error {
	if err := a.ensureParents(p); err != nil {
		return err
	}
	return a.ensureDir(p, mode, true)
}

// sameContent reports whether the regular file at p already holds the
// content of c, trusting the index when size and mtime match it.
func (a *Agent) sameContent(p string, c Change) (fs.FileInfo, bool) {
	fi, err := a.root.Lstat(p)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() != c.Size {
		return nil, false
	}
	if e, ok := a.index.get(p); ok && !e.Dir && e.Hash == c.Hash && e.Size == fi.Size() && e.MTime == fi.ModTime().UnixNano() {
		return fi, true
	}
	h, _, err := a.hashLocal(p)
	return fi, err == nil && h == c.Hash
}

// writeFile makes p a regular file with c's content, mode and mtime: the
// blob goes to a temporary file in the same directory, which is renamed
// over p, so a reader sees the old or the new file, never a part.
func (a *Agent) writeFile(ctx context.Context, c Change) error {
	p := c.Path
	mtime := time.Unix(0, c.MTime)
	fi, same := a.sameContent(p, c)
	if same && uint32(fi.Mode().Perm()) == c.Mode && fi.ModTime().Equal(mtime) {
		return nil // already there: our own change, or a replay
	}
	if same && !shared(fi) {
		// Only metadata differs. A file with other links (the link
		// pool's) is never changed in place: that would change every
		// docroot's copy; it is replaced below.
		if uint32(fi.Mode().Perm()) != c.Mode {
			if err := a.root.Chmod(p, fs.FileMode(c.Mode)); err != nil {
				return err
			}
		}
		if !fi.ModTime().Equal(mtime) {
			return a.root.Chtimes(p, mtime, mtime)
		}
		return nil
	}
	if err := a.ensureParents(p); err != nil {
		return err
	}
	tmp := a.tempName(p)
	if err := a.download(ctx, c.Hash, tmp, c.Mode, mtime); err != nil {
		return err
	}
	if fi, err := a.root.Lstat(p); err == nil && fi.IsDir() {
		if err := a.root.RemoveAll(p); err != nil {
			a.root.Remove(tmp)
			return err
		}
	}
	if err := a.root.Rename(tmp, p); err != nil {
		a.root.Remove(tmp)
		return err
	}
	return nil
}

// tempName returns a fresh temporary name next to p.
func (a *Agent) tempName(p string) string {
	return path.Join(path.Dir(p), tempPrefix+strconv.FormatUint(rand.Uint64(), 36)+".tmp")
}

// download writes blob hash to the new file tmp with mode and mtime; on
// error tmp is removed. The content comes from the first of (ADR 29 and
// ADR 12, "Fetching ahead"):
//
//  1. the host's link pool, for a file PHP may not write (linkable) when
//     the agent has a pool: a hard link to the pool's entry; an entry the
//     pool lacks is made from the blob fetched ahead if there is one, else
//     downloaded into the pool (linkFromPool);
//  2. the blob fetched ahead (prefetch.go), renamed into place: a file PHP
//     may write, no pool, or a link that cannot be made;
//  3. a fetch from the files role now.
func (a *Agent) download(ctx context.Context, hash, tmp string, mode uint32, mtime time.Time) error {
	if a.pool != nil && linkable(mode) {
		done, err := a.linkFromPool(ctx, hash, tmp, mode, mtime)
		if done || err != nil {
			return err
		}
	}
	if a.takeFetched(ctx, hash, tmp, mode, mtime) {
		return nil
	}
	return a.fetchBlob(ctx, a.root, hash, tmp, mode, mtime)
}

// fetchBlob writes blob hash, fetched from the files role, to the new file
// tmp of root with mode and mtime; on error tmp is removed.
func (a *Agent) fetchBlob(ctx context.Context, root *os.Root, hash, tmp string, mode uint32, mtime time.Time) error {
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, a.cfg.RequestTimeout)
	lw := &localWriter{f: f}
	t0 := time.Now()
	_, err = a.client.GetBlob(rctx, hash, lw)
	a.fetchNanos.Add(int64(time.Since(t0)))
	a.fetches.Add(1)
	cancel()
	if err != nil && lw.err == nil && !errors.Is(err, ErrHashMismatch) && !errors.Is(err, ErrBlobNotFound) {
		err = &remoteError{err} // the files role or the network: not this change's fault
	}
	if err == nil {
		err = f.Chmod(fs.FileMode(mode))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = root.Chtimes(tmp, mtime, mtime)
	}
	if err != nil {
		root.Remove(tmp)
		return fmt.Errorf("download %s: %w", hash, err)
	}
	return nil
}

// removeTree removes p and, if it is a directory, what it holds, except
// ignored paths and paths with a local change pending (it will be pushed
// after this delete and win, as applyRemote lets it; removed here, the
// pusher would find nothing to push and the write would be lost). It
// returns the directories it kept because they still hold such paths,
// parents first.
func (a *Agent) removeTree(p string) ([]string, error) {
	fi, err := a.root.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		if err := a.root.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, nil
	}
	entries, err := fs.ReadDir(a.root.FS(), p)
	if err != nil {
		return nil, err
	}
	var kept []string
	keep := false
	for _, d := range entries {
		cp := p + "/" + d.Name()
		if a.rules.ignored(cp) || a.pending[cp] > 0 {
			keep = true
			continue
		}
		k, err := a.removeTree(cp)
		if err != nil {
			return nil, err
		}
		kept = append(kept, k...)
	}
	if keep || len(kept) > 0 {
		return append([]string{p}, kept...), nil
	}
	if err := a.root.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return nil, nil
}

// keepDirs records in the index the directories removeTree kept, as local
// directories, so that the local scan does not push them.
func (a *Agent) keepDirs(dirs []string) {
	slices.Sort(dirs)
	for _, d := range dirs {
		if fi, err := a.root.Lstat(d); err == nil && fi.IsDir() {
			a.index.set(Entry{Path: d, Dir: true, Mode: uint32(fi.Mode().Perm()), MTime: fi.ModTime().UnixNano()})
		}
	}
}
