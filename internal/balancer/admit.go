package balancer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// ErrOverloaded: admission control refused the request — every node has
// NodeLimit requests in flight and the queue is full, or the request waited
// QueueTimeout. The caller answers from a stale copy or with a fast 503.
var ErrOverloaded = errors.New("balancer: every node is at its limit")

// Rejection reasons, as AdmissionStats counts them.
var (
	errQueueFull    = fmt.Errorf("queue full (http.queue_backlog): %w", ErrOverloaded)
	errQueueTimeout = fmt.Errorf("waited the whole http.queue_timeout: %w", ErrOverloaded)
)

// admission is the queue of requests waiting for a node below its limit.
// Waiters are grouped by client and served round robin between clients, so
// one client's flood gets at most an equal share of the freed slots; when
// the queue is full, a newcomer takes the place of the newest waiter of the
// client with the most waiters, if that client has more than the newcomer's
// own (longest queue drop): a flood fills only its share of the queue.
type admission struct {
	waiting atomic.Int64 // waiters and Acquires deciding; release checks it without the lock

	mu      sync.Mutex
	clients map[string]*clientQueue
	ring    []*clientQueue // clients with waiters, in round-robin order
	next    int            // ring index served next
	queued  int            // waiters in all queues

	admitted     atomic.Uint64 // at once, no wait
	dequeued     atomic.Uint64 // after a wait
	rejectedFull atomic.Uint64
	rejectedWait atomic.Uint64
	waitNs       atomic.Int64 // total wait of the dequeued ones
	onWait       func(time.Duration)
}

type clientQueue struct {
	key string
	ws  []*waiter // oldest first
}

type waiter struct {
	cq      *clientQueue
	exclude []string
	ch      chan *Node // buffered 1: the node handed over, nil when dropped
	out     bool       // handed a node or dropped; guarded by admission.mu
}

// AdmissionStats are admission control's counters.
type AdmissionStats struct {
	Admitted     uint64        // requests that got a node at once
	Dequeued     uint64        // requests that got a node after waiting
	RejectedFull uint64        // refused: the queue was full
	RejectedWait uint64        // refused: waited QueueTimeout
	Waiting      int           // in the queue now
	WaitTotal    time.Duration // total wait of the dequeued requests
}

// Admission returns admission control's counters.
func (b *Balancer) Admission() AdmissionStats {
	a := &b.adm
	a.mu.Lock()
	q := a.queued
	a.mu.Unlock()
	return AdmissionStats{Admitted: a.admitted.Load(), Dequeued: a.dequeued.Load(),
		RejectedFull: a.rejectedFull.Load(), RejectedWait: a.rejectedWait.Load(),
		Waiting: q, WaitTotal: time.Duration(a.waitNs.Load())}
}

// OnQueueWait sets a function called with the wait of every request that
// got its node after waiting in the queue (a histogram). Call it before use.
func (b *Balancer) OnQueueWait(f func(time.Duration)) { b.adm.onWait = f }

// Acquire is Pick under admission control: it returns a node with fewer
// than NodeLimit requests in flight, waiting for one in a queue shared by
// the nodes in service (QueueBacklog places per node, fair between
// clients) for at most QueueTimeout. Beyond that it returns an error
// wrapping ErrOverloaded; ErrNoUpstream when no node may take the request;
// the context's error when ctx ends first. client identifies the requester
// for fairness (its address); "" is one anonymous client. With NodeLimit 0
// it is Pick.
func (b *Balancer) Acquire(ctx context.Context, client string, exclude ...string) (*Node, error) {
	if b.cfg.NodeLimit == 0 {
		return b.Pick(exclude...)
	}
	a := &b.adm
	a.mu.Lock()
	// Counted before looking for a free node: a release that frees one after
	// the look sees the count and dispatches (release does the reverse).
	a.waiting.Add(1)
	v := b.currentView()
	if v.candidates(exclude) == 0 {
		a.waiting.Add(-1)
		a.mu.Unlock()
		return nil, ErrNoUpstream
	}
	if a.queued == 0 {
		if n := b.takeFree(v, exclude); n != nil {
			a.waiting.Add(-1)
			a.mu.Unlock()
			a.admitted.Add(1)
			return n, nil
		}
	}
	cq := a.clients[client]
	own := 0
	if cq != nil {
		own = len(cq.ws)
	}
	if limit := b.cfg.QueueBacklog * max(len(v.ready), min(len(v.all), 1)); a.queued >= limit {
		victim := a.longest()
		if victim == nil || len(victim.ws) <= own {
			a.waiting.Add(-1)
			a.mu.Unlock()
			a.rejectedFull.Add(1)
			return nil, errQueueFull
		}
		w := victim.ws[len(victim.ws)-1]
		a.removeLocked(w)
		w.ch <- nil
		a.rejectedFull.Add(1)
	}
	if cq == nil {
		cq = &clientQueue{key: client}
		if a.clients == nil {
			a.clients = make(map[string]*clientQueue)
		}
		a.clients[client] = cq
		a.ring = append(a.ring, cq)
	}
	w := &waiter{cq: cq, exclude: exclude, ch: make(chan *Node, 1)}
	cq.ws = append(cq.ws, w)
	a.queued++
	a.mu.Unlock()
	// Nodes freed while this one queued were handed to older waiters; one
	// freed between the look and the enqueue is dispatched here.
	b.dispatch()

	start := b.now()
	timer := time.NewTimer(b.cfg.QueueTimeout)
	defer timer.Stop()
	var err error
	select {
	case n := <-w.ch:
		return b.dequeued(n, start, errQueueFull)
	case <-ctx.Done():
		err = context.Cause(ctx)
	case <-timer.C:
		err = errQueueTimeout
	}
	a.mu.Lock()
	if !w.out {
		a.removeLocked(w)
		a.mu.Unlock()
		if errors.Is(err, errQueueTimeout) {
			a.rejectedWait.Add(1)
		}
		return nil, err
	}
	a.mu.Unlock()
	n := <-w.ch // handed over or dropped meanwhile
	if n != nil && ctx.Err() != nil {
		n.Done(Canceled)
		return nil, err
	}
	return b.dequeued(n, start, errQueueFull)
}

