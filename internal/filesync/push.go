package filesync

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// errStale means a queued put no longer matches the file on disk (changed
// or removed since): the watcher has queued the newer state, so the stale
// change is dropped.
var errStale = errors.New("the file changed after it was queued")

// smallBlob is the size up to which a blob is read into memory and checked
// before upload; larger ones are streamed, after a HEAD that skips the
// upload when the server has them.
const smallBlob = 1 << 20

// pushLoop sends queued local changes, in order, while the server is
// reachable, and retries with backoff while it is not. Each push uploads
// its batch's blobs, then commits (pushOnce). A pipelined pusher (blobs
// uploaded ahead while the push before them commits) was tried and
// measured worse across hosts: ADR 12, docs/benchmarks.md ("The writer's
// side of a burst").
func (a *Agent) pushLoop(ctx context.Context) {
	b := backoff{min: a.cfg.RetryMin, max: a.cfg.RetryMax}
	down := false
	for {
		if a.queue.len() == 0 {
			a.pushMu.Lock()
			burst := a.pstats.pending()
			a.pushMu.Unlock()
			quiet := time.NewTimer(burstQuiet)
			if !burst {
				quiet.Stop()
			}
			select {
			case <-ctx.Done():
				quiet.Stop()
				return
			case <-a.kick:
				quiet.Stop()
			case <-quiet.C:
				a.pushMu.Lock()
				a.pstats.idle(a.logger)
				a.pushMu.Unlock()
			}
			continue
		}
		err := a.pushOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			if !down {
				a.logger.Warn("files unreachable; local changes stay queued", "queued", a.queue.len(), "err", err)
				down = true
			}
			sleepCtx(ctx, b.next())
			continue
		}
		if down {
			a.logger.Info("files reachable again; sending queued changes", "queued", a.queue.len())
			down = false
		}
		b.reset()
	}
}

// pushOnce uploads the blobs of the head of the queue and commits it. It
// returns an error only when the batch must be retried later; changes the
// server refuses are dropped (logged) and the rest go on. Bootstrap pushes
// with it too.
func (a *Agent) pushOnce(ctx context.Context) error {
	a.pushMu.Lock()
	defer a.pushMu.Unlock()
	batch := a.queue.head(a.cfg.PushBatch)
	if len(batch) == 0 {
		return nil
	}
	errs := make([]error, len(batch))
	uploaded := make([]time.Time, len(batch))
	sem := make(chan struct{}, a.cfg.Uploaders)
	var wg sync.WaitGroup
	for i, q := range batch {
		if q.Change.Op != OpPut {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = a.upload(ctx, q.Change)
			uploaded[i] = time.Now()
		})
	}
	wg.Wait()
	return a.commit(ctx, batch, errs, uploaded)
}

// commit pushes batch, the head of the queue, whose blobs were uploaded
// (errs and uploaded: each put's upload's error and end). Called under
// pushMu.
func (a *Agent) commit(ctx context.Context, batch []queued, errs []error, uploaded []time.Time) error {
	stamps := func(qs []queued) []pushStamp {
		out := make([]pushStamp, len(qs))
		for j, q := range qs {
			st := pushStamp{queued: a.queue.queuedAt(q.ID)}
			if q.Change.MTime > 0 {
				st.written = time.Unix(0, q.Change.MTime)
			}
			if i := slices.IndexFunc(batch, func(b queued) bool { return b.ID == q.ID }); i >= 0 && q.Change.Op == OpPut && errs[i] == nil {
				st.uploaded = uploaded[i]
			}
			out[j] = st
		}
		return out
	}
	if unit := batch[0].Unit; unit != "" {
		return a.pushUnit(ctx, unit, batch, errs, stamps)
	}

	var send []queued
	var drop []queued
	for i, q := range batch {
		var rej *RejectError
		switch err := errs[i]; {
		case err == nil:
			send = append(send, q)
		case errors.Is(err, errStale):
			drop = append(drop, q)
		case errors.As(err, &rej):
			a.logger.Warn("local change refused by files; not synced", "err", err)
			drop = append(drop, q)
		default:
			return err
		}
	}
	var resp PushResponse
	if len(send) > 0 {
		req := PushRequest{Origin: a.cfg.NodeID}
		for _, q := range send {
			req.Changes = append(req.Changes, q.Change)
		}
		rctx, cancel := context.WithTimeout(ctx, a.cfg.RequestTimeout)
		var err error
		t0 := time.Now()
		resp, err = a.client.Push(rctx, req)
		cancel()
		if err == nil {
			a.pstats.pushed(stamps(send), time.Since(t0), time.Now())
		}
		var rej *RejectError
		if errors.As(err, &rej) && rej.Rule == RuleBlob {
			// A blob went missing between upload and commit (collected
			// as unreferenced): the next attempt uploads it again.
			return err
		}
		if errors.As(err, &rej) {
			// The push was refused whole; drop the offending change and
			// let the loop send the rest again.
			a.logger.Warn("local change refused by files; not synced", "err", err)
			bad := send[0]
			for _, q := range send {
				if q.Change.Path == rej.Path {
					bad = q
					break
				}
			}
			return a.finish(append(drop, bad), nil, nil)
		}
		if err != nil {
			return err
		}
	}
	return a.finish(drop, send, resp.Results)
}

