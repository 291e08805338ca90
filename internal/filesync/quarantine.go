package filesync

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/scalepress/scalepress/internal/api"
)

// Quarantine: a change of the log that keeps failing on this node for a
// reason of its own (a name the filesystem cannot hold, something in the
// way the agent may not replace) would otherwise be retried forever at the
// same sequence number, and nothing after it would ever apply. After
// AgentConfig.QuarantineAfter attempts in a row (spaced by the reconnect
// backoff) the change is quarantined:
//
//   - recorded in StateDir/quarantine.jsonl (api.FilesQuarantine lines,
//     fsynced), which the node agent reports as files_quarantined;
//   - logged, and skipped: AppliedSeq moves past it;
//   - its path is frozen on this node: the watcher does not push what is
//     there (the docroot differs from the log there, and pushing it would
//     undo the change on every other node) until a later change to that
//     path applies.
//
// Failures that are not the change's own do not count: the network or the
// files role (the agent waits and retries), and conditions of the whole
// disk (full, read-only, I/O errors), which would quarantine everything.

// remoteError marks a failure to talk to the files role.
type remoteError struct{ err error }

func (e *remoteError) Error() string { return e.err.Error() }
func (e *remoteError) Unwrap() error { return e.err }

// nodeWide are the errors of a whole filesystem, not of one change.
var nodeWide = []error{syscall.ENOSPC, syscall.EDQUOT, syscall.EROFS, syscall.EIO, syscall.ENOMEM, syscall.EMFILE, syscall.ENFILE}

// ownFailure reports whether err is a failure of one change on this node,
// which retrying the same change will not fix.
func ownFailure(err error) bool {
	var re *remoteError
	if errors.As(err, &re) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrClosed) {
		return false
	}
	for _, e := range nodeWide {
		if errors.Is(err, e) {
			return false
		}
	}
	return true
}

// quarantine is the journal of quarantined changes and the paths they
// froze. The Agent guards it with its mu, but for count.
type quarantine struct {
	path   string
	f      *os.File
	count  atomic.Int64
	frozen map[string]uint64 // path → seq of the change that froze it
	// fails counts the attempts of each change that is failing (key:
	// failKey); cleared when a change applies.
	fails map[string]int
}

func failKey(seq uint64, op, p string) string { return fmt.Sprintf("%d %s %s", seq, op, p) }

func openQuarantine(stateDir string) (*quarantine, error) {
	q := &quarantine{path: filepath.Join(stateDir, api.FilesQuarantineFile), frozen: make(map[string]uint64), fails: make(map[string]int)}
	data, err := os.ReadFile(q.path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("filesync: open quarantine: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var l api.FilesQuarantine
		if json.Unmarshal(sc.Bytes(), &l) != nil {
			continue // torn last line
		}
		if l.Released {
			delete(q.frozen, l.Path)
			continue
		}
		q.count.Add(1)
		q.frozen[l.Path] = l.Seq
	}
	if q.f, err = os.OpenFile(q.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644); err != nil {
		return nil, fmt.Errorf("filesync: open quarantine: %w", err)
	}
	return q, nil
}

func (q *quarantine) close() error { return q.f.Close() }

// write appends l to the journal and fsyncs it.
func (q *quarantine) write(l api.FilesQuarantine) error {
	data, err := json.Marshal(l)
	if err != nil {
		return err
	}
	if _, err := q.f.Write(append(data, '\n')); err != nil {
		return err
	}
	return q.f.Sync()
}

// isFrozen reports whether local changes at p stay unpushed.
func (q *quarantine) isFrozen(p string) bool {
	_, ok := q.frozen[p]
	return ok
}

// quarantined reports whether the change (seq, p) was quarantined before,
// so that a bootstrap after a restart does not retry it.
func (q *quarantine) quarantined(seq uint64, p string) bool {
	s, ok := q.frozen[p]
	return ok && s == seq
}

// failedLocked counts a failure of change c (seq, op, path) with err and
// reports whether it is now quarantined. Only the change's own failures
// count (ownFailure); others return false and leave the count alone.
func (a *Agent) failedLocked(seq uint64, op Op, p string, err error) bool {
	if !ownFailure(err) {
		return false
	}
	key := failKey(seq, op.String(), p)
	a.quar.fails[key]++
	n := a.quar.fails[key]
	if n < a.cfg.QuarantineAfter {
		a.logger.Warn("cannot apply a change of the files log; retrying", "seq", seq, "op", op, "path", p, "attempt", n, "of", a.cfg.QuarantineAfter, "err", err)
		return false
	}
	delete(a.quar.fails, key)
	a.quar.frozen[p] = seq
	a.quar.count.Add(1)
	l := api.FilesQuarantine{Seq: seq, Op: op.String(), Path: p, Error: err.Error(), Attempts: n, Time: time.Now().UTC()}
	if werr := a.quar.write(l); werr != nil {
		a.logger.Error("cannot record a quarantined change; it is skipped all the same", "seq", seq, "path", p, "err", werr)
	}
	a.logger.Error("change of the files log quarantined on this node: skipped, and the path is not pushed from here until a later change to it applies",
		"seq", seq, "op", op, "path", p, "attempts", n, "err", err)
	return true
}

// releaseLocked ends the quarantine of the paths a change to p that just
// applied set anew: p itself, what is below it and its parents.
func (a *Agent) releaseLocked(seq uint64, p string) {
	for q := range a.quar.frozen {
		if q != p && !isBelow(q, p) && !isBelow(p, q) {
			continue
		}
		delete(a.quar.frozen, q)
		if err := a.quar.write(api.FilesQuarantine{Seq: seq, Path: q, Time: time.Now().UTC(), Released: true}); err != nil {
			a.logger.Warn("cannot record the end of a quarantine", "path", q, "err", err)
		}
		a.logger.Info("quarantine ended: a later change to the path applied", "path", q, "seq", seq)
	}
}

// localWriter remembers whether writing the docroot failed, to tell a
// local failure from a remote one during a download.
type localWriter struct {
	f   *os.File
	err error
}

func (w *localWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	if err != nil {
		w.err = err
	}
	return n, err
}
