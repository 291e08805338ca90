package filesync

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/scalepress/scalepress/internal/atomicfile"
)

// ErrNotBootstrapped is returned by Run on a node whose docroot was never
// bootstrapped.
var ErrNotBootstrapped = errors.New("filesync: the docroot was never bootstrapped; call Bootstrap first")

// Agent keeps a node's docroot in sync with the files role: it applies the
// change stream in sequence order and pushes the changes PHP makes locally.
type Agent struct {
	cfg    AgentConfig
	rules  pathRules
	logger *slog.Logger
	client *Client
	root   *os.Root
	// pool is the host's link pool (linkpool.go), nil without one.
	pool       *os.Root
	poolWarned atomic.Bool
	queue      *queue
	quar       *quarantine // its maps under mu
	unlock     func()

	applied atomic.Uint64
	kick    chan struct{} // wakes the pusher
	pushMu  sync.Mutex    // one push at a time (pusher, Bootstrap)
	pstats  pushStats     // under pushMu
	recv    recvStats     // the stream's applier's (applystats.go)

	// fetchNanos and fetches count the blob GETs of download, fetchedAhead
	// the blobs the applier found fetched ahead (applystats.go).
	fetchNanos, fetches, fetchedAhead atomic.Int64
	// pre fetches blobs ahead of the stream's applier (prefetch.go), nil
	// outside streamOnce.
	pre atomic.Pointer[prefetcher]

	// mu guards the index, the pending counts and every write to the
	// docroot, so that the applier and the local scanner never interleave.
	mu sync.Mutex
	// index is what the agent knows its docroot holds: the manifest at
	// AppliedSeq plus the local changes it queued. Nil until loaded.
	index *tree
	// pending counts, per path, the queued or in-flight local changes not
	// yet seen back in the stream; remote changes to such a path are
	// skipped, since the local change will follow them in the log.
	pending map[string]int
	// scanned is set once the docroot was compared with the index after the
	// agent caught up; local events before that are left to that scan.
	scanned bool

	// gate keeps PHP requests out while a unit is swapped in.
	gate      requestGate
	gateFiles *flockGate // closed by Close
	// watch is Run's watcher (nil outside Run): a unit's swap rewatches
	// the unit.
	watch *watcher
	// testHookStage, when set, is called after each step of a unit's swap
	// (stage.go); errKilled stops the apply there as a crash would.
	testHookStage func(step string) error
}

// NewAgent opens the agent's state (StateDir: applied sequence number, queue
// of local changes) and its docroot, creating both if needed.
func NewAgent(cfg AgentConfig, logger *slog.Logger) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "filesync-agent", "node", cfg.NodeID)
	rules, err := compileRules(cfg.Rules)
	if err != nil {
		return nil, fmt.Errorf("filesync: new agent: %w", err)
	}
	for _, d := range []string{cfg.StateDir, cfg.Docroot} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("filesync: new agent: %w", err)
		}
	}
	unlock, err := lockDir(cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("filesync: new agent: %w", err)
	}
	client := NewClient(cfg.Server, cfg.Token, nil)
	if cfg.ServerFile != "" {
		client = NewFollowingClient(cfg.ServerFile, cfg.Token, nil)
	}
	a := &Agent{
		cfg: cfg, rules: rules, logger: logger, unlock: unlock,
		client:  client,
		kick:    make(chan struct{}, 1),
		pending: make(map[string]int),
	}
	fail := func(err error) (*Agent, error) {
		a.Close()
		return nil, fmt.Errorf("filesync: new agent: %w", err)
	}
	if a.root, err = os.OpenRoot(cfg.Docroot); err != nil {
		return fail(err)
	}
	if err := a.clearStage(); err != nil {
		return fail(err)
	}
	if cfg.LinkPool != "" {
		if a.pool, err = openLinkPool(cfg.LinkPool); err != nil {
			return fail(err)
		}
	}
	if err := a.openUnits(); err != nil {
		return fail(err)
	}
	gate, err := a.openGate()
	if err != nil {
		return fail(err)
	}
	a.gate, a.gateFiles = gate, gate
	if a.queue, err = openQueue(filepath.Join(cfg.StateDir, "queue.jsonl")); err != nil {
		return fail(err)
	}
	if a.quar, err = openQuarantine(cfg.StateDir); err != nil {
		return fail(err)
	}
	for _, e := range a.queue.head(a.queue.len()) {
		a.pending[e.Change.Path]++
	}
	if seq, ok, err := a.loadApplied(); err != nil {
		return fail(err)
	} else if ok {
		a.applied.Store(seq)
	}
	return a, nil
}

