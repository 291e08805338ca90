package pagecache

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestInvalidate: RFC 9111 §4.4, "A cache MUST invalidate the target URI
// when it receives a non-error status code in response to an unsafe
// request method (including methods whose safety is unknown)", and "MAY
// invalidate other URIs ... the URI(s) in the Location and
// Content-Location response header fields (if present)" of the same
// origin.
func TestInvalidate(t *testing.T) {
	pages := []string{"http://example.com/a/", "http://example.com/b/", "http://example.com/c/?x=1", "http://other.com/a/"}
	tests := []struct {
		name   string
		method string
		target string
		status int
		kv     []string
		want   []string // pages no longer stored
	}{
		{name: "POST 200 invalidates the target", method: "POST", target: "http://example.com/a/", status: 200, want: []string{"http://example.com/a/"}},
		{name: "PUT 204", method: "PUT", target: "http://example.com/a/", status: 204, want: []string{"http://example.com/a/"}},
		{name: "DELETE 200", method: "DELETE", target: "http://example.com/a/", status: 200, want: []string{"http://example.com/a/"}},
		{name: "PATCH 200", method: "PATCH", target: "http://example.com/a/", status: 200, want: []string{"http://example.com/a/"}},
		{name: "unknown method is unsafe", method: "FROB", target: "http://example.com/a/", status: 200, want: []string{"http://example.com/a/"}},
		{name: "3xx is not an error", method: "POST", target: "http://example.com/a/", status: 303, want: []string{"http://example.com/a/"}},
		{name: "query normalised like a key", method: "POST", target: "http://example.com/c/?utm_source=x&x=1", status: 200, want: []string{"http://example.com/c/?x=1"}},
		{name: "host case and default port", method: "POST", target: "http://EXAMPLE.com:80/a/", status: 200, want: []string{"http://example.com/a/"}},
		{name: "4xx does not invalidate", method: "POST", target: "http://example.com/a/", status: 403},
		{name: "5xx does not invalidate", method: "POST", target: "http://example.com/a/", status: 503},
		{name: "1xx does not invalidate", method: "POST", target: "http://example.com/a/", status: 100},
		{name: "GET is safe", method: "GET", target: "http://example.com/a/", status: 200},
		{name: "HEAD is safe", method: "HEAD", target: "http://example.com/a/", status: 200},
		{name: "OPTIONS is safe", method: "OPTIONS", target: "http://example.com/a/", status: 200},
		{name: "TRACE is safe", method: "TRACE", target: "http://example.com/a/", status: 200},
		{name: "Location absolute, same host", method: "POST", target: "http://example.com/wp-comments-post.php", status: 302,
			kv: []string{"Location", "https://example.com/b/#comment-5"}, want: []string{"http://example.com/b/"}},
		{name: "Location relative", method: "POST", target: "http://example.com/a/", status: 201,
			kv: []string{"Location", "../b/"}, want: []string{"http://example.com/a/", "http://example.com/b/"}},
		{name: "Content-Location same host", method: "PUT", target: "http://example.com/a/", status: 200,
			kv: []string{"Content-Location", "/c/?x=1"}, want: []string{"http://example.com/a/", "http://example.com/c/?x=1"}},
		{name: "Location of another host is not touched", method: "POST", target: "http://example.com/x/", status: 302,
			kv: []string{"Location", "http://other.com/a/"}},
		{name: "Content-Location of another host is not touched", method: "POST", target: "http://example.com/x/", status: 200,
			kv: []string{"Content-Location", "//other.com/a/"}},
		{name: "Location of another scheme is not touched", method: "POST", target: "http://example.com/x/", status: 302,
			kv: []string{"Location", "ftp://example.com/a/"}},
		{name: "Location on an error is not touched", method: "POST", target: "http://example.com/x/", status: 400,
			kv: []string{"Location", "/a/"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCache(t, newFakeClock(), nil)
			for _, p := range pages {
				do(t, c, req("GET", p), fixed(200, "page", "Content-Type", htmlCT))
			}
			h := http.Header{}
			for i := 0; i+1 < len(tt.kv); i += 2 {
				h.Add(tt.kv[i], tt.kv[i+1])
			}
			n := c.Invalidate(req(tt.method, tt.target), tt.status, h)
			var gone []string
			for _, p := range pages {
				r := req("GET", p)
				if !c.ServeHit(&nopWriter{h: http.Header{}}, r, c.Classify(r)) {
					gone = append(gone, p)
				}
			}
			if diff := cmp.Diff(tt.want, gone); diff != "" {
				t.Errorf("pages invalidated mismatch (-want +got):\n%s", diff)
			}
			if n != len(tt.want) {
				t.Errorf("Invalidate() = %d, want %d", n, len(tt.want))
			}
		})
	}
}

// TestInvalidateRacingFill: a GET whose fetch was sent before the unsafe
// request completed stores what it got as stale, so the next GET fetches
// again (RFC 9111 §4.4 with coalesced fills).
func TestInvalidateRacingFill(t *testing.T) {
	c := newTestCache(t, newFakeClock(), nil)
	o := newOrigin(func(call int) (*Response, error) {
		if call == 1 {
			// The POST completes while this GET's fetch is in flight.
			c.Invalidate(req("POST", "/a/"), 200, http.Header{})
		}
		return resp(200, "v"+itoa(call), "Content-Type", htmlCT), nil
	})
	if diff := cmp.Diff(got{200, "MISS", "", "v1"}, summary(do(t, c, req("GET", "/a/"), o))); diff != "" {
		t.Errorf("first GET mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(got{200, "MISS", "", "v2"}, summary(do(t, c, req("GET", "/a/"), o))); diff != "" {
		t.Errorf("GET after the racing POST mismatch (-want +got):\n%s", diff)
	}
}
