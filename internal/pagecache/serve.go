package pagecache

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/scalepress/scalepress/internal/api"
)

// X-Cache is the header every response produced by the cache carries, with
// one of these values.
const (
	HeaderXCache = api.HeaderCache
	XCacheHit    = "HIT"
	XCacheMiss   = "MISS"
	XCacheBypass = "BYPASS"
	XCacheStale  = "STALE"
)

// Pre-rendered X-Cache values; shared, never written into.
var (
	xHit    = []string{XCacheHit}
	xMiss   = []string{XCacheMiss}
	xStale  = []string{XCacheStale}
	bytesV  = []string{"bytes"}
	zeroLen = []string{"0"}
)

// ServeHit answers r from a fresh stored object and reports true, or
// reports false (having written nothing) when r needs Fill: no object, a
// stale one, or a bypass decision. It writes X-Cache: HIT and Age, and
// answers If-None-Match / If-Modified-Since (304), Range (206, 416) and
// HEAD from the object.
func (c *Cache) ServeHit(w http.ResponseWriter, r *http.Request, d Decision) bool {
	if d.Bypass != "" {
		return false
	}
	o, _ := c.lookup(r.Header, &d)
	if o == nil {
		return false
	}
	now := d.At
	if now == 0 {
		now = c.nowNano()
	}
	if c.state(o, now) != stFresh {
		return false
	}
	c.shardOf(d.hash).hits.Add(1)
	c.write(w, r, o, xHit, true, now)
	return true
}

// Result is the outcome of Fill, to be written by Serve.
type Result struct {
	obj  *object   // serve this object (stored, stale or transient)
	pass *Response // or relay this response
	xc   []string
	age  bool // the response is served from cache: send Age
	// Err is the fetch's error when the response stands in for a failed
	// origin (STALE, or 503), for the edge's log. It wraps ErrOriginFailed.
	Err error
}

// XCache is the X-Cache value Serve writes.
func (res *Result) XCache() string { return res.xc[0] }

// Serve writes res. X-Cache is HIT (served from a stored object without
// this request reaching the origin: coalesced behind another request's
// fetch, or stale-while-revalidate), MISS (this request's fetch reached
// the origin, whether the response was stored, passed, or is a shared 5xx),
// or STALE (the origin failed and a stored copy stands in). HIT and STALE
// carry Age; MISS only relays the origin's Age. With nothing to send, it
// writes 503 with X-Cache: MISS and Retry-After.
//
// Serve closes a relayed body. It returns an error only when relaying the
// body failed after the status line was written; the client would see a
// truncated body as complete, so the edge should panic(http.ErrAbortHandler)
// to cut the connection.
func (c *Cache) Serve(w http.ResponseWriter, r *http.Request, res *Result) error {
	switch {
	case res.obj != nil:
		c.write(w, r, res.obj, res.xc, res.age, c.nowNano())
		return nil
	case res.pass != nil:
		return c.relay(w, r, res.pass)
	}
	h := w.Header()
	h[HeaderXCache] = xMiss
	h.Set("Retry-After", "5")
	http.Error(w, "503 service unavailable: the site's servers did not answer and no cached copy exists; retry shortly", http.StatusServiceUnavailable)
	return nil
}

