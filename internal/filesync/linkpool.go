package filesync

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The link pool (AgentConfig.LinkPool, docs/adr/0029-linked-docroot.md) holds
// one immutable file per (content, mode, mtime) that the agents of one host
// hard-link into their docroots, so that a new node's docroot costs a link
// per file instead of a download and a copy:
//
//	POOL/ab/<hash>-<mode, octal>-<mtime, Unix ns>
//
// Safety rests on three rules. Only files PHP cannot write are linked
// (linkable: no group or other write bit; the inode is the agent's user's,
// and PHP runs as another user, which the node host checks before it gives
// the agent a pool): PHP can neither write into a linked inode nor chmod
// it. The agent never writes into a linked inode either: every update is a
// new file renamed over the path, and a change of mode or mtime on a file
// with other links replaces the file (writeFile) instead of changing it in
// place. And the pool is the agent user's alone (0700): PHP cannot reach
// its entries by their pool names, nor add one.

// poolGrace is how long an entry no docroot links any more is kept: an
// agent that just made it links it within milliseconds, and prunePool must
// not remove it under that agent's feet (a link that fails anyway falls
// back to a copy).
const poolGrace = 10 * time.Minute

// linkable reports whether a file of mode may be hard-linked from the pool:
// permission bits only, and nobody but the owner may write it.
func linkable(mode uint32) bool {
	return mode&^0o777 == 0 && mode&0o022 == 0
}

// shared reports whether fi is a file with more than one link.
func shared(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && fi.Mode().IsRegular() && st.Nlink > 1
}

// poolName is the pool entry of a blob with mode and mtime.
func poolName(hash string, mode uint32, mtime time.Time) string {
	return path.Join(hash[:2], hash+"-"+strconv.FormatUint(uint64(mode), 8)+"-"+strconv.FormatInt(mtime.UnixNano(), 10))
}

// openLinkPool opens (making it if needed) the pool directory dir, which
// must be the agent user's and closed to everyone else.
func openLinkPool(dir string) (*os.Root, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("link pool: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return nil, fmt.Errorf("link pool: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok || int(st.Uid) != os.Geteuid() {
		return nil, fmt.Errorf("link pool: %s must be a directory of uid %d", dir, os.Geteuid())
	}
	if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return nil, fmt.Errorf("link pool: %w", err)
		}
	}
	return os.OpenRoot(dir)
}

// linkFromPool makes the docroot's new file tmp a hard link to the pool's
// entry for (hash, mode, mtime). An entry the pool does not have yet is
// made from the blob fetched ahead (prefetch.go) if there is one, else
// downloaded into the pool: a blob is never fetched twice for one file.
// done is false when the link could not be made (another filesystem, a
// link limit, an entry that is not as it must be): the caller then copies,
// as without a pool. An error is a failed download.
func (a *Agent) linkFromPool(ctx context.Context, hash, tmp string, mode uint32, mtime time.Time) (done bool, err error) {
	name := poolName(hash, mode, mtime)
	for attempt := 0; attempt < 2; attempt++ {
		ok, err := a.poolCheck(name, mode, mtime)
		if err != nil {
			return false, err
		}
		if !ok {
			if err := a.poolEntry(ctx, name, hash, mode, mtime); err != nil {
				return false, err
			}
		}
		lerr := a.linkChecked(name, tmp, mode)
		if lerr == nil {
			return true, nil
		}
		if errors.Is(lerr, fs.ErrNotExist) {
			continue // pruned meanwhile: made again
		}
		a.poolFallback(lerr)
		return false, nil
	}
	return false, nil
}

