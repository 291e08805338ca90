package filesync

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sync"
	"sync/atomic"
	"time"
)

// fetchDir holds, in the stage, the blobs fetched ahead of the applier.
var fetchDir = path.Join(stageDir, "fetch")

// prefetcher reads the change stream ahead of the applier and fetches the
// blobs of the puts it reads, Prefetch at once and at most PrefetchBytes
// staged, into fetchDir. The applier still applies every change in log
// order, one at a time, under the agent's lock: when a put's blob is needed
// (download), it is taken from the stage if it was fetched, else fetched
// then as without a prefetcher. With a link pool (ADR 29) a file the pool
// can link is linked first: such a put is not fetched ahead when the pool
// has its entry, and a blob fetched ahead for one it lacks becomes the
// pool's entry (download's order). A prefetch that fails is not retried: the
// applier's own download is the retry, with the errors it has always had.
// Nothing a prefetch does is seen in the docroot until the applier renames
// a blob into place, so a delete or a rename after a put still wins, and a
// unit group is still staged and swapped whole.
//
// Across hosts a burst otherwise drains at one round trip (agent → files
// role → bucket) per file, while the writer pushes Uploaders at once
// (docs/adr/0012-files-on-s3.md, "Fetching ahead").
type prefetcher struct {
	a     *Agent
	slots chan struct{} // one per fetch in flight
	limit int64         // PrefetchBytes
	// get writes blob hash to the new file name of the docroot (the
	// agent's fetchBlob; a test's stand-in).
	get func(ctx context.Context, hash, name string) error

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // the reader and the fetches

	mu    sync.Mutex
	blobs map[string]*fetched // by hash
	order []seqBlob           // the puts read ahead, in log order
	bytes int64               // staged or being fetched, not yet taken or dropped
}

// fetched is one blob fetched ahead.
type fetched struct {
	hash string
	size int64
	refs int           // puts in order not yet passed by the applier
	done chan struct{} // closed when the fetch ended
	err  error         // the fetch's, once done
	name string        // the staged file, "" when none (failed, taken)
}

type seqBlob struct {
	seq  uint64
	hash string
}

// ahead is a change read ahead, or the error that ended the stream.
type ahead struct {
	c    Change
	more bool // more of the stream had arrived (ChangeStream.Buffered)
	err  error
}

// startPrefetch returns the agent's prefetcher for one stream, or nil when
// Prefetch is 0. Stop it when the stream ends.
func (a *Agent) startPrefetch(ctx context.Context) *prefetcher {
	if a.cfg.Prefetch == 0 {
		return nil
	}
	if err := a.root.MkdirAll(fetchDir, 0o700); err != nil {
		a.logger.Warn("cannot make the directory for blobs fetched ahead; fetching one at a time", "err", err)
		return nil
	}
	p := newPrefetcher(ctx, a, a.cfg.Prefetch, a.cfg.PrefetchBytes)
	a.pre.Store(p)
	return p
}

func newPrefetcher(ctx context.Context, a *Agent, n int, limit int64) *prefetcher {
	p := &prefetcher{a: a, slots: make(chan struct{}, n), limit: limit, blobs: make(map[string]*fetched)}
	p.get = func(ctx context.Context, hash, name string) error {
		return a.fetchBlob(ctx, a.root, hash, name, 0o600, time.Now())
	}
	p.ctx, p.cancel = context.WithCancel(ctx)
	return p
}

// read starts reading st ahead of the applier, at most lookahead changes,
// and returns the applier's next and buffered, which stand for st's Next
// and Buffered.
func (p *prefetcher) read(st interface {
	Next() (Change, error)
	Buffered() bool
}, lookahead int) (next func() (Change, error), buffered func() bool) {
	ch := make(chan ahead, lookahead)
	var holding atomic.Bool // the reader holds a change it has not sent yet
	p.wg.Go(func() {
		for {
			c, err := st.Next()
			holding.Store(true)
			if err == nil {
				p.schedule(c)
			}
			select {
			case ch <- ahead{c: c, more: err == nil && st.Buffered(), err: err}:
			case <-p.ctx.Done():
				return
			}
			holding.Store(false)
			if err != nil {
				return
			}
		}
	})
	var last ahead
	next = func() (Change, error) {
		select {
		case last = <-ch:
			return last.c, last.err
		case <-p.ctx.Done():
			return Change{}, fmt.Errorf("filesync: stream: %w", p.ctx.Err())
		}
	}
	buffered = func() bool { return len(ch) > 0 || last.more || holding.Load() }
	return next, buffered
}