// write serves o: conditional and range requests on 200, HEAD, the
// compressed body the client prefers (chooseRep).
func (c *Cache) write(w http.ResponseWriter, r *http.Request, o *object, xc []string, withAge bool, now int64) {
	h := w.Header()
	h[HeaderXCache] = xc
	if withAge {
		h["Age"] = o.ageHeader(now)
	} else if o.initialAge > 0 {
		h["Age"] = []string{strconv.FormatInt(o.initialAge, 10)}
	}
	rp := &o.id
	rangeHdr := r.Header["Range"]
	if len(rangeHdr) == 0 {
		rp = o.chooseRep(r.Header["Accept-Encoding"])
	}
	if o.status == http.StatusOK {
		if notModified(r.Header, o) {
			for _, f := range o.hdr304 {
				h[f.name] = f.vals
			}
			for _, f := range rp.hdr304 {
				h[f.name] = f.vals
			}
			w.WriteHeader(http.StatusNotModified)
			return
		}
		if len(rangeHdr) == 1 && r.Method == http.MethodGet && ifRangeMatches(r.Header, o) {
			if c.writeRange(w, r, o, rangeHdr[0]) {
				return
			}
		}
	}
	if bw, ok := w.(HeaderBlockWriter); ok && rp.block != nil {
		c.writeBlock(bw, r, o, rp, xc, withAge, now)
		return
	}
	for _, f := range o.hdr {
		h[f.name] = f.vals
	}
	for _, f := range rp.hdr {
		h[f.name] = f.vals
	}
	w.WriteHeader(o.status)
	if r.Method != http.MethodHead && len(rp.body) > 0 {
		w.Write(rp.body)
	}
}

// HeaderBlockWriter is a ResponseWriter that sends a response whose header
// fields come rendered as "Name: value\r\n" lines: fields, then xcache
// and age (either may be empty), sent as they are after the status line
// (and a Date line when needDate), then the empty line and body. fields
// hold Content-Length, which is len(body) unless the request is HEAD. The
// edge's fast path (internal/hitfront) implements it: a hit then fills no
// header map.
type HeaderBlockWriter interface {
	WriteBlock(status int, needDate bool, fields, xcache, age, body []byte)
}

// Rendered X-Cache lines.
var (
	xHitLine   = []byte(HeaderXCache + ": " + XCacheHit + "\r\n")
	xMissLine  = []byte(HeaderXCache + ": " + XCacheMiss + "\r\n")
	xStaleLine = []byte(HeaderXCache + ": " + XCacheStale + "\r\n")
)

// writeBlock is write's whole-body answer through a HeaderBlockWriter:
// the fields the header map would carry, already rendered.
func (c *Cache) writeBlock(bw HeaderBlockWriter, r *http.Request, o *object, rp *rep, xc []string, withAge bool, now int64) {
	xl := xMissLine
	switch xc[0] {
	case XCacheHit:
		xl = xHitLine
	case XCacheStale:
		xl = xStaleLine
	}
	var age []byte
	switch {
	case withAge:
		age = o.ageLine(now)
	case o.initialAge > 0:
		age = []byte("Age: " + strconv.FormatInt(o.initialAge, 10) + "\r\n")
	}
	body := rp.body
	if r.Method == http.MethodHead {
		body = nil
	}
	bw.WriteBlock(o.status, rp.needDate, rp.block, xl, age, body)
}

// writeRange answers a Range request from the identity body; false means
// serve the whole body (no range, bad syntax, several ranges).
func (c *Cache) writeRange(w http.ResponseWriter, r *http.Request, o *object, rangeHdr string) bool {
	body := o.id.body
	start, end, kind := parseRange(rangeHdr, int64(len(body)))
	h := w.Header()
	switch kind {
	case rangeSingle:
		for _, f := range o.hdr {
			h[f.name] = f.vals
		}
		for _, f := range o.id.hdr {
			h[f.name] = f.vals
		}
		h["Accept-Ranges"] = bytesV
		h["Content-Range"] = []string{fmt.Sprintf("bytes %d-%d/%d", start, end, len(body))}
		h[hContentLength] = []string{strconv.FormatInt(end-start+1, 10)}
		w.WriteHeader(http.StatusPartialContent)
		w.Write(body[start : end+1])
		return true
	case rangeUnsatisfiable:
		for _, f := range o.hdr304 {
			h[f.name] = f.vals
		}
		h["Accept-Ranges"] = bytesV
		h["Content-Range"] = []string{"bytes */" + strconv.Itoa(len(body))}
		h[hContentLength] = zeroLen
		w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
		return true
	}
	return false
}

