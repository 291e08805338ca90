package pagecache

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// errStillFailing is the Err of a STALE copy served at once because the
// last fetch for it failed (a background refresh tries again).
var errStillFailing = fmt.Errorf("%w: the last fetch failed; a background refresh tries again", ErrOriginFailed)

// Fetch asks the origin for what a fill needs. It must
//   - send GET, even when the client sent HEAD: the cache stores the body
//     and answers HEAD itself;
//   - call cond.Apply on the outbound request's header: it drops the
//     client's validators and (unless the fetch serves this request alone)
//     its Range, and sets the stored copy's validators, so the origin
//     answers 200 with a whole body, or 304 to a revalidation;
//   - use ctx rather than the client request's context: a background
//     refresh runs after the client request has ended;
//   - return the header as clients may see it (minus the tag header, which
//     the cache strips): remove node-internal headers before returning.
type Fetch func(ctx context.Context, cond Conditional) (*Response, error)

// maxFillAttempts bounds how often a request queues behind other requests'
// fetches (whose client went away, or whose variant was not its own)
// before it fetches on its own.
const maxFillAttempts = 3

// maxHitForPass bounds the hit-for-pass marks kept per shard.
const maxHitForPass = 4096

// fillInput is what storing a fetched response needs to know about the
// request that caused it.
type fillInput struct {
	d      Decision
	hdr    http.Header // the request's header, for the Vary values
	stale  *object     // the stored copy being replaced, if any
	fkey   string      // flight key: URL key and variant
	purges uint64      // c.purges when the fetch started
	// requested is when the fetch was sent (request_time, RFC 9111 §4.2.3).
	requested time.Time
	// unconditional: the fetch sent no validators, so a 304 is no
	// revalidation.
	unconditional bool
}

type outcomeKind uint8

const (
	outRetry      outcomeKind = iota // the fetching request went away: waiters try again
	outStored                        // obj was stored (or revalidated): shared with waiters
	outTransient                     // obj was not stored (a 5xx, or too big for the budget): shared
	outPass                          // not cacheable: pass goes to the fetching request only
	outStale                         // the origin failed: obj stands in
	outFailed                        // the origin failed, nothing stands in
	outUnselected                    // a 304 for another representation: fetch again (fetchComplete only)
)

type outcome struct {
	kind outcomeKind
	obj  *object
	pass *Response
	err  error
}

// flight is one fetch that concurrent misses of a key wait for.
type flight struct {
	done chan struct{}
	out  outcome // written before done is closed; out.pass is always nil
}

