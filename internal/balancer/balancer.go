package balancer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Errors callers branch on.
var (
	// ErrNoUpstream: no node may take the request — every node is draining,
	// there is none, or all the candidates were excluded.
	ErrNoUpstream = errors.New("balancer: no upstream node available")
	// ErrUnknownNode: no node with that ID is in the set.
	ErrUnknownNode = errors.New("balancer: unknown node")
)

const never = math.MaxInt64

// Balancer is the current upstream set. Its methods are safe for concurrent
// use; Run must be running for active checks and to forget drained nodes.
type Balancer struct {
	cfg     Config
	checker Checker // nil: no active checks
	logger  *slog.Logger
	now     func() time.Time
	epoch   time.Time // clock ns are durations since epoch (monotonic)

	view    atomic.Pointer[view]
	running atomic.Bool
	kick    chan struct{} // wakes Run after a change; buffered 1

	adm admission // lock order: adm.mu before mu

	mu       sync.Mutex
	nodes    map[string]*Node
	order    []*Node // by ID, draining ones included
	failOpen bool    // the last published view had no node in service
}

// view is what Pick reads: an immutable snapshot of the candidates.
type view struct {
	all     []*Node // not draining: the fail-open set
	ready   []*Node // in service: healthy, not ejected, not draining
	warming bool    // some ready node is in slow start
	expires int64   // clock ns at which an ejection or slow start ends; never if none
}

// New returns a Balancer with an empty set. checker may be nil to disable
// active health checks.
func New(cfg Config, checker Checker, logger *slog.Logger) (*Balancer, error) {
	return newBalancer(cfg, checker, logger, time.Now)
}

func newBalancer(cfg Config, checker Checker, logger *slog.Logger, now func() time.Time) (*Balancer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	b := &Balancer{
		cfg:     cfg,
		checker: checker,
		logger:  logger.With("component", "balancer"),
		now:     now,
		epoch:   now(),
		kick:    make(chan struct{}, 1),
		nodes:   make(map[string]*Node),
	}
	b.view.Store(&view{expires: never})
	return b, nil
}

// clock returns the time in ns since b.epoch plus 1, from the monotonic
// clock: 0 is never a time, so it can mean "not set".
func (b *Balancer) clock() int64 { return int64(b.now().Sub(b.epoch)) + 1 }

// wall converts a clock value back to a time.Time.
func (b *Balancer) wall(ns int64) time.Time { return b.epoch.Add(time.Duration(ns - 1)) }

func (b *Balancer) wake() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// publishLocked rebuilds the view Pick reads. It ends ejections and slow
// starts that are over. b.mu must be held.
func (b *Balancer) publishLocked(now int64) *view {
	v := &view{expires: never}
	for _, n := range b.order {
		if n.draining.Load() {
			continue
		}
		v.all = append(v.all, n)
		if eu := n.ejectedUntil.Load(); eu != 0 {
			if now < eu {
				v.expires = min(v.expires, eu)
				continue
			}
			n.ejectedUntil.Store(0)
			n.stateSince = eu
			b.logger.Info("node ejection ended", "node", n.id, "addr", n.addr)
			b.backInLocked(n, now)
		}
		if !n.healthy {
			continue
		}
		v.ready = append(v.ready, n)
		if se := n.slowStartEnd.Load(); se != 0 {
			if now < se {
				v.warming = true
				v.expires = min(v.expires, se)
			} else {
				n.slowStartEnd.Store(0)
				b.logger.Info("node slow start ended", "node", n.id, "addr", n.addr)
			}
		}
	}
	failOpen := len(v.ready) == 0 && len(v.all) > 0
	if failOpen != b.failOpen {
		b.failOpen = failOpen
		if failOpen {
			b.logger.Warn("no node in service: failing open over all nodes", "nodes", len(v.all))
		} else {
			b.logger.Info("fail-open ended", "in_service", len(v.ready))
		}
	}
	b.view.Store(v)
	return v
}

