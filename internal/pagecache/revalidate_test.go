package pagecache

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestRevalidationUpdatesHeaders: RFC 9111 §4.3.4, freshening a stored
// response with a 304, and §3.2, which header fields are updated.
func TestRevalidationUpdatesHeaders(t *testing.T) {
	page := html(2048)
	type seen struct {
		XCache, Body                       string
		CacheControl, Custom, ETag, Length string
		Encoding, CDN                      string
	}
	tests := []struct {
		name  string
		h304  []string
		later time.Duration // after the revalidation, when the next request comes
		// want is the revalidating response, wantLater the next one.
		want, wantLater seen
		wantConds       []Conditional
	}{
		{name: "§4.3.4 Cache-Control and custom fields replaced",
			h304: []string{"Cache-Control", "max-age=100", "ETag", `"v1"`, "X-Custom", "new"}, later: 60 * time.Second,
			want:      seen{XCache: "MISS", Body: page, CacheControl: "max-age=100", Custom: "new", ETag: `"v1"`, Length: strconv.Itoa(len(page))},
			wantLater: seen{XCache: "HIT", Body: page, CacheControl: "max-age=100", Custom: "new", ETag: `"v1"`, Length: strconv.Itoa(len(page))}},
		{name: "§3.2 Content-Length and Content-Encoding are not updated",
			h304: []string{"ETag", `"v1"`, "Content-Length", "5", "Content-Encoding", "br"}, later: 5 * time.Second,
			want:      seen{XCache: "MISS", Body: page, CacheControl: "max-age=10", Custom: "old", ETag: `"v1"`, Length: strconv.Itoa(len(page))},
			wantLater: seen{XCache: "HIT", Body: page, CacheControl: "max-age=10", Custom: "old", ETag: `"v1"`, Length: strconv.Itoa(len(page))}},
		{name: "§4.2.3 a 304 without Date is not aged by the stored Date",
			h304: []string{"ETag", `"v1"`}, later: 5 * time.Second,
			want:      seen{XCache: "MISS", Body: page, CacheControl: "max-age=10", Custom: "old", ETag: `"v1"`, Length: strconv.Itoa(len(page))},
			wantLater: seen{XCache: "HIT", Body: page, CacheControl: "max-age=10", Custom: "old", ETag: `"v1"`, Length: strconv.Itoa(len(page))}},
		{name: "§4.3.4 a weak ETag selects weakly",
			h304: []string{"ETag", `W/"v1"`, "X-Custom", "weak"}, later: 5 * time.Second,
			want:      seen{XCache: "MISS", Body: page, CacheControl: "max-age=10", Custom: "weak", ETag: `W/"v1"`, Length: strconv.Itoa(len(page))},
			wantLater: seen{XCache: "HIT", Body: page, CacheControl: "max-age=10", Custom: "weak", ETag: `W/"v1"`, Length: strconv.Itoa(len(page))}},
		{name: "§4.3.4 another ETag selects nothing: fetched again without validators",
			h304: []string{"ETag", `"v2"`, "X-Custom", "wrong"}, later: 5 * time.Second,
			want:      seen{XCache: "MISS", Body: "third", CacheControl: "max-age=10", Custom: "third", ETag: `"v3"`, Length: "5"},
			wantLater: seen{XCache: "HIT", Body: "third", CacheControl: "max-age=10", Custom: "third", ETag: `"v3"`, Length: "5"},
			wantConds: []Conditional{{}, {ETag: `"v1"`}, {}}},
		{name: "RFC 9213 a CDN-Cache-Control in the 304 sets the policy, and is not served",
			h304: []string{"ETag", `"v1"`, "CDN-Cache-Control", "max-age=1000"}, later: 500 * time.Second,
			want:      seen{XCache: "MISS", Body: page, CacheControl: "max-age=10", Custom: "old", ETag: `"v1"`, Length: strconv.Itoa(len(page))},
			wantLater: seen{XCache: "HIT", Body: page, CacheControl: "max-age=10", Custom: "old", ETag: `"v1"`, Length: strconv.Itoa(len(page))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			c := newTestCache(t, clk, nil)
			o := newOrigin(func(n int) (*Response, error) {
				switch n {
				case 1:
					return resp(200, page, "Content-Type", htmlCT, "Cache-Control", "max-age=10", "ETag", `"v1"`, "X-Custom", "old",
						"Date", clk.Now().Format(http.TimeFormat)), nil
				case 2:
					return resp(304, "", tt.h304...), nil
				}
				return resp(200, "third", "Content-Type", htmlCT, "Cache-Control", "max-age=10", "ETag", `"v3"`, "X-Custom", "third"), nil
			})
			look := func(h http.Header, body string) seen {
				return seen{XCache: h.Get(HeaderXCache), Body: body, CacheControl: h.Get("Cache-Control"), Custom: h.Get("X-Custom"),
					ETag: h.Get("ETag"), Length: h.Get("Content-Length"), Encoding: h.Get("Content-Encoding"), CDN: h.Get("CDN-Cache-Control")}
			}
			do(t, c, req("GET", "/"), o)
			clk.Advance(20 * time.Second)
			w := do(t, c, req("GET", "/"), o)
			if diff := cmp.Diff(tt.want, look(w.Header(), w.Body.String())); diff != "" {
				t.Errorf("revalidating response mismatch (-want +got):\n%s", diff)
			}
			clk.Advance(tt.later)
			w = do(t, c, req("GET", "/"), o)
			if diff := cmp.Diff(tt.wantLater, look(w.Header(), w.Body.String())); diff != "" {
				t.Errorf("later response mismatch (-want +got):\n%s", diff)
			}
			want := tt.wantConds
			if want == nil {
				want = []Conditional{{}, {ETag: `"v1"`}}
			}
			if diff := cmp.Diff(want, o.conds, cmp.AllowUnexported(Conditional{})); diff != "" {
				t.Errorf("conditionals mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCDNCacheControlNotServed: the targeted field is for this cache only
// (ADR 0020): neither a stored nor a relayed response carries it.
func TestCDNCacheControlNotServed(t *testing.T) {
	c := newTestCache(t, newFakeClock(), nil)
	for _, tt := range []struct {
		name string
		o    *origin
		want string
	}{
		{"stored", fixed(200, "a", "CDN-Cache-Control", "max-age=60"), "MISS"},
		{"relayed", fixed(200, "b", "CDN-Cache-Control", "max-age=60", "Set-Cookie", "x=1"), "MISS"},
	} {
		w := do(t, c, req("GET", "/"+tt.name), tt.o)
		if w.Header().Get(HeaderXCache) != tt.want || w.Header().Get("CDN-Cache-Control") != "" {
			t.Errorf("%s: X-Cache %q, CDN-Cache-Control %q", tt.name, w.Header().Get(HeaderXCache), w.Header().Get("CDN-Cache-Control"))
		}
	}
}