// notModified evaluates If-None-Match (weak comparison, "*" matches), or
// else If-Modified-Since against Last-Modified (RFC 9110 §13.2.2).
// If-Match and If-Unmodified-Since are not evaluated on hits.
func notModified(h http.Header, o *object) bool {
	if inm := h["If-None-Match"]; len(inm) > 0 {
		for _, v := range inm {
			if etagListMatches(v, o.etag) {
				return true
			}
		}
		return false
	}
	ims := h["If-Modified-Since"]
	if len(ims) == 0 || o.lastMod == "" {
		return false
	}
	if ims[0] == o.lastMod {
		return true
	}
	t, err := http.ParseTime(ims[0])
	return err == nil && o.lastModUnix <= t.Unix()
}

// etagListMatches compares the entity-tags of an If-None-Match value
// weakly (opaque tags equal, W/ ignored) with etag.
func etagListMatches(list, etag string) bool {
	if strings.TrimSpace(list) == "*" {
		return true
	}
	if etag == "" {
		return false
	}
	want := strings.TrimPrefix(etag, "W/")
	for list != "" {
		list = strings.TrimLeft(list, " \t,")
		list = strings.TrimPrefix(list, "W/")
		if len(list) == 0 || list[0] != '"' {
			// Not an entity-tag: skip to the next element.
			i := strings.IndexByte(list, ',')
			if i < 0 {
				return false
			}
			list = list[i+1:]
			continue
		}
		j := strings.IndexByte(list[1:], '"')
		if j < 0 {
			return false
		}
		if list[:j+2] == want {
			return true
		}
		list = list[j+2:]
	}
	return false
}

// ifRangeMatches: without If-Range, or when it names the current identity
// representation (strong ETag equality, or the exact Last-Modified date),
// the Range may be served; otherwise the whole body is.
func ifRangeMatches(h http.Header, o *object) bool {
	ir := h["If-Range"]
	if len(ir) == 0 {
		return true
	}
	v := strings.TrimSpace(ir[0])
	if strings.HasPrefix(v, `"`) || strings.HasPrefix(v, "W/") {
		return !strings.HasPrefix(v, "W/") && !strings.HasPrefix(o.etag, "W/") && v == o.etag
	}
	if o.lastMod == "" {
		return false
	}
	t, err := http.ParseTime(v)
	return err == nil && t.Unix() == o.lastModUnix
}

// relay writes an uncached origin response.
func (c *Cache) relay(w http.ResponseWriter, r *http.Request, res *Response) error {
	defer res.close()
	h := w.Header()
	for k, v := range res.Header {
		k = http.CanonicalHeaderKey(k)
		if k == c.tagHeader || k == HeaderCDNCacheControl || isHopByHop(res.Header, k) {
			continue
		}
		h[k] = v
	}
	h[HeaderXCache] = xMiss
	w.WriteHeader(res.Status)
	if r.Method == http.MethodHead || res.Body == nil || !bodyAllowed(res.Status) {
		return nil
	}
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	tw := &trackedWriter{w: w}
	if _, err := io.CopyBuffer(tw, res.Body, *bp); err != nil && tw.err == nil {
		// The origin failed mid-body; a client write error needs nothing.
		return fmt.Errorf("pagecache: relay body: %w", err)
	}
	return nil
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// trackedWriter remembers a write error, to tell it from a read error.
type trackedWriter struct {
	w   io.Writer
	err error
}

func (t *trackedWriter) Write(p []byte) (int, error) {
	n, err := t.w.Write(p)
	if err != nil {
		t.err = err
	}
	return n, err
}

// StripTagHeader removes the cache tag header from h. The cache never
// serves it; the edge calls this on responses it relays itself (bypassed
// requests), so that tags stay internal.
func (c *Cache) StripTagHeader(h http.Header) {
	if c.tagHeader != "" {
		delete(h, c.tagHeader)
	}
}