// Fill answers a request that ServeHit could not: concurrent fills of one
// key (URL and variant) are coalesced into one fetch, and the others wait
// for it (each bounded by its ctx) and are served from it when it was
// stored. When it was not cacheable, each waiter fetches on its own and
// the key is marked hit-for-pass for Config.HitForPass: requests no longer
// queue on it, and the first cacheable response clears the mark.
//
// A stale entry within its stale-while-revalidate window (or a soft-purged
// one within SoftPurgeGrace) is served at once as a HIT while exactly one
// background refresh runs. A stale entry past that window is revalidated
// with its validators; when the fetch fails (error or 5xx) an entry within
// its stale-if-error window is served instead, as STALE, and from then on
// at once, as STALE, while one background refresh at a time tries again
// (no request waits on a fetch to a failing origin twice). A 5xx with nothing
// to stand in is shared by the waiters of that fetch rather than retried
// by each of them. A bypass decision is fetched and relayed, never stored.
//
// Fill never writes to the client: always pass the result to Serve, which
// also closes the origin body a passed response still holds.
func (c *Cache) Fill(ctx context.Context, r *http.Request, d Decision, fetch Fetch) *Result {
	if d.Bypass != "" {
		// Counted by Classify; relayed as MISS all the same.
		resp, err := fetch(ctx, Conditional{})
		if err != nil {
			return &Result{xc: xMiss, Err: fmt.Errorf("%w: %w", ErrOriginFailed, err)}
		}
		return &Result{pass: resp, xc: xMiss}
	}
	var vbuf [256]byte
	sh := c.shardOf(d.hash)
	for attempt := 0; ; attempt++ {
		// Lookup and flight check under one lock: a fill that completes in
		// between cannot make this request start a second fetch.
		now := c.nowNano()
		sh.mu.Lock()
		o, spec := sh.find(r.Header, &d)
		var stale *object
		if o != nil {
			switch c.state(o, now) {
			case stFresh:
				sh.mu.Unlock()
				return c.hit(&d, o)
			case stRevalidate:
				sh.mu.Unlock()
				c.refresh(r, d, o, fetch)
				return c.hit(&d, o)
			case stStale:
				if o.standingIn(now) {
					// The origin failed the last fetch for o (under overload:
					// refused by the edge's admission queue after waiting in
					// it). Every request coalescing behind the next fetch
					// would wait as long again, for the same STALE copy:
					// serve it now, and let one refresh try in the background.
					sh.mu.Unlock()
					c.refresh(r, d, o, fetch)
					return c.result(outcome{kind: outStale, obj: o, err: errStillFailing})
				}
				stale = o
			}
		}
		if spec == nil {
			spec = noVary
		}
		variant := appendVariant(vbuf[:0], r.Header, d.tls, spec)
		in := &fillInput{d: d, hdr: r.Header, stale: stale, fkey: d.key + "\x00" + string(variant), purges: c.purges.Load()}
		until, hfp := sh.hitForPass[in.fkey]
		if hfp && now >= until {
			delete(sh.hitForPass, in.fkey)
			hfp = false
		}
		if hfp || attempt == maxFillAttempts {
			sh.mu.Unlock()
			return c.fetchOwn(ctx, in, fetch)
		}
		fl := sh.flights[in.fkey]
		if fl == nil {
			fl = &flight{done: make(chan struct{})}
			sh.flights[in.fkey] = fl
			sh.mu.Unlock()
			return c.lead(ctx, in, fl, fetch)
		}
		sh.mu.Unlock()

		select {
		case <-fl.done:
		case <-ctx.Done():
			return c.result(outcome{kind: outFailed, err: fmt.Errorf("%w: waiting for a fill: %w", ErrOriginFailed, ctx.Err())})
		}
		out := fl.out
		switch out.kind {
		case outStored:
			if out.obj.variant == string(appendVariant(vbuf[:0], r.Header, d.tls, out.obj.spec)) {
				return c.hit(&d, out.obj)
			}
			// Another variant than ours (the URL's Vary was unknown): our
			// next attempt coalesces with requests of our variant.
		case outPass:
			return c.fetchOwn(ctx, in, fetch)
		case outRetry:
		default:
			return c.result(out)
		}
	}
}

// hit is a HIT result.
func (c *Cache) hit(d *Decision, o *object) *Result {
	c.shardOf(d.hash).hits.Add(1)
	return &Result{obj: o, xc: xHit, age: true}
}

// result turns an outcome into what Serve writes, and counts it.
func (c *Cache) result(out outcome) *Result {
	switch out.kind {
	case outStale:
		c.stale.Add(1)
		return &Result{obj: out.obj, xc: xStale, age: true, Err: out.err}
	case outStored, outTransient:
		c.misses.Add(1)
		return &Result{obj: out.obj, xc: xMiss}
	case outPass:
		c.misses.Add(1)
		return &Result{pass: out.pass, xc: xMiss}
	}
	c.misses.Add(1)
	return &Result{xc: xMiss, Err: out.err}
}

// lead fetches for a flight and publishes the outcome to its waiters,
// even if fetch panics (http.ErrAbortHandler from a proxy, say).
func (c *Cache) lead(ctx context.Context, in *fillInput, fl *flight, fetch Fetch) *Result {
	out := outcome{kind: outRetry, err: fmt.Errorf("%w: the fill was abandoned", ErrOriginFailed)}
	defer func() { c.finish(in, fl, out) }()
	out = c.fetchComplete(ctx, in, fetch, in.stale.conditional())
	return c.result(out)
}