// schedule starts fetching the blob of put c unless it need not or cannot
// be: c is not a put, this node made it (the content is here), the docroot
// already holds a file of its size and mtime (a replay; the applier checks
// its hash), the host's link pool already holds the file and c's mode lets
// the applier link it (ADR 29), or its blob is larger than the bytes left
// (the applier fetches it in turn). It waits for a free slot.
func (p *prefetcher) schedule(c Change) {
	if c.Op != OpPut || c.Origin == p.a.cfg.NodeID || p.a.rules.ignored(c.Path) {
		return
	}
	if fi, err := p.a.root.Lstat(c.Path); err == nil && fi.Mode().IsRegular() && fi.Size() == c.Size && fi.ModTime().UnixNano() == c.MTime {
		return
	}
	if p.a.pool != nil && linkable(c.Mode) && p.a.poolHas(poolName(c.Hash, c.Mode, time.Unix(0, c.MTime)), c.Mode, time.Unix(0, c.MTime)) {
		return // the applier links the pool's entry (linkpool.go)
	}
	p.mu.Lock()
	if e, ok := p.blobs[c.Hash]; ok {
		e.refs++
		p.order = append(p.order, seqBlob{c.Seq, c.Hash})
		p.mu.Unlock()
		return
	}
	if p.bytes+c.Size > p.limit {
		p.mu.Unlock()
		return
	}
	e := &fetched{hash: c.Hash, size: c.Size, refs: 1, done: make(chan struct{})}
	p.blobs[c.Hash] = e
	p.order = append(p.order, seqBlob{c.Seq, c.Hash})
	p.bytes += c.Size
	p.mu.Unlock()

	select {
	case p.slots <- struct{}{}:
	case <-p.ctx.Done():
		p.finish(e, p.ctx.Err())
		return
	}
	p.wg.Go(func() {
		err := p.get(p.ctx, e.hash, path.Join(fetchDir, e.hash))
		<-p.slots
		p.finish(e, err)
	})
}

// finish records the end of e's fetch; a blob no put needs any more (the
// applier passed them all) is removed at once.
func (p *prefetcher) finish(e *fetched, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e.err = err
	if err == nil {
		e.name = path.Join(fetchDir, e.hash)
	}
	close(e.done)
	if e.refs == 0 {
		p.dropLocked(e)
	}
}

// dropLocked removes e's staged file, if any, and frees its bytes.
func (p *prefetcher) dropLocked(e *fetched) {
	if e.name != "" {
		p.a.root.Remove(e.name)
		e.name = ""
	}
	p.bytes -= e.size
	e.size = 0
}

// take moves the blob hash, if it was fetched ahead, to the new file tmp
// of dst (the docroot, or the link pool) with mode and mtime, and reports
// whether it did; false leaves the fetch to the caller. It waits for a
// fetch in flight.
func (p *prefetcher) take(ctx context.Context, dst *os.Root, hash, tmp string, mode uint32, mtime time.Time) bool {
	p.mu.Lock()
	e, ok := p.blobs[hash]
	p.mu.Unlock()
	if !ok {
		return false
	}
	select {
	case <-e.done:
	case <-ctx.Done():
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if e.name == "" {
		return false // the fetch failed (the caller retries it), or taken
	}
	if e.refs > 1 {
		// A later put of the same content follows: leave it a copy.
		if copyBetween(p.a.root, e.name, dst, tmp, mode, mtime) != nil {
			return false
		}
		p.a.fetchedAhead.Add(1)
		return true
	}
	var err error
	if dst == p.a.root {
		err = dst.Rename(e.name, tmp)
	} else {
		err = renameBetween(p.a.root, e.name, dst, tmp)
	}
	if err != nil {
		return false
	}
	e.name = ""
	p.bytes -= e.size
	e.size = 0
	if err = dst.Chmod(tmp, fs.FileMode(mode)); err == nil {
		err = dst.Chtimes(tmp, mtime, mtime)
	}
	if err != nil {
		dst.Remove(tmp)
		return false
	}
	p.a.fetchedAhead.Add(1)
	return true
}

// passed tells that the applier is done with every change up to seq
// (applied, skipped or quarantined): the blobs only they needed go.
func (p *prefetcher) passed(seq uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := 0
	for ; i < len(p.order) && p.order[i].seq <= seq; i++ {
		e := p.blobs[p.order[i].hash]
		if e.refs--; e.refs > 0 {
			continue
		}
		delete(p.blobs, e.hash)
		select {
		case <-e.done:
			p.dropLocked(e)
		default: // finish drops it
		}
	}
	p.order = p.order[i:]
}

// stop ends the reader and the fetches, waits for them, and removes what
// was fetched and not taken. cut must end a reader waiting in Next.
func (p *prefetcher) stop(cut func()) {
	p.cancel()
	cut()
	p.wg.Wait()
	p.a.pre.CompareAndSwap(p, nil)
	if err := p.a.root.RemoveAll(fetchDir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		p.a.logger.Warn("cannot remove the blobs fetched ahead; they are removed when the agent starts", "err", err)
	}
}

// takeFetched is prefetcher.take into the docroot for the agent's current
// prefetcher, if any.
func (a *Agent) takeFetched(ctx context.Context, hash, tmp string, mode uint32, mtime time.Time) bool {
	return a.takeFetchedInto(ctx, a.root, hash, tmp, mode, mtime)
}

// takeFetchedInto is prefetcher.take into dst for the agent's current
// prefetcher, if any.
func (a *Agent) takeFetchedInto(ctx context.Context, dst *os.Root, hash, tmp string, mode uint32, mtime time.Time) bool {
	p := a.pre.Load()
	return p != nil && p.take(ctx, dst, hash, tmp, mode, mtime)
}

// passed is prefetcher.passed for the agent's current prefetcher, if any.
func (a *Agent) passed(seq uint64) {
	if p := a.pre.Load(); p != nil {
		p.passed(seq)
	}
}
