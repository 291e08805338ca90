package upstream

import (
	"net"
	"sync"
)

// Watch lets its owner cut one round trip short while it waits for the
// node's answer head (ADR 0021's amendment: a node gone out of service, a
// header timeout), without a context per request: Cut, from any
// goroutine, wakes the round trip's blocked write or read at once (a
// deadline in the past on its connection); the round trip then fails with
// Cut's cause, and its connection is closed, never reused. Once the answer
// head is in, Cut does nothing and reports false: a body in transit is
// never cut, and a head that arrives as the cut falls is dropped. The zero
// Watch is ready; one Watch serves one DoWatched.
type Watch struct {
	mu    sync.Mutex
	state uint8    // watchWaiting, watchHeadIn or watchCut
	nc    net.Conn // the round trip's connection; nil between connections
	cause error
}

const (
	watchWaiting uint8 = iota
	watchHeadIn
	watchCut
)

// Cut cuts the round trip short with cause, unless its answer head is in;
// it reports whether it did.
func (w *Watch) Cut(cause error) bool {
	w.mu.Lock()
	if w.state != watchWaiting {
		w.mu.Unlock()
		return false
	}
	w.state, w.cause = watchCut, cause
	nc := w.nc
	w.mu.Unlock()
	if nc != nil {
		// The round trip sees the cut and closes nc: never reused, so a
		// deadline landing after that is harmless.
		nc.SetDeadline(aLongTimeAgo)
	}
	return true
}

// Err is the cause Cut gave, or nil.
func (w *Watch) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state == watchCut {
		return w.cause
	}
	return nil
}

// attach: the round trip uses nc from now on. It returns the cause when
// the round trip was cut already.
func (w *Watch) attach(nc net.Conn) error {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state == watchCut {
		return w.cause
	}
	w.nc = nc
	return nil
}

// detach: the round trip's connection failed; it returns the cause when
// the failure was the cut's.
func (w *Watch) detach() error {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.nc = nil
	if w.state == watchCut {
		return w.cause
	}
	return nil
}

// headIn ends the watch when the answer head is in; it returns the cause
// when the cut came first (the answer must then be dropped).
func (w *Watch) headIn() error {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.nc = nil
	if w.state == watchCut {
		return w.cause
	}
	w.state = watchHeadIn
	return nil
}
