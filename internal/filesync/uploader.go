package filesync

import (
	"context"
	"errors"
	"sync"
	"time"
)

// uploader uploads the blobs of queued puts ahead of their push (the
// pusher's pipeline, pushLoop): in queue order, at most Uploaders at once,
// each as soon as its change is queued, also while a push commits. It
// holds each upload's outcome until the push that carries the change
// (finished, forget). Owned by pushLoop: wait stops it.
type uploader struct {
	a     *Agent
	ctx   context.Context
	ready chan struct{} // one slot: an upload finished
	wg    sync.WaitGroup

	mu      sync.Mutex
	m       map[uint64]*upload // by queue ID
	todo    []*upload          // not started yet, in queue order
	active  int
	stopped bool
}

// upload is the upload of one queued put's blob.
type upload struct {
	c         Change
	done      bool
	forgotten bool // left the uploader before it started
	err       error
	at        time.Time // when it finished
}

func newUploader(ctx context.Context, a *Agent) *uploader {
	u := &uploader{a: a, ctx: ctx, ready: make(chan struct{}, 1), m: make(map[uint64]*upload)}
	a.up.Store(u)
	return u
}

// wait stops starting uploads and waits for those running.
func (u *uploader) wait() {
	u.a.up.Store(nil)
	u.mu.Lock()
	u.stopped = true
	u.mu.Unlock()
	u.wg.Wait()
}

// add starts (or lines up) the uploads of the puts of qs, the head of the
// queue, that it does not hold yet.
func (u *uploader) add(qs []queued) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(qs) > 0 {
		for id, up := range u.m {
			if id < qs[0].ID && up.done { // acknowledged by a push elsewhere (Bootstrap)
				delete(u.m, id)
			}
		}
	}
	for _, q := range qs {
		if q.Change.Op != OpPut {
			continue
		}
		if _, ok := u.m[q.ID]; ok {
			continue
		}
		up := &upload{c: q.Change}
		u.m[q.ID] = up
		u.todo = append(u.todo, up)
	}
	u.startLocked()
}

func (u *uploader) startLocked() {
	for !u.stopped && u.ctx.Err() == nil && u.active < u.a.cfg.Uploaders && len(u.todo) > 0 {
		up := u.todo[0]
		u.todo = u.todo[1:]
		if up.forgotten {
			continue
		}
		u.active++
		u.wg.Go(func() {
			err := u.a.upload(u.ctx, up.c)
			u.mu.Lock()
			up.done, up.err, up.at = true, err, time.Now()
			u.active--
			u.startLocked()
			u.mu.Unlock()
			select {
			case u.ready <- struct{}{}:
			default:
			}
		})
	}
}

// finished returns the uploads' errors and ends for the longest head of
// batch (the head of the queue) that is ready to push: every put's upload
// finished, and none after the first failed for a reason a retry may
// cure (that one waits to be the head: the push returns its error). A
// unit is ready only whole. Empty when the head is not ready.
func (u *uploader) finished(batch []queued) (errs []error, at []time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for i, q := range batch {
		if q.Change.Op == OpPut {
			up, ok := u.m[q.ID]
			if !ok || !up.done || i > 0 && retryable(up.err) {
				break
			}
		}
		n++
	}
	if len(batch) > 0 && batch[0].Unit != "" && n < len(batch) {
		return nil, nil
	}
	errs, at = make([]error, n), make([]time.Time, n)
	for i, q := range batch[:n] {
		if up, ok := u.m[q.ID]; ok && q.Change.Op == OpPut {
			errs[i], at[i] = up.err, up.at
		}
	}
	return errs, at
}

// retryable reports whether an upload's error leaves the change queued to
// be tried again (pushOnce's "default" case), rather than dropped.
func retryable(err error) bool {
	var rej *RejectError
	return err != nil && !errors.Is(err, errStale) && !errors.As(err, &rej)
}

// forget drops the uploads of qs: pushed, dropped, or to be uploaded
// again after a failed push.
func (u *uploader) forget(qs []queued) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, q := range qs {
		if up, ok := u.m[q.ID]; ok {
			up.forgotten = true
			delete(u.m, q.ID)
		}
	}
}