// linkPooled makes the docroot's new file tmp a hard link to the pool's
// entry for (hash, mode, mtime); it never downloads. An entry the pool
// lacks is made from the docroot's file live, when the caller names one
// that holds the blob (poolEntryFrom), else false is returned. It reports
// false, with tmp absent, also when there is no pool, the mode lets PHP
// write the file (never linked, ADR 9) or the link cannot be made: the
// caller then copies. buildStage uses it for the files a unit keeps
// (ADR 29); made reports whether it made the entry. The only error is
// ErrHashMismatch: live does not hold the blob, and must not be copied
// either.
func (a *Agent) linkPooled(hash, tmp string, mode uint32, mtime time.Time, live string) (linked, made bool, err error) {
	if a.pool == nil || !linkable(mode) {
		return false, false, nil
	}
	name := poolName(hash, mode, mtime)
	ok, err := a.poolCheck(name, mode, mtime)
	if err != nil {
		return false, false, nil
	}
	if !ok {
		if live == "" {
			return false, false, nil
		}
		if err := a.poolEntryFrom(live, name, hash, mode, mtime); err != nil {
			if errors.Is(err, ErrHashMismatch) { // the live file is not what the index says
				a.logger.Warn("link pool: a live file does not hold its recorded content; downloading it", "path", live, "err", err)
				return false, false, err
			}
			a.poolFallback(err)
			return false, false, nil
		}
		made = true
	}
	if err := a.linkChecked(name, tmp, mode); err != nil {
		if !errors.Is(err, fs.ErrNotExist) { // pruned meanwhile: copied
			a.poolFallback(err)
		}
		return false, made, nil
	}
	return true, made, nil
}

// poolEntryFrom makes the pool's entry name from the docroot's file src,
// which holds blob hash as far as the index knows: src is copied to a
// temporary file in the pool with mode and mtime, hashed on the way, and
// linked to name only if what was copied is hash. The hash, not the
// index, vouches for what every docroot of the host will link: src may be
// a file PHP could write (a unit that takes the write bit away, or a
// write that kept size and mtime).
func (a *Agent) poolEntryFrom(src, name, hash string, mode uint32, mtime time.Time) error {
	if err := a.pool.Mkdir(path.Dir(name), 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	in, err := a.root.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if fi, err := in.Stat(); err != nil || !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", src)
	}
	tmp := path.Join(path.Dir(name), tempPrefix+strconv.FormatUint(rand.Uint64(), 36)+".tmp")
	out, err := a.pool.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer a.pool.Remove(tmp)
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(out, h), in)
	if err == nil && hex.EncodeToString(h.Sum(nil)) != hash {
		err = fmt.Errorf("%s: %w", src, ErrHashMismatch)
	}
	if err == nil {
		err = out.Chmod(fs.FileMode(mode))
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = a.pool.Chtimes(tmp, mtime, mtime)
	}
	if err != nil {
		return err
	}
	// A link, not a rename, as in poolEntry: an entry made meanwhile stays.
	if err := a.pool.Link(tmp, name); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return nil
}

// linkChecked links the pool's entry name to the docroot's new file tmp
// and checks what it linked (poolSafe); a file not as it must be is
// removed and reported as an error.
func (a *Agent) linkChecked(name, tmp string, mode uint32) error {
	if err := a.linkInto(name, tmp); err != nil {
		return err
	}
	if fi, err := a.root.Lstat(tmp); err == nil && a.poolSafe(fi, mode) {
		return nil
	}
	a.root.Remove(tmp)
	return errors.New("the linked file is not the agent's or has another mode")
}

// poolHas reports whether the pool holds a safe entry name for mode and
// mtime. It changes nothing: the prefetcher's reader asks it beside the
// applier.
func (a *Agent) poolHas(name string, mode uint32, mtime time.Time) bool {
	fi, err := a.pool.Lstat(name)
	return err == nil && a.poolSafe(fi, mode) && fi.ModTime().Equal(mtime)
}

// poolCheck reports whether the pool holds a safe entry name; an entry that
// is not a regular file of the agent's user with exactly mode and mtime is
// removed (and reported missing).
func (a *Agent) poolCheck(name string, mode uint32, mtime time.Time) (bool, error) {
	fi, err := a.pool.Lstat(name)
	if err != nil {
		return false, nil
	}
	if a.poolSafe(fi, mode) && fi.ModTime().Equal(mtime) {
		return true, nil
	}
	a.logger.Warn("link pool entry not as made; replaced", "entry", name, "mode", fi.Mode())
	if err := a.pool.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	return false, nil
}

