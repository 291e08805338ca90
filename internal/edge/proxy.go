package edge

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/balancer"
	"github.com/scalepress/scalepress/internal/pagecache"
	"github.com/scalepress/scalepress/internal/upstream"
)

var errNodeError = errors.New("node answered with its own error")

// hopHeaders are connection-level headers never forwarded (RFC 9110 §7.6.1),
// in canonical form (removeHop deletes them from the map directly).
var hopHeaders = []string{
	"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// Header values the proxy sets on every request, shared: header maps
// only ever replace or drop a value, never write into one.
var (
	xCacheBypass = []string{pagecache.XCacheBypass}
	protoHTTP    = []string{"http"}
	protoHTTPS   = []string{"https"}
)

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// forward sends r to a node picked by the balancer, retrying an idempotent
// request on another node when the first failed before PHP answered, and
// writes the answer to w with X-Cache: BYPASS.
func (e *Edge) forward(w http.ResponseWriter, r *http.Request) { e.forwardThen(w, r, nil) }

// forwardThen is forward with a look at the node's answer before it is
// passed on: after (when not nil) may replace its body with one that reads
// the same.
func (e *Edge) forwardThen(w http.ResponseWriter, r *http.Request, after func(*http.Response)) {
	e.forwardAs(w, r, e.clientFor(r), after)
}

// forwardAs is forwardThen for the client c (clientAddr's view of r).
func (e *Edge) forwardAs(w http.ResponseWriter, r *http.Request, c reqClient, after func(*http.Response)) {
	e.top.observe(r.Method, r.URL.Path) // what reaches PHP: the controller warms new nodes with it
	var out *http.Request
	if after == nil {
		// Nothing keeps the request sent to the node once this returns
		// (the response's Request is out, and the response goes with it):
		// its request, URL and header map are reused.
		o := outRequests.Get().(*pooledOut)
		defer o.put()
		out = e.fillOutRequest(o.req, &o.url, o.header, r, c)
	} else {
		out = e.outRequestAs(r, c) // after may keep the response
	}
	resp, node, err := e.roundTripOut(r.Context(), c.key(), r.Method, out, e.interim(w))
	if err != nil {
		if e.refuseBody(w, r) {
			return
		}
		e.writeError(w, r, err)
		return
	}
	if node != nil {
		defer node.Done(balancer.OK)
	}
	if after != nil {
		after(resp)
	}
	resp = e.fromFiles(r.Context(), r, resp, true)
	defer resp.Body.Close()
	h := w.Header()
	for k, vv := range resp.Header {
		h[k] = vv
	}
	removeHop(h, resp.Header)
	// The names are canonical (as upstream's parser makes every name):
	// delete, not Del, which canonicalises each again.
	delete(h, api.HeaderTags)
	delete(h, pagecache.HeaderCDNCacheControl) // for this cache only (RFC 9213; ADR 0020)
	if !e.spec.Debug {
		delete(h, api.HeaderNode)
		delete(h, api.HeaderNodeError)
	}
	h[api.HeaderCache] = xCacheBypass
	w.WriteHeader(resp.StatusCode)
	bp := copyBufs.Get().(*[]byte)
	_, cerr := io.CopyBuffer(w, resp.Body, *bp)
	copyBufs.Put(bp)
	if cerr != nil && r.Context().Err() == nil {
		panic(http.ErrAbortHandler) // cut short: the client must not take it for whole
	}
}

// refuseBody answers 408 or 413 when reading r's body failed for the
// limits of bodyLimit, and reports whether it did.
func (e *Edge) refuseBody(w http.ResponseWriter, r *http.Request) bool {
	b, ok := r.Body.(*bodyLimit)
	if !ok || !b.timedOut.Load() && !b.tooLarge.Load() {
		return false
	}
	w.Header().Set(api.HeaderCache, pagecache.XCacheBypass)
	w.Header().Set("Connection", "close") // the rest of the body is not read
	client, _, _ := e.clientAddr(r)
	if b.timedOut.Load() {
		e.refuse(w, r, client, http.StatusRequestTimeout, "408 request timeout: no request body bytes for %s (http.body_timeout)", e.bodyTimeout)
	} else {
		e.refuse(w, r, client, http.StatusRequestEntityTooLarge, "413 request body too large: more than %d bytes (http.max_body_mb)", e.maxBody)
	}
	return true
}

// roundTripOut returns the node's response and the node, whose Done the
// caller calls (with OK) once the body is consumed; a nil node means Done
// was already called (an error answer passed on as it is). interim, when
// not nil, receives the node's 1xx responses before the final one.
// clientKey is admission control's key for the client (client.key).
func (e *Edge) roundTripOut(ctx context.Context, clientKey, method string, out *http.Request, interim upstream.Interim) (*http.Response, *balancer.Node, error) {
	var body *unclosedBody
	if out.Body != nil {
		// Count what is read of the client's body: an attempt that read
		// none of it can be repeated on another node.
		body = &unclosedBody{r: out.Body}
		out.Body = body
	}
	replayable := func() bool { return body == nil || body.n.Load() == 0 }
	e.sign(out)
	// The nodes tried already, excluded from the next pick; nil on the
	// first attempt (an array here would escape to the heap through
	// Acquire's waiter on every request).
	var tried []string
	var lastErr error
	cut := false // an attempt was cut short: the rest are not (once per request)
	for attempt := 0; ; attempt++ {
		var node *balancer.Node
		var err error
		if body != nil {
			// A body may still be arriving: not metered by admission
			// control until the node answered (balancer.PickBody says why).
			var release func()
			node, release, err = e.bal.PickBody(tried...)
			if err == nil {
				defer release()
			}
		} else {
			node, err = e.bal.Acquire(ctx, clientKey, tried...)
		}
		if err != nil {
			if lastErr != nil {
				return nil, nil, lastErr // no other node to try
			}
			return nil, nil, err
		}
		// The client writes and reads in this goroutine and keeps no
		// reference to out: every attempt sends the same request.
		out.URL.Host = node.Addr()
		pool, _ := node.Conns().(*upstream.Pool)
		// A request safe to send again is cut short, before the node's
		// answer head, when the node fails out of service or a GET/HEAD
		// waits longer than the header timeout (attempt.go, ADR 0021).
		var watch *attemptWatch
		if !cut && attempt < e.retries && safeToCut(method, out) {
			watch = watchAttempt(node, e.headTimeoutFor(method))
		}
		var resp *http.Response
		if watch != nil {
			resp, err = e.up.DoWatched(ctx, pool, out, interim, &watch.up)
			cut = watch.stop() || cut
		} else {
			resp, err = e.up.Do(ctx, pool, out, interim)
		}
		// Only an unwritten request (a failed dial) is certainly not sent;
		// otherwise assume it was (a POST is then not repeated).
		wrote, gotResponse := false, false
		if err != nil {
			// Declared here: errors.As moves ue to the heap, which only a
			// failed attempt pays.
			var ue *upstream.Error
			isUE := errors.As(err, &ue)
			wrote = !(isUE && !ue.Written)
			gotResponse = isUE && ue.GotResponse
		}
		// A client whose body failed (too slow, too large, gone) is not
		// the node's failure, nor is a request the edge could not frame:
		// no retry, nothing against the node's health.
		clientGone := ctx.Err() != nil || body != nil && body.failed.Load() || errors.Is(err, upstream.ErrInvalidRequest)
		if err == nil && len(resp.Header[api.HeaderNodeError]) == 0 {
			if o := balancer.Classify(resp.StatusCode, resp.Header, nil, false); o != balancer.OK {
				node.Done(o) // reported for passive health; the answer still goes out
				return resp, nil, nil
			}
			return resp, node, nil
		}
		if err == nil { // the agent's own error page: PHP never answered
			outcome := balancer.Classify(resp.StatusCode, resp.Header, nil, false)
			if outcome == balancer.OK {
				outcome = balancer.Status5xx
			}
			node.Done(outcome)
			err = errNodeError
			if outcome == balancer.Saturated {
				err = balancer.ErrSaturated
			}
			if attempt >= e.retries || !replayable() || !balancer.Retryable(method, err, wrote, false) {
				return resp, nil, nil // pass the node's answer on
			}
			resp.Body.Close()
			lastErr = err
		} else {
			outcome := balancer.Classify(0, nil, err, clientGone)
			node.Done(outcome)
			if clientGone || attempt >= e.retries || !replayable() || !balancer.Retryable(method, err, wrote, gotResponse) {
				return nil, nil, err
			}
			lastErr = err
		}
		e.retried.Add(1)
		if len(tried) < 4 {
			tried = append(tried, node.ID())
		}
	}
}

// outRequest is the request sent to nodes: the client's, with hop-by-hop
// headers removed and X-Forwarded-* set from what the edge saw itself, or
// passed on from a trusted front proxy (http.trusted_proxies). The Host
// stays the site's. roundTripOut signs the forwarded headers.
func (e *Edge) outRequest(r *http.Request) *http.Request { return e.outRequestAs(r, e.clientFor(r)) }

// outRequestAs is outRequest for the client c (clientAddr's view of r).
func (e *Edge) outRequestAs(r *http.Request, c reqClient) *http.Request {
	return e.fillOutRequest(new(http.Request), new(url.URL), make(http.Header, len(r.Header)+4), r, c)
}

// pooledOut is the storage of one request to a node, reused (forwardAs).
type pooledOut struct {
	req    *http.Request
	url    url.URL
	header http.Header
}

var outRequests = sync.Pool{New: func() any {
	return &pooledOut{req: new(http.Request), header: make(http.Header, 16)}
}}

// put drops every reference the request holds and pools it.
func (o *pooledOut) put() {
	*o.req = http.Request{}
	o.url = url.URL{}
	clear(o.header)
	outRequests.Put(o)
}

// fillOutRequest makes out (with u, and h, which must be empty) the
// request outRequest describes.
func (e *Edge) fillOutRequest(out *http.Request, u *url.URL, h http.Header, r *http.Request, c reqClient) *http.Request {
	// A shallow copy with its own header map: the value slices are shared
	// with r's, which is safe because headers are only replaced (Set) or
	// removed (Del) here, never appended to.
	*out = *r
	*u = *r.URL
	out.URL = u
	out.Header = h
	for k, vv := range r.Header {
		out.Header[k] = vv
	}
	out.RequestURI = ""
	out.URL.Scheme = "http"
	out.Close = false
	removeHop(out.Header, r.Header)
	delete(out.Header, api.HeaderEdge) // only this edge signs
	xff, trusted := c.xff, c.trusted
	if !trusted {
		// The client's own claims about itself go no further.
		delete(out.Header, "X-Forwarded-Proto")
		delete(out.Header, "X-Forwarded-Host")
		delete(out.Header, "Forwarded")
		delete(out.Header, "X-Real-Ip")
	}
	// One array backs the values set here (the names are canonical: map
	// writes, no canonicalisation).
	var vals []string
	if xff != "" || !hasValue(out.Header, "X-Forwarded-Host") {
		vals = make([]string, 0, 2)
	}
	if xff != "" {
		vals = append(vals, xff)
		out.Header["X-Forwarded-For"] = vals[0:1:1]
	} else {
		delete(out.Header, "X-Forwarded-For")
	}
	if !hasValue(out.Header, "X-Forwarded-Proto") {
		out.Header["X-Forwarded-Proto"] = protoHTTP
		if r.TLS != nil {
			out.Header["X-Forwarded-Proto"] = protoHTTPS
		}
	}
	if !hasValue(out.Header, "X-Forwarded-Host") {
		vals = append(vals, r.Host)
		out.Header["X-Forwarded-Host"] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	if r.ContentLength == 0 {
		out.Body = nil
	}
	return out
}

// sign adds the edge's signature of out's forwarded headers, as the node
// will see them: method, Host, request URI as sent on the wire.
func (e *Edge) sign(out *http.Request) {
	if e.signer == nil {
		return
	}
	host := out.Host
	if host == "" {
		host = out.URL.Host
	}
	e.signer.Sign(out.Header, out.Method, host, out.URL.RequestURI(), time.Now())
}

// unclosedBody passes reads through, counts them, and ignores Close, so
// that the client's body outlives a failed attempt.
type unclosedBody struct {
	r      io.Reader
	n      atomic.Int64
	failed atomic.Bool // reading the client's body failed
}

func (b *unclosedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n.Add(int64(n))
	if err != nil && err != io.EOF {
		b.failed.Store(true)
	}
	return n, err
}

func (b *unclosedBody) Close() error { return nil }

// hasValue is h.Get(name) != "" for a canonical name.
func hasValue(h http.Header, name string) bool {
	vv := h[name]
	return len(vv) > 0 && vv[0] != ""
}

func removeHop(h http.Header, src http.Header) {
	for _, f := range src["Connection"] {
		for name := range strings.SplitSeq(f, ",") {
			if name = strings.TrimSpace(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, k := range hopHeaders {
		delete(h, k) // canonical already: no canonicalisation per name
	}
}

func (e *Edge) writeError(w http.ResponseWriter, r *http.Request, err error) {
	w.Header().Set(api.HeaderCache, pagecache.XCacheBypass)
	switch {
	case errors.Is(err, balancer.ErrNoUpstream):
		w.Header().Set("Retry-After", "5")
		http.Error(w, "503 service unavailable: no node in service", http.StatusServiceUnavailable)
	case errors.Is(err, balancer.ErrOverloaded):
		w.Header().Set("Retry-After", "1")
		http.Error(w, "503 service unavailable: every node is busy and the queue is full; retry shortly", http.StatusServiceUnavailable)
	case errors.Is(err, balancer.ErrSaturated):
		w.Header().Set("Retry-After", "1")
		http.Error(w, "503 service unavailable: every node is saturated", http.StatusServiceUnavailable)
	case errors.Is(err, errHeadTimeout):
		e.logger.Warn("proxy error", "uri", r.RequestURI, "err", err)
		http.Error(w, "504 gateway timeout: no node answered in time (http.upstream_header_timeout)", http.StatusGatewayTimeout)
	case errors.Is(err, context.Canceled) || r.Context().Err() != nil:
		// the client went away; nobody reads this
		w.WriteHeader(499)
	default:
		e.logger.Warn("proxy error", "uri", r.RequestURI, "err", err)
		http.Error(w, "502 bad gateway: no node answered", http.StatusBadGateway)
	}
}

// interim passes a node's 1xx response (103 Early Hints, 102) on to the
// client, without its hop-by-hop fields and without leaving its fields in
// the final response's header.
func (e *Edge) interim(w http.ResponseWriter) upstream.Interim {
	return func(code int, h http.Header) {
		wh := w.Header()
		saved := make(http.Header, len(h))
		for k := range h {
			if vv, ok := wh[k]; ok {
				saved[k] = vv
			}
		}
		for k, vv := range h {
			wh[k] = vv
		}
		removeHop(wh, h)
		wh.Del(api.HeaderTags)
		wh.Del(api.HeaderNode)
		wh.Del(api.HeaderNodeError)
		w.WriteHeader(code)
		for k := range h {
			delete(wh, k)
		}
		for k, vv := range saved {
			wh[k] = vv
		}
	}
}