// Close releases the agent's files. Call it after Run has returned.
func (a *Agent) Close() error {
	if a.queue != nil {
		a.queue.close()
	}
	if a.quar != nil {
		a.quar.close()
	}
	if a.gateFiles != nil {
		a.gateFiles.closeFiles()
	}
	if a.root != nil {
		a.root.Close()
	}
	if a.pool != nil {
		a.pool.Close()
	}
	a.unlock()
	return nil
}

// AppliedSeq returns the sequence number of the last change applied to the
// docroot: every change up to it is on disk.
func (a *Agent) AppliedSeq() uint64 { return a.applied.Load() }

func (a *Agent) appliedPath() string { return filepath.Join(a.cfg.StateDir, "applied") }

func (a *Agent) loadApplied() (uint64, bool, error) {
	data, err := os.ReadFile(a.appliedPath())
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	seq, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		// Damaged (e.g. a power loss right after the rename): treat as
		// never bootstrapped, which forces a full, hash-checked Bootstrap.
		a.logger.Warn("applied sequence number unreadable; bootstrap needed", "err", err)
		return 0, false, nil
	}
	return seq, true, nil
}

// saveApplied records AppliedSeq. Without durable (after each burst of the
// stream), the write is not fsynced, like the docroot writes it counts: the
// docroot is a replica, and a cursor more durable than the files it counts
// would, after a machine crash, skip the replay that repairs them by hash.
// With durable (bootstrap, shutdown) it goes through atomicfile.
func (a *Agent) saveApplied(durable bool) error {
	data := []byte(strconv.FormatUint(a.applied.Load(), 10) + "\n")
	if durable {
		return atomicfile.Write(a.appliedPath(), data, 0o644)
	}
	tmp := a.appliedPath() + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, a.appliedPath())
}

// Run keeps the docroot in sync until ctx ends: it watches the docroot and
// pushes local changes (queueing them while the server is unreachable),
// and applies the change stream, reconnecting with since = AppliedSeq.
func (a *Agent) Run(ctx context.Context) error {
	if _, ok, err := a.loadApplied(); err != nil {
		return fmt.Errorf("filesync: run: %w", err)
	} else if !ok {
		return ErrNotBootstrapped
	}
	w, err := newWatcher(a.cfg.Docroot, a.rules, a.logger)
	if err != nil {
		return fmt.Errorf("filesync: run: watch %s: %w", a.cfg.Docroot, err)
	}
	a.mu.Lock()
	a.scanned = false
	a.watch = w
	a.mu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { a.pushLoop(ctx) })
	wg.Go(func() { a.streamLoop(ctx) })
	wg.Go(func() { a.watchLoop(ctx, w) })
	wg.Go(func() { a.unitsLoop(ctx) })
	<-ctx.Done()
	cancel()
	wg.Wait()
	a.mu.Lock()
	a.watch = nil
	a.mu.Unlock()
	w.close()
	if err := a.saveApplied(true); err != nil {
		return fmt.Errorf("filesync: run: save applied: %w", err)
	}
	return nil
}

// backoff is an exponential delay with jitter between min and max.
type backoff struct {
	min, max, cur time.Duration
}

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	return b.cur/2 + rand.N(b.cur/2+1)
}