// poolEntry makes the pool's entry name: the blob fetched ahead for it, if
// any, else the blob downloaded now, goes to a temporary file in the pool
// with mode and mtime, which is linked to name. The blob fetched ahead is
// moved from the agent's stage (0700, never PHP's) straight into the pool:
// nothing of an entry ever passes through a directory PHP may write.
func (a *Agent) poolEntry(ctx context.Context, name, hash string, mode uint32, mtime time.Time) error {
	if err := a.pool.Mkdir(path.Dir(name), 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	tmp := path.Join(path.Dir(name), tempPrefix+strconv.FormatUint(rand.Uint64(), 36)+".tmp")
	if !a.takeFetchedInto(ctx, a.pool, hash, tmp, mode, mtime) {
		if err := a.fetchBlob(ctx, a.pool, hash, tmp, mode, mtime); err != nil {
			return err
		}
	}
	// A link, not a rename: an entry another agent made meanwhile stays,
	// so that both docroots share it.
	err := a.pool.Link(tmp, name)
	a.pool.Remove(tmp)
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return nil
}

// poolSafe reports whether fi may be shared between docroots: a regular
// file of the agent's user whose mode is mode, which nobody else may write.
func (a *Agent) poolSafe(fi fs.FileInfo, mode uint32) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && fi.Mode().IsRegular() && int(st.Uid) == os.Geteuid() &&
		uint32(fi.Mode().Perm()) == mode && fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) == 0 && linkable(mode)
}

// linkInto hard-links the pool's entry name to the docroot's new name tmp.
func (a *Agent) linkInto(name, tmp string) error {
	return linkBetween(a.pool, name, a.root, tmp)
}

// renameBetween renames from's old to to's new, as linkBetween links.
func renameBetween(from *os.Root, old string, to *os.Root, new string) error {
	return betweenRoots(from, old, to, new, "rename", unix.Renameat)
}

// linkBetween hard-links from's old to to's new. Both parents are opened
// through their roots and the link does not follow a symlink, so neither
// side leaves its tree.
func linkBetween(from *os.Root, old string, to *os.Root, new string) error {
	return betweenRoots(from, old, to, new, "link", func(olddirfd int, oldpath string, newdirfd int, newpath string) error {
		return unix.Linkat(olddirfd, oldpath, newdirfd, newpath, 0)
	})
}

// betweenRoots opens the parents of from's old and to's new through their
// roots and calls at (an *at system call) on the two names in them.
func betweenRoots(from *os.Root, old string, to *os.Root, new, op string, at func(olddirfd int, oldpath string, newdirfd int, newpath string) error) error {
	od, err := from.Open(path.Dir(old))
	if err != nil {
		return err
	}
	defer od.Close()
	nd, err := to.Open(path.Dir(new))
	if err != nil {
		return err
	}
	defer nd.Close()
	if err := at(int(od.Fd()), path.Base(old), int(nd.Fd()), path.Base(new)); err != nil {
		return &os.LinkError{Op: op, Old: old, New: new, Err: err}
	}
	return nil
}

// poolFallback logs, once, that files are copied instead of linked.
func (a *Agent) poolFallback(err error) {
	if a.poolWarned.CompareAndSwap(false, true) {
		a.logger.Warn("link pool: cannot link into the docroot; copying instead", "err", err)
	}
}

// prunePool removes the pool's entries that no docroot links any more (one
// link left, unchanged for poolGrace) and temporary files as old.
func (a *Agent) prunePool(now time.Time) (removed int) {
	if a.pool == nil {
		return 0
	}
	dirs, err := fs.ReadDir(a.pool.FS(), ".")
	if err != nil {
		a.logger.Warn("link pool: prune", "err", err)
		return 0
	}
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		es, err := fs.ReadDir(a.pool.FS(), d.Name())
		if err != nil {
			continue
		}
		for _, e := range es {
			p := path.Join(d.Name(), e.Name())
			fi, err := a.pool.Lstat(p)
			if err != nil {
				continue
			}
			st, ok := fi.Sys().(*syscall.Stat_t)
			if !ok || now.Sub(time.Unix(st.Ctim.Unix())) < poolGrace {
				continue
			}
			if st.Nlink <= 1 || strings.HasPrefix(e.Name(), tempPrefix) {
				if a.pool.Remove(p) == nil {
					removed++
				}
			}
		}
	}
	return removed
}
