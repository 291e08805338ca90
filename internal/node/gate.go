package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"golang.org/x/sys/unix"
)

// The agent's side of the request gate (api.SwapStageDir, ADR 26). PHP
// passes the gate before every script, but the agent picks the script
// before PHP runs: a request for a plugin's file that arrived while
// WordPress's upgrader on this node had deleted the plugin's directory and
// not yet copied the file back (the upgrader holds the gate meanwhile) was
// routed to /index.php, which then waited at the gate and answered
// WordPress's 404 for a file that existed again by then. So a route that
// rests on a missing path (the front controller's fallback) is decided
// again once the gate is open: while the gate is closed the tree at the
// path may be half replaced, and once it opens it is whole.

// gateWait bounds how long a request waits for the gate before its route is
// decided anyway: as long as the upgrader waits for the requests in flight
// (the units mu-plugin's WAIT_SECONDS). The request then goes to PHP, whose
// own pass of the gate waits on.
const gateWait = 10 * time.Second

// gatePoll is the first interval between attempts to pass a closed gate;
// it doubles up to gatePollMax, so that many requests waiting through a
// long copy (a large plugin) cost few wake-ups, and one waiting through a
// swap (microseconds) goes on within a millisecond.
const (
	gatePoll    = time.Millisecond
	gatePollMax = 16 * time.Millisecond
)

// gatePasser waits until no tree of the docroot is being replaced.
type gatePasser interface {
	// pass returns once the gate was open at some moment after the call,
	// or with an error (the wait's bound or ctx's end, a lock error);
	// waited says it found the gate closed.
	pass(ctx context.Context) (waited bool, err error)
}

var _ gatePasser = (*flockGate)(nil)

// flockGate passes the gate as PHP's auto_prepend_file does: a shared flock
// on the gate file, released at once. The flock is tried without blocking
// and retried (every poll, doubling up to gatePollMax), so a waiting request
// holds no thread.
type flockGate struct {
	root       *os.Root
	wait, poll time.Duration
	// testHookClosed, when set, is called once a pass found the gate
	// closed, before it waits (tests).
	testHookClosed func()
}

func (g *flockGate) pass(ctx context.Context) (waited bool, err error) {
	f, err := g.root.Open(path.Join(api.SwapStageDir, api.SwapGateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil // no filesync agent keeps this docroot: nothing is swapped
	}
	if err != nil {
		return false, fmt.Errorf("request gate: %w", err)
	}
	defer f.Close()
	fd := int(f.Fd())
	var retry *time.Timer
	var bound <-chan time.Time
	poll := g.poll
	for {
		err := unix.Flock(fd, unix.LOCK_SH|unix.LOCK_NB)
		if err == nil {
			unix.Flock(fd, unix.LOCK_UN)
			return retry != nil, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			return retry != nil, fmt.Errorf("request gate: %w", err)
		}
		if retry == nil {
			if g.testHookClosed != nil {
				g.testHookClosed()
			}
			limit := time.NewTimer(g.wait)
			defer limit.Stop()
			bound = limit.C
			retry = time.NewTimer(poll)
			defer retry.Stop()
		} else {
			poll = min(2*poll, gatePollMax)
			retry.Reset(poll)
		}
		select {
		case <-ctx.Done():
			return true, fmt.Errorf("request gate: %w", ctx.Err())
		case <-bound:
			return true, fmt.Errorf("request gate: still closed after %s", g.wait)
		case <-retry.C:
		}
	}
}

// decide resolves a request path to its route and, for a script, the file
// php-fpm runs (ok false: it must not run). A decision that rests on a
// missing path is made again after the request gate (see above): the
// script, file or directory may be missing only because a tree is being
// replaced right now.
func (a *Agent) decide(ctx context.Context, urlPath string) (rt route, file string, ok bool) {
	for attempt := 0; ; attempt++ {
		rt = resolve(a.root, urlPath)
		last := attempt > 0 || a.gate == nil
		if rt.missing && !last {
			a.passGate(ctx, urlPath)
			continue
		}
		file, ok = "", true
		if rt.kind == routePHP {
			file, ok = runnable(a.realDocroot, rt.script)
		}
		if !ok && !last {
			// Gone between the lookup and here, or truly not runnable.
			if _, err := a.root.Lstat(strings.TrimPrefix(rt.script, "/")); isNotExist(err) {
				a.passGate(ctx, urlPath)
				continue
			}
		}
		return rt, file, ok
	}
}

// passGate waits for the request gate before a route is decided again.
func (a *Agent) passGate(ctx context.Context, urlPath string) {
	waited, err := a.gate.pass(ctx)
	if waited {
		a.gateWaits.Add(1)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		a.logger.Warn("routing without the request gate", "path", urlPath, "err", err)
	}
}
