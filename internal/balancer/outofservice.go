package balancer

import (
	"context"
	"sync"
)

// downSignal is one in-service period of a node: cancelled when the node
// is taken out of service for failing. Its watches (WatchDown) are told
// then too.
type downSignal struct {
	ctx    context.Context
	cancel context.CancelFunc

	mu    sync.Mutex
	fired bool
	head  *DownWatch // the registered watches, a list through their own links
}

func newDownSignal() *downSignal {
	ctx, cancel := context.WithCancel(context.Background())
	return &downSignal{ctx: ctx, cancel: cancel}
}

// OutOfService returns a context that is cancelled when n is taken out of
// service because it fails: its active checks failed Fall times in a row,
// or it was ejected for connection errors or its own 5xx (not for
// saturation: a busy node finishes what it has). A drain does not cancel
// it: requests in flight on a draining node finish. The edge cancels with
// it the requests in flight there that are safe to send again (HAProxy's
// on-marked-down shutdown-sessions). Once n is back in service a new
// context is returned. It takes no lock and does not allocate.
// WatchDown is the same signal without a context per request.
func (n *Node) OutOfService() context.Context {
	if d := n.down.Load(); d != nil {
		return d.ctx
	}
	return context.Background() // a Node the balancer did not make
}

// A DownWatcher is told once, by NodeDown, that its node failed out of
// service (as OutOfService's context is cancelled). NodeDown runs in the
// goroutine that took the node out, with the balancer's lock held: it
// must not block or call the balancer.
type DownWatcher interface{ NodeDown() }

// DownWatch is one registration of a DownWatcher with a node's current
// in-service period (Node.WatchDown). Its zero value is ready; it is
// linked into the period's list itself, so a registration allocates
// nothing. One DownWatch serves one WatchDown and its Stop.
type DownWatch struct {
	w          DownWatcher
	d          *downSignal
	prev, next *DownWatch // guarded by d.mu
	linked     bool       // guarded by d.mu
}

// WatchDown registers w to be told when n fails out of service (see
// OutOfService and DownWatcher) until dw.Stop. It reports false,
// registering nothing, when n is out of service already: the balancer
// then fails open and picks it all the same, and there is nothing to cut.
func (n *Node) WatchDown(dw *DownWatch, w DownWatcher) bool {
	d := n.down.Load()
	if d == nil {
		return false // a Node the balancer did not make
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fired {
		return false
	}
	dw.w, dw.d, dw.prev, dw.next, dw.linked = w, d, nil, d.head, true
	if d.head != nil {
		d.head.prev = dw
	}
	d.head = dw
	return true
}

// Stop ends the registration; NodeDown is not called after it returns
// unless it had begun.
func (dw *DownWatch) Stop() {
	d := dw.d
	if d == nil {
		return
	}
	d.mu.Lock()
	if dw.linked {
		if dw.prev != nil {
			dw.prev.next = dw.next
		} else {
			d.head = dw.next
		}
		if dw.next != nil {
			dw.next.prev = dw.prev
		}
		dw.prev, dw.next, dw.linked = nil, nil, false
	}
	d.mu.Unlock()
}

// fire cancels the period's context and tells its watches, once.
func (d *downSignal) fire() {
	d.cancel()
	d.mu.Lock()
	if d.fired {
		d.mu.Unlock()
		return
	}
	d.fired = true
	var ws []DownWatcher
	for dw := d.head; dw != nil; {
		next := dw.next
		ws = append(ws, dw.w)
		dw.prev, dw.next, dw.linked = nil, nil, false
		dw = next
	}
	d.head = nil
	d.mu.Unlock()
	for _, w := range ws {
		w.NodeDown()
	}
}

// takenOutLocked signals n's requests in flight that n failed out of
// service. b.mu must be held.
func (b *Balancer) takenOutLocked(n *Node) {
	if d := n.down.Load(); d != nil && d.ctx.Err() == nil {
		d.fire()
		b.logger.Info("node out of service: requests in flight cancelled where safe", "node", n.id, "addr", n.addr, "in_flight", n.inflight.Load())
	}
}

// backInLocked gives n a new in-service period once it is healthy and not
// ejected. b.mu must be held.
func (b *Balancer) backInLocked(n *Node, now int64) {
	if !n.healthy || ejected(n, now) {
		return
	}
	if d := n.down.Load(); d == nil || d.ctx.Err() != nil {
		n.down.Store(newDownSignal())
	}
}
