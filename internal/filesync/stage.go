package filesync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"golang.org/x/sys/unix"
)

// stageDir holds, in the docroot, the trees the agent builds before it
// swaps them in: .filesync-stage/<seq>/new, and the request gate's lock
// files. Its name starts with tempPrefix, so it is never synced, never
// watched and never served (a dotfile). It is in the docroot because a swap
// is a rename, which stays on one filesystem.
const stageDir = api.SwapStageDir

// The steps of a group's apply, in order; testHookStage is called after
// each (a test stops there, as a crash would).
const (
	stepStaged  = "staged"  // the new tree is complete beside the live one
	stepSwapped = "swapped" // the new tree is live, the old one is in the stage
	stepRemoved = "removed" // the old tree is gone; the index is not updated yet
)

// errGroupShape means the records are not a group this agent can swap in
// (not a delete of the unit followed by records under it): they are
// applied one by one instead.
var errGroupShape = errors.New("not a unit group")

// errKilled is what testHookStage returns to stop an apply as a crash
// would: nothing is cleaned up.
var errKilled = errors.New("killed (test)")

// applyGroup applies the records of one unit group (see unit.go) at once:
// it builds the unit's new tree in the stage, then exchanges it with the
// live tree in one rename (renameat2 RENAME_EXCHANGE), under the gate, so
// that no request sees a part of the old tree and a part of the new one,
// nor a missing directory. A crash at any point leaves the old tree or the
// new one live; the stage is cleared when the agent opens, and the group is
// applied again (AppliedSeq moves only after it).
func (a *Agent) applyGroup(ctx context.Context, recs []Change) error {
	unit := recs[0].Path
	if recs[0].Op != OpDelete {
		return errGroupShape
	}
	for _, c := range recs[1:] {
		if !isBelow(c.Path, unit) && c.Path != unit || c.Op == OpDelete {
			return errGroupShape
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.rules.ignored(unit) {
		return nil
	}
	// Local changes under the unit that the stream has not confirmed yet
	// (other than the unit's own, when this node pushed it) must win, as
	// applyRemote lets them: such a group is applied record by record.
	own := make(map[string]int)
	for _, c := range recs {
		if c.Origin == a.cfg.NodeID {
			own[c.Path]++
		}
	}
	// A pending change whose path already holds what the group makes of
	// it is no local change to keep: it is the watcher's echo of this
	// group's own swap (an apply stopped after the swap, before the index
	// learnt the new tree) or a write of the same content. Applied record
	// by record, the group's delete would remove the live file and its put
	// be skipped for the pending path: the unit would lose the file.
	var next map[string]Change
	for p, n := range a.pending {
		if (p == unit || isBelow(p, unit)) && n > own[p] {
			if next == nil {
				next = make(map[string]Change, len(recs))
				for _, c := range recs[1:] {
					next[c.Path] = c
				}
			}
			if !a.holdsRecord(p, next) {
				a.logger.Info("a local change under a unit is pending; applying the unit record by record", "unit", unit, "path", p)
				return errGroupShape
			}
		}
	}
	if a.scanned && a.unitChangedLocally(unit) {
		a.logger.Info("the live tree of a unit changed locally; applying the unit record by record", "unit", unit)
		return errGroupShape
	}
	for p := range own {
		if a.pending[p] > 0 {
			if a.pending[p]--; a.pending[p] == 0 {
				delete(a.pending, p)
			}
		}
	}

	seq := recs[len(recs)-1].Seq
	if a.liveMatches(unit, recs[1:]) {
		// This node's own unit (or a replay): the live tree is already
		// the new one.
		a.indexGroup(recs)
		return nil
	}
	dir := path.Join(stageDir, strconv.FormatUint(seq, 10))
	if err := a.root.RemoveAll(dir); err != nil {
		return err
	}
	if err := a.root.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	killed := false
	defer func() {
		if !killed {
			a.root.RemoveAll(dir) // what a failure leaves; a crash's is cleared at open
		}
	}()
	hook := func(step string) error {
		if a.testHookStage == nil {
			return nil
		}
		err := a.testHookStage(step)
		killed = errors.Is(err, errKilled)
		return err
	}
	staged := path.Join(dir, "new")
	var st stageStats
	if len(recs) > 1 {
		var err error
		if st, err = a.buildStage(ctx, unit, staged, recs[1:]); err != nil {
			return err
		}
	}
	if err := hook(stepStaged); err != nil {
		return err
	}
	if err := a.ensureParents(unit); err != nil {
		return err
	}
	if err := a.swap(ctx, unit, staged, path.Join(dir, "old"), len(recs) > 1); err != nil {
		return err
	}
	if err := hook(stepSwapped); err != nil {
		return err
	}
	if err := a.root.RemoveAll(dir); err != nil {
		a.logger.Warn("cannot remove the old tree of a unit; it is removed when the agent starts", "unit", unit, "err", err)
	}
	if err := hook(stepRemoved); err != nil {
		return err
	}
	a.indexGroup(recs)
	a.logger.Info("unit swapped in", "unit", unit, "records", len(recs), "seq", seq,
		"linked", st.linked, "pool_entries_made", st.pooled, "copied", st.copied, "downloaded", st.downloaded)
	return nil
}

// holdsRecord reports whether path p of the docroot is what the group's
// records next (by path, after its delete) make of it: the same kind,
// mode and content, or absent when the group has no record for it.
func (a *Agent) holdsRecord(p string, next map[string]Change) bool {
	fi, err := a.root.Lstat(p)
	c, ok := next[p]
	switch {
	case !ok:
		return errors.Is(err, fs.ErrNotExist)
	case err != nil:
		return false
	case c.Op == OpMkdir:
		return fi.IsDir() && uint32(fi.Mode().Perm()) == c.Mode
	case c.Op == OpPut:
		fi, same := a.sameContent(p, c)
		return same && uint32(fi.Mode().Perm()) == c.Mode
	}
	return false
}

// indexGroup records an applied group in the index.
func (a *Agent) indexGroup(recs []Change) {
	for _, c := range recs {
		a.index.apply(c)
		delete(a.quar.fails, failKey(c.Seq, c.Op.String(), c.Path))
		a.releaseLocked(c.Seq, c.Path)
	}
}

// liveMatches reports whether the live tree at unit is exactly what the
// group's records (after its delete) make: the same paths, kinds, modes
// and contents, nothing more (ignored paths aside).
func (a *Agent) liveMatches(unit string, recs []Change) bool {
	want := make(map[string]Change, len(recs))
	for _, c := range recs {
		want[c.Path] = c
	}
	n := 0
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
		c, ok := want[p]
		if !ok {
			if p == unit && d.IsDir() {
				return nil // a directory implied by the records below it
			}
			return errGroupShape
		}
		n++
		switch {
		case c.Op == OpMkdir && d.IsDir():
			if fi, err := d.Info(); err != nil || uint32(fi.Mode().Perm()) != c.Mode {
				return errGroupShape
			}
		case c.Op == OpPut && d.Type().IsRegular():
			if fi, ok := a.sameContent(p, c); !ok || uint32(fi.Mode().Perm()) != c.Mode {
				return errGroupShape
			}
		default:
			return errGroupShape
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return len(recs) == 0
	}
	return err == nil && n == len(recs)
}

// unitChangedLocally reports whether a path at or under unit differs from
// the index (a local write the watcher has not reported yet), and queues
// those changes, which then win over the group.
func (a *Agent) unitChangedLocally(unit string) bool {
	var cs []Change
	check := func(p string) {
		if c, ok := a.processLocal(p); ok {
			cs = append(cs, c)
		}
	}
	fs.WalkDir(a.root.FS(), unit, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if a.rules.ignored(p) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		check(p)
		return nil
	})
	for p := range a.index.entries {
		if p == unit || isBelow(p, unit) {
			if _, err := a.root.Lstat(p); errors.Is(err, fs.ErrNotExist) {
				check(p)
			}
		}
	}
	a.enqueueLocked(cs)
	return len(cs) > 0
}

// stageStats counts where the files of a unit's stage came from.
type stageStats struct {
	linked     int // linked from the link pool's entry (kept files, mostly)
	pooled     int // of which the entry was made from the live file
	copied     int // kept files copied from the live tree
	downloaded int // the others (download: linked from the pool, fetched ahead, or fetched)
}

// buildStage writes the unit's new tree at staged. A file the link pool
// can link (a mode PHP may not write, an entry of the same content, mode
// and mtime: linkPooled) is linked from it; when the pool lacks the entry
// and the live tree holds the content, the entry is made from the live
// file first (hash-checked), then linked. A file the live tree holds with
// the same content is otherwise copied from it; the others are downloaded
// (ADR 26, ADR 29).
func (a *Agent) buildStage(ctx context.Context, unit, staged string, recs []Change) (stageStats, error) {
	var st stageStats
	at := func(p string) string { return staged + strings.TrimPrefix(p, unit) }
	if recs[0].Path != unit {
		// The unit is a directory whose own record was implied.
		if err := a.root.Mkdir(staged, 0o755); err != nil {
			return st, err
		}
	}
	for _, c := range recs {
		dst := at(c.Path)
		for _, d := range parentDirs(dst) {
			if len(d) > len(staged) {
				if err := a.root.Mkdir(d, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
					return st, err
				}
			}
		}
		switch c.Op {
		case OpMkdir:
			if err := a.root.Mkdir(dst, fs.FileMode(c.Mode)); err != nil && !errors.Is(err, fs.ErrExist) {
				return st, err
			}
			if err := a.root.Chmod(dst, fs.FileMode(c.Mode)); err != nil {
				return st, err
			}
		case OpPut:
			mtime := time.Unix(0, c.MTime)
			if ok, _, _ := a.linkPooled(c.Hash, dst, c.Mode, mtime, ""); ok {
				st.linked++
				continue
			}
			if _, ok := a.sameContent(c.Path, c); ok {
				// The pool lacks the entry (a release gives every file a
				// new mtime): made from the live file, once per host. A
				// live file found not to hold the blob is downloaded.
				ok, made, err := a.linkPooled(c.Hash, dst, c.Mode, mtime, c.Path)
				if made {
					st.pooled++
				}
				if ok {
					st.linked++
					continue
				}
				if err == nil && a.copyLocal(c.Path, dst, c.Mode, mtime) == nil {
					st.copied++
					continue
				}
			}
			if err := a.download(ctx, c.Hash, dst, c.Mode, mtime); err != nil {
				return st, err
			}
			st.downloaded++
		}
	}
	return st, nil
}

// copyLocal copies the docroot's file src to the new file dst.
func (a *Agent) copyLocal(src, dst string, mode uint32, mtime time.Time) error {
	return copyBetween(a.root, src, a.root, dst, mode, mtime)
}

// copyBetween copies from's file src to the new file dst of to, with mode
// and mtime; on error dst is removed.
func copyBetween(from *os.Root, src string, to *os.Root, dst string, mode uint32, mtime time.Time) error {
	in, err := from.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := to.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Chmod(fs.FileMode(mode))
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = to.Chtimes(dst, mtime, mtime)
	}
	if err != nil {
		to.Remove(dst)
	}
	return err
}

