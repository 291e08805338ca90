package pagecache

import (
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fileOrigin is a node serving one static file: a strong ETag per
// version, 304 for a conditional that names the current one.
type fileOrigin struct {
	mu   sync.Mutex
	body string
	etag string
}

func (f *fileOrigin) set(body, etag string) {
	f.mu.Lock()
	f.body, f.etag = body, etag
	f.mu.Unlock()
}

// TestStaticRevalidatedAfterChange: a static asset is a HIT until
// StaticTTL, then revalidated with its ETag (a 304 keeps the stored body
// without a transfer), and a changed file is served from the first
// revalidation after the change (docs/adr/0022-edge-hit-representations.md).
func TestStaticRevalidatedAfterChange(t *testing.T) {
	clk := newFakeClock()
	c := newTestCache(t, clk, func(cfg *Config) { cfg.StaleWhileRevalidate = 0 })
	file := &fileOrigin{}
	file.set(html(4<<10), `"v1"`)
	var o *origin
	o = newOrigin(func(int) (*Response, error) {
		o.mu.Lock()
		cond := o.conds[len(o.conds)-1]
		o.mu.Unlock()
		file.mu.Lock()
		defer file.mu.Unlock()
		if cond.ETag == file.etag {
			return resp(304, "", "ETag", file.etag), nil
		}
		return resp(200, file.body, "Content-Type", "text/css", "ETag", file.etag), nil
	})
	v1 := html(4 << 10)
	v2 := v1[:len(v1)-20] + "/* changed */" + v1[len(v1)-7:]
	const path = "/wp-content/themes/t/style.css"
	type step struct {
		Status int
		XCache string
		Body   string
		Calls  int
		Cond   string // the ETag the last fetch revalidated with
	}
	run := func() step {
		w := do(t, c, req("GET", path, "Accept-Encoding", "gzip, br"), o)
		s := step{Status: w.Code, XCache: w.Header().Get(HeaderXCache), Body: decode(t, w.Header().Get("Content-Encoding"), w.Body.Bytes()), Calls: o.Calls()}
		o.mu.Lock()
		if n := len(o.conds); n > 0 {
			s.Cond = o.conds[n-1].ETag
		}
		o.mu.Unlock()
		return s
	}
	steps := []struct {
		name   string
		before func()
		want   step
	}{
		{"first request fills", nil, step{200, XCacheMiss, v1, 1, ""}},
		{"hit within static_ttl", func() { clk.Advance(30 * time.Second) }, step{200, XCacheHit, v1, 1, ""}},
		{"revalidated after static_ttl: 304, stored body", func() { clk.Advance(31 * time.Second) }, step{200, XCacheMiss, v1, 2, `"v1"`}},
		{"hit again", nil, step{200, XCacheHit, v1, 2, `"v1"`}},
		{"changed file, still fresh: old copy", func() { file.set(v2, `"v2"`) }, step{200, XCacheHit, v1, 2, `"v1"`}},
		{"changed file after static_ttl: new body", func() { clk.Advance(61 * time.Second) }, step{200, XCacheMiss, v2, 3, `"v1"`}},
		{"new body is a hit", nil, step{200, XCacheHit, v2, 3, `"v1"`}},
	}
	for _, s := range steps {
		if s.before != nil {
			s.before()
		}
		if diff := cmp.Diff(s.want, run()); diff != "" {
			t.Errorf("%s: mismatch (-want +got):\n%s", s.name, diff)
		}
	}
}