func (b *backoff) reset() { b.cur = 0 }

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// streamLoop applies the change stream, reconnecting after failures.
func (a *Agent) streamLoop(ctx context.Context) {
	b := backoff{min: a.cfg.RetryMin, max: a.cfg.RetryMax}
	down := false
	for ctx.Err() == nil {
		err := a.streamOnce(ctx, &b, &down)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, ErrFuture) {
			a.logger.Error("the files log ends before this node's applied seq; bootstrapping again", "applied", a.AppliedSeq(), "err", err)
			if err = a.Bootstrap(ctx); err == nil {
				continue
			}
		}
		if !down && !a.failing() { // a failing change logs each attempt itself
			a.logger.Warn("change stream interrupted; reconnecting", "applied", a.AppliedSeq(), "err", err)
			down = true
		}
		sleepCtx(ctx, b.next())
	}
}

func (a *Agent) streamOnce(ctx context.Context, b *backoff, down *bool) error {
	a.mu.Lock()
	haveIndex := a.index != nil
	a.mu.Unlock()
	if !haveIndex {
		rctx, cancel := context.WithTimeout(ctx, a.cfg.RequestTimeout)
		m, err := a.client.ManifestAt(rctx, a.AppliedSeq())
		cancel()
		if err != nil {
			return err
		}
		a.mu.Lock()
		if a.index == nil {
			a.index = treeFromEntries(m.Entries, false)
		}
		a.mu.Unlock()
	}
	// The stream is cut as soon as the files role moves (Client.do): the
	// agent reconnects to the new role at once instead of after
	// StreamTimeout of silence from the old one.
	st, err := a.client.Stream(ctx, a.AppliedSeq(), a.cfg.StreamTimeout)
	if err != nil {
		return err
	}
	defer st.Close()
	if !a.failing() {
		b.reset() // else the retries of a failing change keep backing off
	}
	if *down {
		a.logger.Info("change stream connected", "since", a.AppliedSeq(), "head", st.Head())
		*down = false
	}
	if a.AppliedSeq() >= st.Head() {
		a.startupScan()
	}
	next, buffered := st.Next, st.Buffered
	if pf := a.startPrefetch(ctx); pf != nil {
		defer pf.stop(st.cut)
		next, buffered = pf.read(st, 4*a.cfg.Prefetch)
	}
	var group []Change // an incomplete unit group (stage.go)
	var stats applyStats
	stats.reset(a)
	for {
		t0 := time.Now()
		c, err := next()
		if err != nil {
			return err
		}
		t1 := time.Now()
		if stats.n == 0 {
			stats.start = t1 // not the idle time before it
		} else {
			stats.wait += t1.Sub(t0)
		}
		stats.n++
		applied := a.AppliedSeq()
		if c.Seq <= applied {
			continue
		}
		if c.Seq != applied+len64(group)+1 {
			return fmt.Errorf("filesync: stream: got seq %d after %d", c.Seq, applied+len64(group))
		}
		if c.Group > c.Seq {
			group = append(group, c) // the rest of the unit follows
			continue
		}
		if c.Group != 0 {
			group = append(group, c)
			err := a.applyUnit(ctx, group)
			stats.apply += time.Since(t1)
			group = nil
			if err != nil {
				return err
			}
			a.passed(c.Seq)
			b.reset()
			if err := a.saveApplied(false); err != nil {
				a.logger.Warn("cannot save applied seq", "err", err)
			}
			if c.Seq >= st.Head() {
				a.startupScan()
			}
			continue
		}
		if len(group) > 0 {
			return fmt.Errorf("filesync: stream: record %d ends the group of %d to %d early", c.Seq, group[0].Seq, group[0].Group)
		}
		err = a.applyRemote(ctx, c)
		stats.apply += time.Since(t1)
		if err != nil {
			if !a.skipFailed(ctx, c, err) {
				return fmt.Errorf("filesync: apply %d (%s %s): %w", c.Seq, c.Op, c.Path, err)
			}
		} else {
			b.reset()
			if c.Origin != a.cfg.NodeID {
				a.recv.applied(c, t1, time.Now(), a.logger)
			}
		}
		a.applied.Store(c.Seq)
		a.passed(c.Seq)
		if !buffered() {
			if err := a.saveApplied(false); err != nil {
				a.logger.Warn("cannot save applied seq", "err", err)
			}
			stats.caughtUp(a, a.logger)
		}
		if c.Seq >= st.Head() {
			a.startupScan()
		}
	}
}

