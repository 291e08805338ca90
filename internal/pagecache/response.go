package pagecache

import (
	"io"
	"net/http"
	"strings"
)

// Response is the origin's answer, as a Fetch returns it.
type Response struct {
	Status int
	Header http.Header
	// Body may be nil for an empty body. The cache reads it (a cacheable
	// body up to Config.MaxObjectBytes) and always closes it, in Fill or in
	// Serve.
	Body io.ReadCloser
}

// ResponseFrom adapts an *http.Response from a Transport round trip.
func ResponseFrom(resp *http.Response) *Response {
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: resp.Body}
}

func (r *Response) close() {
	if r != nil && r.Body != nil {
		r.Body.Close()
	}
}

// Conditional carries the validators of the stale copy a fill revalidates
// (both empty when there is none).
type Conditional struct {
	ETag         string
	LastModified string
	// keepRange: the fetch serves this request alone (hit-for-pass), so the
	// client's Range goes to the origin, which answers 206 itself.
	keepRange bool
}

// Apply prepares the header of the request a Fetch sends to the origin: it
// removes the client's own conditional headers and, unless the fetch is
// for this request alone, its Range (the cache needs a complete response
// it can store, and answers those itself); it sets If-None-Match /
// If-Modified-Since from the stored validators.
func (c Conditional) Apply(h http.Header) {
	for _, k := range [...]string{"If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since"} {
		delete(h, k)
	}
	if !c.keepRange {
		delete(h, "Range")
		delete(h, "If-Range")
	}
	if c.ETag != "" {
		h.Set("If-None-Match", c.ETag)
	}
	if c.LastModified != "" {
		h.Set("If-Modified-Since", c.LastModified)
	}
}

// hopByHop are the connection-level headers never stored nor relayed.
var hopByHop = [...]string{
	"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// isHopByHop reports whether name (canonical) is hop-by-hop for h, counting
// the headers its Connection lists.
func isHopByHop(h http.Header, name string) bool {
	for _, x := range hopByHop {
		if name == x {
			return true
		}
	}
	for _, v := range h["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			if http.CanonicalHeaderKey(strings.TrimSpace(f)) == name {
				return true
			}
		}
	}
	return false
}