// PickBody is Pick for a request that carries a body: it does not wait in
// the admission queue, and it does not count toward NodeLimit until the
// returned release is called (when the node has answered). Such a request
// may still be receiving its body, and the node reads a body whole before
// it takes a PHP worker: metering it would let slow uploads hold every
// place and starve page views (the slow-body defence, TestRequestPath).
// Requests with bodies are bounded by http.client_concurrency and the
// node's own queue instead.
func (b *Balancer) PickBody(exclude ...string) (*Node, func(), error) {
	n, err := b.Pick(exclude...)
	if err != nil {
		return nil, nil, err
	}
	n.unmetered.Add(1)
	var once sync.Once
	return n, func() { once.Do(func() { n.unmetered.Add(-1) }) }, nil
}

func (b *Balancer) dequeued(n *Node, start time.Time, dropped error) (*Node, error) {
	if n == nil {
		return nil, dropped
	}
	a := &b.adm
	d := b.now().Sub(start)
	a.dequeued.Add(1)
	a.waitNs.Add(int64(d))
	if a.onWait != nil {
		a.onWait(d)
	}
	return n, nil
}

// currentView is the view Pick would use now.
func (b *Balancer) currentView() *view {
	v := b.view.Load()
	if v.expires != never {
		if now := b.clock(); now >= v.expires {
			v = b.refresh(v, now)
		}
	}
	return v
}

// candidates counts the nodes the request could ever go to.
func (v *view) candidates(exclude []string) int {
	cands := v.ready
	if len(cands) == 0 {
		cands = v.all
	}
	n := 0
	for _, c := range cands {
		if !slices.Contains(exclude, c.id) {
			n++
		}
	}
	return n
}

// takeFree picks, as Pick does, among the candidates with fewer than
// NodeLimit requests in flight, and counts the request in flight; nil when
// every candidate is full. admission.mu must be held: it is what keeps two
// takers from both taking a node's last place.
func (b *Balancer) takeFree(v *view, exclude []string) *Node {
	limit := int64(b.cfg.NodeLimit)
	full := exclude
	for _, c := range v.ready {
		if c.inflight.Load()-c.unmetered.Load() >= limit && !slices.Contains(full, c.id) {
			full = append(full[:len(full):len(full)], c.id)
		}
	}
	if len(v.ready) == 0 {
		for _, c := range v.all {
			if c.inflight.Load()-c.unmetered.Load() >= limit && !slices.Contains(full, c.id) {
				full = append(full[:len(full):len(full)], c.id)
			}
		}
	}
	var now int64
	if v.warming {
		now = b.clock()
	}
	n := v.choose(int64(b.cfg.SlowStart), now, full)
	if n == nil {
		return nil
	}
	n.inflight.Add(1)
	if n.draining.Load() { // drained since the view was published
		if n.inflight.Add(-1) == 0 {
			b.drainCheck(n) // not release: it would dispatch, and a.mu is held
		}
		return nil
	}
	n.picks.Add(1)
	return n
}

// dispatch hands nodes below their limit to waiters, one client's oldest
// waiter after another in round-robin order, until no waiter can be served.
func (b *Balancer) dispatch() {
	a := &b.adm
	a.mu.Lock()
	defer a.mu.Unlock()
	for a.queued > 0 {
		v := b.currentView()
		served := false
		for k := range len(a.ring) {
			i := (a.next + k) % len(a.ring)
			cq := a.ring[i]
			w := cq.ws[0]
			n := b.takeFree(v, w.exclude)
			if n == nil {
				continue // this client's oldest waits for a node it may use
			}
			a.next = i + 1
			a.removeLocked(w) // may take cq out of the ring: a.next then is the next client
			w.ch <- n
			served = true
			break
		}
		if !served {
			return
		}
	}
}

// removeLocked takes w out of its client's queue.
func (a *admission) removeLocked(w *waiter) {
	w.out = true
	cq := w.cq
	cq.ws = slices.DeleteFunc(cq.ws, func(x *waiter) bool { return x == w })
	a.queued--
	a.waiting.Add(-1)
	if len(cq.ws) > 0 {
		return
	}
	delete(a.clients, cq.key)
	i := slices.Index(a.ring, cq)
	a.ring = slices.Delete(a.ring, i, i+1)
	if i < a.next {
		a.next--
	}
}

// longest is the client with the most waiters.
func (a *admission) longest() *clientQueue {
	var best *clientQueue
	for _, cq := range a.ring {
		if best == nil || len(cq.ws) > len(best.ws) {
			best = cq
		}
	}
	return best
}