// refresh republishes the view when v has expired, unless another goroutine
// did so already.
func (b *Balancer) refresh(v *view, now int64) *view {
	b.mu.Lock()
	defer b.mu.Unlock()
	if cur := b.view.Load(); cur != v {
		return cur
	}
	return b.publishLocked(now)
}

// Update reconciles the set with ups, the set the controller publishes. New
// nodes join healthy and in slow start; nodes missing from ups are drained,
// and Run forgets them once drained or after DeregistrationDelay; a draining
// node listed again returns to service in slow start, unless it was drained
// with Drain. A node whose address changed is replaced: the old one leaves
// the set at once, its requests in flight still finish.
func (b *Balancer) Update(ups []Upstream) {
	b.update(ups)
	b.dispatch() // new nodes take waiting requests
}

func (b *Balancer) update(ups []Upstream) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clock()
	listed := make(map[string]bool, len(ups))
	for _, u := range ups {
		if u.ID == "" || listed[u.ID] {
			b.logger.Warn("upstream ignored: empty or duplicate id", "node", u.ID, "addr", u.Addr)
			continue
		}
		listed[u.ID] = true
		n, ok := b.nodes[u.ID]
		switch {
		case ok && n.addr != u.Addr:
			b.logger.Info("node address changed", "node", n.id, "old", n.addr, "new", u.Addr)
			b.forgetLocked(n)
			b.addLocked(u, now)
		case !ok:
			b.addLocked(u, now)
			b.logger.Info("node added", "node", u.ID, "addr", u.Addr, "slow_start", b.cfg.SlowStart)
		case n.draining.Load() && !n.explicitDrain:
			n.draining.Store(false)
			if n.drainedClosed {
				n.drained = make(chan struct{})
				n.drainedClosed = false
			}
			n.healthy, n.rises, n.falls = true, 0, 0
			b.startSlowStartLocked(n, now)
			n.stateSince = now
			b.backInLocked(n, now)
			b.logger.Info("node back in service", "node", n.id, "addr", n.addr)
		}
	}
	for _, n := range b.order {
		if !listed[n.id] && !n.draining.Load() {
			b.drainLocked(n, now, false)
		}
	}
	b.publishLocked(now)
	b.wake()
}

func (b *Balancer) addLocked(u Upstream, now int64) {
	n := &Node{id: u.ID, addr: u.Addr, b: b, healthy: true, drained: make(chan struct{}), stateSince: now}
	n.down.Store(newDownSignal())
	if b.cfg.NewConns != nil {
		n.conns = b.cfg.NewConns(u.Addr)
	}
	b.startSlowStartLocked(n, now)
	b.nodes[n.id] = n
	i, _ := slices.BinarySearchFunc(b.order, n.id, func(m *Node, id string) int { return strings.Compare(m.id, id) })
	b.order = slices.Insert(b.order, i, n)
}

func (b *Balancer) startSlowStartLocked(n *Node, now int64) {
	if b.cfg.SlowStart > 0 {
		n.slowStartEnd.Store(now + int64(b.cfg.SlowStart))
	} else {
		n.slowStartEnd.Store(0)
	}
}

// forgetLocked takes n out of the set. Its requests in flight still finish
// and still signal Drained.
func (b *Balancer) forgetLocked(n *Node) {
	n.removed = true
	if n.conns != nil {
		n.conns.Close() // idle connections now; the ones in use when their request ends
	}
	n.draining.Store(true) // a Pick holding an old view backs off
	delete(b.nodes, n.id)
	b.order = slices.DeleteFunc(b.order, func(m *Node) bool { return m == n })
	if !n.drainedClosed && n.inflight.Load() == 0 {
		close(n.drained)
		n.drainedClosed = true
	}
}

