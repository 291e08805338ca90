package pagecache

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is the cache's clock in tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newTestCache returns a cache on clk (time.Now if nil) with the defaults
// changed by mod.
func newTestCache(t testing.TB, clk *fakeClock, mod func(*Config)) *Cache {
	t.Helper()
	cfg := DefaultConfig()
	if clk != nil {
		cfg.Now = clk.Now
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New() error = %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// origin is a fake origin: it answers each fetch with respond and records
// the conditionals it was sent.
type origin struct {
	mu      sync.Mutex
	calls   int
	conds   []Conditional
	respond func(call int) (*Response, error)
	byPath  func(path string) (*Response, error) // if set, do answers by path
}

func newOrigin(respond func(call int) (*Response, error)) *origin {
	return &origin{respond: respond}
}

// fixed answers every fetch with a copy of the same response.
func fixed(status int, body string, kv ...string) *origin {
	return newOrigin(func(int) (*Response, error) { return resp(status, body, kv...), nil })
}

func (o *origin) fetch(ctx context.Context, cond Conditional) (*Response, error) {
	o.mu.Lock()
	o.calls++
	n := o.calls
	o.conds = append(o.conds, cond)
	o.mu.Unlock()
	return o.respond(n)
}

func (o *origin) Calls() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.calls
}

// resp builds an origin response; kv are header name, value pairs.
func resp(status int, body string, kv ...string) *Response {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return &Response{Status: status, Header: h, Body: io.NopCloser(strings.NewReader(body))}
}

// req builds a request; kv are header name, value pairs.
func req(method, target string, kv ...string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(kv); i += 2 {
		r.Header.Add(kv[i], kv[i+1])
	}
	return r
}

// fetchFor is the Fetch the edge would build for r.
func (o *origin) fetchFor(r *http.Request) Fetch {
	if o.byPath == nil {
		return o.fetch
	}
	return func(ctx context.Context, cond Conditional) (*Response, error) {
		o.mu.Lock()
		defer o.mu.Unlock()
		o.calls++
		o.conds = append(o.conds, cond)
		return o.byPath(r.URL.Path)
	}
}

// do runs a request through the cache as the edge does.
func do(t testing.TB, c *Cache, r *http.Request, o *origin) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	d := c.Classify(r)
	if d.Bypass != "" {
		w.Header().Set(HeaderXCache, XCacheBypass)
		res := c.Fill(r.Context(), r, d, o.fetchFor(r))
		if err := c.Serve(w, r, res); err != nil {
			t.Errorf("Serve() error = %v", err)
		}
		return w
	}
	if c.ServeHit(w, r, d) {
		return w
	}
	res := c.Fill(r.Context(), r, d, o.fetchFor(r))
	if err := c.Serve(w, r, res); err != nil {
		t.Errorf("Serve() error = %v", err)
	}
	return w
}

// got is the part of a response tests compare.
type got struct {
	Status int
	XCache string
	Age    string
	Body   string
}

func summary(w *httptest.ResponseRecorder) got {
	return got{Status: w.Code, XCache: w.Header().Get(HeaderXCache), Age: w.Header().Get("Age"), Body: w.Body.String()}
}

// html returns an HTML page of n bytes.
func html(n int) string {
	var b bytes.Buffer
	b.WriteString("<!doctype html><html><body>")
	for b.Len() < n-len("</body></html>") {
		b.WriteString("<p>Hello, WordPress. ")
	}
	b.Truncate(n - len("</body></html>"))
	b.WriteString("</body></html>")
	return b.String()
}

// nopWriter is a ResponseWriter that measures nothing but the cache.
type nopWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *nopWriter) Header() http.Header { return w.h }
func (w *nopWriter) WriteHeader(s int)   { w.status = s }
func (w *nopWriter) Write(p []byte) (int, error) {
	w.n += len(p)
	return len(p), nil
}

func (w *nopWriter) reset() {
	clear(w.h)
	w.status, w.n = 0, 0
}
