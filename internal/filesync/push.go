package filesync

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
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
// reachable, and retries with backoff while it is not.
func (a *Agent) pushLoop(ctx context.Context) {
	b := backoff{min: a.cfg.RetryMin, max: a.cfg.RetryMax}
	down := false
	for {
		if a.queue.len() == 0 {
			select {
			case <-ctx.Done():
				return
			case <-a.kick:
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
// server refuses are dropped (logged) and the rest go on.
func (a *Agent) pushOnce(ctx context.Context) error {
	a.pushMu.Lock()
	defer a.pushMu.Unlock()
	batch := a.queue.head(a.cfg.PushBatch)
	if len(batch) == 0 {
		return nil
	}
	errs := make([]error, len(batch))
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
		})
	}
	wg.Wait()

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
		resp, err = a.client.Push(rctx, req)
		cancel()
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