func len64(s []Change) uint64 { return uint64(len(s)) }

// applyUnit applies a complete unit group and moves AppliedSeq past it. A
// group that cannot be swapped in (its shape, a local change under it, a
// failure of this node) is applied record by record, as an agent that
// knows no groups would: the end state is the same, without the swap's
// guarantee. A remote failure (the files role, the network) returns, and
// the group is applied again after the reconnect.
func (a *Agent) applyUnit(ctx context.Context, group []Change) error {
	err := a.applyGroup(ctx, group)
	var re *remoteError
	switch {
	case errors.As(err, &re) || ctx.Err() != nil:
		return fmt.Errorf("filesync: apply the unit %s (%d to %d): %w", group[0].Path, group[0].Seq, group[0].Group, err)
	case errors.Is(err, errKilled):
		return err
	case err == nil:
		a.applied.Store(group[len(group)-1].Seq)
		return nil
	case !errors.Is(err, errGroupShape):
		a.logger.Warn("cannot swap a unit in; applying it record by record", "unit", group[0].Path, "seq", group[0].Seq, "err", err)
	}
	for _, c := range group {
		if err := a.applyRemote(ctx, c); err != nil && !a.skipFailed(ctx, c, err) {
			return fmt.Errorf("filesync: apply %d (%s %s): %w", c.Seq, c.Op, c.Path, err)
		}
		a.applied.Store(c.Seq)
	}
	return nil
}

// failing reports whether a change of the stream is failing and being
// retried.
func (a *Agent) failing() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.quar.fails) > 0
}

// skipFailed decides what becomes of change c of the stream that failed
// with err: true to skip it and go on, false to retry it after a backoff.
// A put whose blob the files role no longer has is skipped when a later
// change superseded it (its blob was unreferenced and collected); a change
// that keeps failing for a reason of its own is quarantined.
func (a *Agent) skipFailed(ctx context.Context, c Change, err error) bool {
	if errors.Is(err, ErrBlobNotFound) {
		rctx, cancel := context.WithTimeout(ctx, a.cfg.RequestTimeout)
		r, perr := a.client.PathSeq(rctx, c.Path)
		cancel()
		if perr != nil {
			return false
		}
		if !r.Exists || r.Seq > c.Seq {
			a.logger.Info("skipping a superseded change whose blob was collected", "seq", c.Seq, "path", c.Path, "current_seq", r.Seq)
			return true
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.failedLocked(c.Seq, c.Op, c.Path, err)
}

// startupScan compares the docroot with the index once per Run, after the
// agent has caught up with the log, so that changes made while the agent
// was not running are pushed, and files a crash left ahead of AppliedSeq
// were first reconciled by the replay.
func (a *Agent) startupScan() {
	a.mu.Lock()
	done := a.scanned
	a.scanned = true
	a.mu.Unlock()
	if !done {
		a.rescan()
	}
}

// watchLoop turns fsnotify events into debounced batches of local changes.
func (a *Agent) watchLoop(ctx context.Context, w *watcher) {
	deb := newDebouncer(a.cfg.Debounce)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	arm := func() {
		if at, ok := deb.next(); ok {
			timer.Reset(time.Until(at))
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.fsw.Events:
			if !ok {
				return
			}
			now := time.Now()
			w.event(ev, func(p string) { deb.add(p, now) })
			arm()
		case err := <-w.errs:
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				a.logger.Warn("file events were lost; rescanning the docroot")
			} else {
				a.logger.Warn("watcher error; rescanning the docroot", "err", err)
			}
			if err := w.watchAll(); err != nil {
				a.logger.Warn("cannot re-add watches", "err", err)
			}
			a.rescan()
		case <-timer.C:
			if ps := deb.ready(time.Now()); len(ps) > 0 {
				a.handleLocal(ps)
			}
			arm()
		}
	}
}

func (a *Agent) wakePusher() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}