// Drain stops new picks of the node; requests in flight finish. Unlike a
// drain by Update, it lasts until Remove, and Run does not forget the node
// on its own: see Drained, WaitDrained and Remove.
func (b *Balancer) Drain(id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, ok := b.nodes[id]
	if !ok {
		return fmt.Errorf("balancer: drain %s: %w", id, ErrUnknownNode)
	}
	now := b.clock()
	if n.draining.Load() {
		n.explicitDrain = true
		return nil
	}
	b.drainLocked(n, now, true)
	b.publishLocked(now)
	b.wake()
	return nil
}

func (b *Balancer) drainLocked(n *Node, now int64, explicit bool) {
	// Store draining before loading inflight; Pick does the reverse, so one
	// of the two sees the other (see Pick).
	n.draining.Store(true)
	n.explicitDrain = explicit
	n.drainStart = now
	n.stateSince = now
	b.logger.Info("node draining", "node", n.id, "addr", n.addr, "in_flight", n.inflight.Load())
	if n.inflight.Load() == 0 {
		b.closeDrainedLocked(n)
	}
}

func (b *Balancer) closeDrainedLocked(n *Node) {
	if n.drainedClosed {
		return
	}
	close(n.drained)
	n.drainedClosed = true
	b.logger.Info("node drained", "node", n.id, "addr", n.addr)
}

// drainCheck is called when a draining node's last request ends.
func (b *Balancer) drainCheck(n *Node) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n.draining.Load() && n.inflight.Load() == 0 && !n.drainedClosed {
		b.closeDrainedLocked(n)
		b.wake()
	}
}

// closed is returned by Drained for nodes that are not in the set.
var closed = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Drained returns a channel that is closed once the node is draining with
// no request in flight. For an ID not in the set it returns a closed
// channel: nothing can be in flight there any more.
func (b *Balancer) Drained(id string) <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n, ok := b.nodes[id]; ok {
		return n.drained
	}
	return closed
}

// WaitDrained waits until the node is drained (see Drained) or ctx ends.
// Typically: Drain, WaitDrained with a DeregistrationDelay timeout, Remove.
func (b *Balancer) WaitDrained(ctx context.Context, id string) error {
	select {
	case <-b.Drained(id):
		return nil
	case <-ctx.Done():
		return fmt.Errorf("balancer: wait drained %s: %w", id, context.Cause(ctx))
	}
}

// Remove takes the node out of the set at once, drained or not; requests in
// flight still finish. It returns ErrUnknownNode when there is no such node.
func (b *Balancer) Remove(id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, ok := b.nodes[id]
	if !ok {
		return fmt.Errorf("balancer: remove %s: %w", id, ErrUnknownNode)
	}
	b.forgetLocked(n)
	b.logger.Info("node removed", "node", n.id, "addr", n.addr, "in_flight", n.inflight.Load())
	b.publishLocked(b.clock())
	b.wake()
	return nil
}

// Warming reports whether the node is in slow start.
func (b *Balancer) Warming(id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, ok := b.nodes[id]
	if !ok {
		return false
	}
	se := n.slowStartEnd.Load()
	return se != 0 && b.clock() < se
}

// ReportLoad records the listen queue the node reported (requests waiting
// for a PHP worker). Pick counts it as load; a queue of at least
// SaturationQueue is a saturation signal, a shorter one ends a streak.
// Unknown IDs are ignored.
func (b *Balancer) ReportLoad(id string, queue int) {
	b.mu.Lock()
	n, ok := b.nodes[id]
	b.mu.Unlock()
	if !ok {
		return
	}
	queue = max(queue, 0)
	n.queue.Store(int64(queue))
	if b.cfg.SaturationQueue == 0 || queue < b.cfg.SaturationQueue {
		if n.satRun.Load() != 0 {
			n.satRun.Store(0)
		}
		return
	}
	n.saturate.Add(1)
	if th := b.cfg.SaturationThreshold; th > 0 && int(n.satRun.Add(1)) >= th {
		b.eject(n, Saturated)
	}
}