// fetchOwn fetches for this request alone (hit-for-pass, or a waiter whose
// flight was not cacheable), storing the response if it turns out
// cacheable.
func (c *Cache) fetchOwn(ctx context.Context, in *fillInput, fetch Fetch) *Result {
	cond := in.stale.conditional()
	cond.keepRange = true // likely not stored: let the origin answer a Range itself
	out := c.fetchComplete(ctx, in, fetch, cond)
	if out.kind == outStored {
		sh := c.shardOf(in.d.hash)
		sh.mu.Lock()
		delete(sh.hitForPass, in.fkey)
		sh.mu.Unlock()
	}
	return c.result(out)
}

// finish ends a flight: later fills start their own, and hit-for-pass is
// set or cleared, before the waiters wake up.
func (c *Cache) finish(in *fillInput, fl *flight, out outcome) {
	now := c.nowNano()
	sh := c.shardOf(in.d.hash)
	sh.mu.Lock()
	if sh.flights[in.fkey] == fl {
		delete(sh.flights, in.fkey)
	}
	switch out.kind {
	case outPass:
		if c.cfg.HitForPass > 0 {
			if len(sh.hitForPass) >= maxHitForPass {
				for k, until := range sh.hitForPass {
					if until <= now {
						delete(sh.hitForPass, k)
					}
				}
			}
			if len(sh.hitForPass) < maxHitForPass {
				sh.hitForPass[in.fkey] = now + int64(c.cfg.HitForPass)
			}
		}
	case outStored:
		delete(sh.hitForPass, in.fkey)
	}
	sh.mu.Unlock()
	out.pass = nil
	fl.out = out
	close(fl.done)
}

// refresh starts the one background refresh of a stale-while-revalidate
// (or soft-purged) object, unless a fill of its key is already running.
func (c *Cache) refresh(r *http.Request, d Decision, o *object, fetch Fetch) {
	if !c.startBackground() {
		return // closed
	}
	fkey := d.key + "\x00" + o.variant
	sh := c.shardOf(d.hash)
	sh.mu.Lock()
	if sh.flights[fkey] != nil {
		sh.mu.Unlock()
		c.bg.Done()
		return
	}
	fl := &flight{done: make(chan struct{})}
	sh.flights[fkey] = fl
	sh.mu.Unlock()

	// The request ends before the refresh: keep its header and context
	// values, not its cancellation.
	in := &fillInput{d: d, hdr: r.Header.Clone(), stale: o, fkey: fkey, purges: c.purges.Load()}
	base := context.WithoutCancel(r.Context())
	go func() {
		defer c.bg.Done()
		ctx, cancel := context.WithTimeout(base, c.cfg.FetchTimeout)
		defer cancel()
		stop := context.AfterFunc(c.life, cancel)
		defer stop()
		out := outcome{kind: outRetry}
		defer func() {
			out.pass.close()
			c.finish(in, fl, out)
		}()
		c.refreshes.Add(1)
		out = c.fetchComplete(ctx, in, fetch, o.conditional())
	}()
}

// fetchComplete fetches with cond and completes. A 304 that selects no
// stored response (RFC 9111 §4.3.4: its validator is not the stored
// copy's) cannot freshen it: one unconditional fetch follows.
func (c *Cache) fetchComplete(ctx context.Context, in *fillInput, fetch Fetch, cond Conditional) outcome {
	in.requested = c.now()
	resp, err := fetch(ctx, cond)
	out := c.complete(ctx, in, resp, err)
	if out.kind == outUnselected {
		in.unconditional = true
		in.requested = c.now()
		resp, err = fetch(ctx, Conditional{keepRange: cond.keepRange})
		out = c.complete(ctx, in, resp, err)
	}
	return out
}