// finish takes dropped and committed changes off the queue; a dropped
// change or a no-op will not come back in the stream, so it no longer
// holds its path.
func (a *Agent) finish(drop, sent []queued, results []PushResult) error {
	a.mu.Lock()
	release := func(p string) {
		if a.pending[p]--; a.pending[p] <= 0 {
			delete(a.pending, p)
		}
	}
	ids := make([]uint64, 0, len(drop)+len(sent))
	for _, q := range drop {
		release(q.Change.Path)
		ids = append(ids, q.ID)
	}
	for i, q := range sent {
		if results[i].Noop {
			release(q.Change.Path)
		}
		ids = append(ids, q.ID)
	}
	a.mu.Unlock()
	if err := a.queue.ack(ids...); err != nil {
		a.logger.Warn("cannot record pushed changes; they may be pushed again after a restart", "err", err)
	}
	return nil
}

// upload sends the blob of a queued put, unless the server has it.
func (a *Agent) upload(ctx context.Context, c Change) error {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.RequestTimeout)
	defer cancel()
	if c.Size <= smallBlob {
		data, err := a.root.ReadFile(c.Path)
		if err != nil || hashBytes(data) != c.Hash {
			return errStale
		}
		return a.client.PutBlob(ctx, c.Hash, bytes.NewReader(data), int64(len(data)))
	}
	if ok, err := a.client.HasBlob(ctx, c.Hash); err != nil {
		return err
	} else if ok {
		return nil
	}
	f, err := a.root.Open(c.Path)
	if err != nil {
		return errStale
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() || fi.Size() != c.Size {
		return errStale
	}
	err = a.client.PutBlob(ctx, c.Hash, f, c.Size)
	var rej *RejectError
	if errors.As(err, &rej) && rej.Rule == RuleHash {
		return errStale
	}
	if err != nil {
		return fmt.Errorf("upload %s: %w", c.Path, err)
	}
	return nil
}

// pushUnit commits a unit whose blobs were uploaded (errs: each put's
// upload). A unit is pushed whole or not at all: when a file changed after
// it was queued (or its blob is refused) the unit is queued again from the
// disk as it is now; when the files role refuses the unit, its changes are
// queued one by one, so that what can be synced is.
func (a *Agent) pushUnit(ctx context.Context, unit string, batch []queued, errs []error, stamps func([]queued) []pushStamp) error {
	for _, err := range errs {
		var rej *RejectError
		switch {
		case err == nil:
		case errors.Is(err, errStale) || errors.As(err, &rej):
			a.logger.Info("a file of a unit changed after it was queued; queueing the unit again", "unit", unit, "err", err)
			return a.requeueUnit(unit, batch, true)
		default:
			return err
		}
	}
	req := PushRequest{Origin: a.cfg.NodeID, Unit: unit}
	for _, q := range batch {
		req.Changes = append(req.Changes, q.Change)
	}
	rctx, cancel := context.WithTimeout(ctx, a.cfg.RequestTimeout)
	t0 := time.Now()
	resp, err := a.client.Push(rctx, req)
	cancel()
	if err == nil {
		a.pstats.pushed(stamps(batch), time.Since(t0), time.Now())
	}
	var rej *RejectError
	switch {
	case errors.As(err, &rej) && rej.Rule == RuleBlob:
		return err
	case errors.As(err, &rej):
		a.logger.Warn("unit refused by files; pushing its changes one by one", "unit", unit, "err", err)
		return a.requeueUnit(unit, batch, false)
	case err != nil:
		return err
	}
	a.logger.Info("unit pushed", "unit", unit, "changes", len(batch), "seq", resp.Seq)
	return a.finish(nil, batch, resp.Results)
}

// requeueUnit takes a unit's changes off the queue and queues, in their
// place at the end, the unit as the disk holds it now (again) or its
// changes as ordinary ones (!again). The pending counts stay as they are
// for the paths queued again.
func (a *Agent) requeueUnit(unit string, batch []queued, again bool) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	ids := make([]uint64, len(batch))
	for i, q := range batch {
		ids[i] = q.ID
		if a.pending[q.Change.Path]--; a.pending[q.Change.Path] <= 0 {
			delete(a.pending, q.Change.Path)
		}
	}
	if err := a.queue.ack(ids...); err != nil {
		a.logger.Warn("cannot record a unit's removal from the queue", "unit", unit, "err", err)
	}
	if again {
		a.enqueueUnitLocked(unit)
		return nil
	}
	cs := make([]Change, len(batch))
	for i, q := range batch {
		cs[i] = q.Change
	}
	a.enqueueLocked(cs)
	return nil
}