// swap makes staged the live tree at unit (or, without a new tree, takes
// the live tree away into old), under the gate. The live tree is exchanged
// with the staged one in one renameat2(RENAME_EXCHANGE): there is no moment
// without a tree at unit.
func (a *Agent) swap(ctx context.Context, unit, staged, old string, hasNew bool) error {
	_, err := a.root.Lstat(unit)
	live := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if !live && !hasNew {
		return nil
	}
	release, err := a.gate.close(ctx)
	if err != nil {
		a.logger.Warn("the request gate did not close in time; swapping anyway", "unit", unit, "err", err)
	}
	defer release()
	if a.watch != nil {
		a.watch.unwatch(unit)
		defer a.watch.rewatch(unit)
	}
	switch {
	case !live:
		return a.root.Rename(staged, unit)
	case !hasNew:
		return a.root.Rename(unit, old)
	}
	err = a.exchange(staged, unit)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		// A filesystem without RENAME_EXCHANGE: two renames, with a
		// moment without the unit (the gate keeps requests out of it).
		a.logger.Warn("the docroot's filesystem cannot exchange two names; swapping in two renames", "unit", unit)
		if err := a.root.Rename(unit, old); err != nil {
			return err
		}
		return a.root.Rename(staged, unit)
	}
	return err
}

// exchange swaps the names x and y of the docroot atomically. The parent
// directories are opened through the root, so no symlink leads outside it;
// the last components are plain names.
func (a *Agent) exchange(x, y string) error {
	dx, err := a.root.Open(path.Dir(x))
	if err != nil {
		return err
	}
	defer dx.Close()
	dy, err := a.root.Open(path.Dir(y))
	if err != nil {
		return err
	}
	defer dy.Close()
	if err := unix.Renameat2(int(dx.Fd()), path.Base(x), int(dy.Fd()), path.Base(y), unix.RENAME_EXCHANGE); err != nil {
		return fmt.Errorf("exchange %s and %s: %w", x, y, err)
	}
	return nil
}

// clearStage removes what a crash left in the stage: a tree that was being
// built (the group is applied again), an old tree already swapped out, or
// blobs fetched ahead (prefetch.go).
func (a *Agent) clearStage() error {
	entries, err := fs.ReadDir(a.root.FS(), stageDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if _, err := strconv.ParseUint(e.Name(), 10, 64); err != nil && path.Join(stageDir, e.Name()) != fetchDir {
			continue // the gate's lock files, the units' markers
		}
		if err := a.root.RemoveAll(path.Join(stageDir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}