// complete turns a fetch's answer into an outcome: stored, revalidated,
// passed, shared 5xx, or a stale copy standing in for a failure.
func (c *Cache) complete(ctx context.Context, in *fillInput, resp *Response, err error) outcome {
	now := c.now()
	if err == nil && resp == nil {
		err = fmt.Errorf("fetch returned no response")
	}
	if err != nil {
		resp.close() // a Fetch that returned both
		if ctx.Err() != nil {
			return outcome{kind: outRetry, err: fmt.Errorf("%w: %w", ErrOriginFailed, err)}
		}
		return c.standIn(in.stale, now, fmt.Errorf("%w: %w", ErrOriginFailed, err))
	}
	h := canonical(resp.Header)
	if resp.Status >= 500 && in.stale.canStandIn(now.UnixNano()) {
		resp.close()
		return c.standIn(in.stale, now, fmt.Errorf("%w: status %d", ErrOriginFailed, resp.Status))
	}
	if resp.Status == http.StatusNotModified && in.stale != nil && !in.unconditional && in.stale.conditional() != (Conditional{}) {
		resp.close()
		if !in.stale.selectedBy(h) {
			return outcome{kind: outUnselected}
		}
		return c.revalidated(in, h, now)
	}
	tags := c.tagsOf(h)
	p, reason := c.planFor(resp.Status, h, arrival{static: in.d.static, tagged: len(tags) > 0, requested: in.requested, received: now})
	if reason != "" {
		if resp.Status >= 500 {
			return c.transient(ctx, in, resp, h, now)
		}
		if in.stale != nil && resp.Status != http.StatusPartialContent {
			c.remove(in.stale) // the URL stopped being cacheable
		}
		return outcome{kind: outPass, pass: resp}
	}
	body, pass, err := c.readBody(resp, h)
	if err != nil {
		if ctx.Err() != nil {
			return outcome{kind: outRetry, err: fmt.Errorf("%w: %w", ErrOriginFailed, err)}
		}
		return c.standIn(in.stale, now, fmt.Errorf("%w: reading body: %w", ErrOriginFailed, err))
	}
	if pass != nil {
		if in.stale != nil {
			c.remove(in.stale)
		}
		return outcome{kind: outPass, pass: pass}
	}
	o := c.newObject(in, resp.Status, c.storedHeader(h), tags, body, nil, p, now)
	return c.store(in, o, now)
}

// store inserts o; a purge that ran during the fetch may have been meant
// for what the origin rendered before it, so o is then stored soft-purged
// (served once more while a refresh runs) rather than fresh.
func (c *Cache) store(in *fillInput, o *object, now time.Time) outcome {
	if c.purges.Load() != in.purges {
		o.purgedAt.Store(now.UnixNano())
	}
	if !c.insert(o) {
		return outcome{kind: outTransient, obj: o}
	}
	return outcome{kind: outStored, obj: o}
}

// selectedBy reports whether a 304 with header h304 selects o for update
// (RFC 9111 §4.3.4): a strong ETag must equal o's, a weak one match it
// weakly; without an ETag, a Last-Modified must equal o's. A 304 with no
// validator at all answers the validators the cache sent, and selects o
// (the §4.3.4 text asks that the stored response lack a validator too; the
// cache only asks with validators, so it would never select one).
func (o *object) selectedBy(h304 http.Header) bool {
	if et := first(h304[hETag]); et != "" {
		if strings.HasPrefix(et, "W/") {
			return o.etag != "" && strings.TrimPrefix(o.etag, "W/") == et[2:]
		}
		return et == o.etag
	}
	if lm := first(h304[hLastModified]); lm != "" {
		return lm == o.lastMod
	}
	return true
}

// revalidated freshens the stale copy with the header of the origin's 304
// (RFC 9111 §4.3.4: "use other header fields provided in the 304 (Not
// Modified) response to replace all instances of the corresponding header
// fields in the stored response", except those §3.2 keeps: Content-Length,
// the Content-Encoding the stored bodies depend on, and what is never
// stored) and stores it again, bodies unchanged.
func (c *Cache) revalidated(in *fillInput, h304 http.Header, now time.Time) outcome {
	st := in.stale
	merged := st.header.Clone()
	for k, v := range h304 {
		switch k {
		case hContentLength, hContentEncoding:
			continue
		}
		merged[k] = v
	}
	if len(h304["Date"]) == 0 {
		// The stored Date is the first response's: with it the refreshed
		// copy would look as old as the first one (RFC 9111 §4.2.3).
		delete(merged, "Date")
	}
	tags := st.tags
	if c.tagHeader != "" && len(h304[c.tagHeader]) > 0 {
		tags = c.tagsOf(h304)
	}
	p, reason := c.planFor(st.status, merged, arrival{static: in.d.static, tagged: len(tags) > 0, requested: in.requested, received: now})
	if reason != "" {
		c.remove(st)
		return outcome{kind: outTransient, obj: st}
	}
	o := c.newObject(in, st.status, c.storedHeader(merged), tags, st.id.body, st.enc, p, now)
	return c.store(in, o, now)
}

// transient reads a 5xx that nothing can stand in for, to share it with
// the fetch's waiters instead of having each of them ask a failing origin.
func (c *Cache) transient(ctx context.Context, in *fillInput, resp *Response, h http.Header, now time.Time) outcome {
	body, pass, err := c.readBody(resp, h)
	switch {
	case err != nil && ctx.Err() != nil:
		return outcome{kind: outRetry, err: fmt.Errorf("%w: %w", ErrOriginFailed, err)}
	case err != nil:
		return outcome{kind: outFailed, err: fmt.Errorf("%w: reading body: %w", ErrOriginFailed, err)}
	case pass != nil:
		return outcome{kind: outPass, pass: pass}
	}
	return outcome{kind: outTransient, obj: c.newObject(in, resp.Status, c.storedHeader(h), nil, body, nil, plan{noTransform: true}, now)}
}

// standIn serves the stale copy for a failed origin, if its stale-if-error
// window allows, and marks it standing in (object.failedAt): later requests
// get it at once instead of waiting on another fetch.
func (c *Cache) standIn(stale *object, now time.Time, err error) outcome {
	if stale.canStandIn(now.UnixNano()) {
		stale.failedAt.Store(now.UnixNano())
		return outcome{kind: outStale, obj: stale, err: err}
	}
	return outcome{kind: outFailed, err: err}
}

func (c *Cache) tagsOf(h http.Header) []string {
	if c.tagHeader == "" {
		return nil
	}
	return parseTags(h[c.tagHeader])
}

// readBody reads a body of at most MaxObjectBytes and closes it. A larger
// body comes back as a pass response that replays what was read.
func (c *Cache) readBody(resp *Response, h http.Header) ([]byte, *Response, error) {
	if resp.Body == nil || !bodyAllowed(resp.Status) {
		resp.close()
		return nil, nil, nil
	}
	limit := c.cfg.MaxObjectBytes
	size := int64(-1)
	if cl, err := strconv.ParseInt(first(h[hContentLength]), 10, 64); err == nil && cl >= 0 {
		if cl > limit {
			return nil, resp, nil // pass without buffering
		}
		size = cl
	}
	var buf bytes.Buffer
	if size >= 0 {
		buf.Grow(int(size) + 1)
	}
	n, err := buf.ReadFrom(io.LimitReader(resp.Body, limit+1))
	if err == nil && size >= 0 && n != size {
		// A truncated body, or a HEAD response to a fill that should have
		// sent GET: never store it.
		err = fmt.Errorf("read %d bytes, Content-Length says %d", n, size)
	}
	if err != nil {
		resp.close()
		return nil, nil, err
	}
	if n > limit {
		pass := *resp
		pass.Body = &replayBody{Reader: io.MultiReader(&buf, resp.Body), Closer: resp.Body}
		return nil, &pass, nil
	}
	resp.close()
	return bytes.Clone(buf.Bytes()), nil, nil
}

// replayBody is the start of a body already read, then the rest.
type replayBody struct {
	io.Reader
	io.Closer
}

// canonical returns h with canonical keys (a copy only when needed).
func canonical(h http.Header) http.Header {
	for k := range h {
		if http.CanonicalHeaderKey(k) != k {
			out := make(http.Header, len(h))
			for k, v := range h {
				ck := http.CanonicalHeaderKey(k)
				out[ck] = append(out[ck], v...)
			}
			return out
		}
	}
	if h == nil {
		return http.Header{}
	}
	return h
}
