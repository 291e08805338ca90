package pagecache

import (
	"context"
	"errors"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// concurrently runs n requests for target through the cache at once and
// returns their X-Cache values, sorted. Call inside a synctest bubble.
func concurrently(t *testing.T, c *Cache, o *origin, n int, target string, whileBlocked func()) []string {
	t.Helper()
	out := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { out[i] = do(t, c, req("GET", target), o).Header().Get(HeaderXCache) })
	}
	synctest.Wait()
	whileBlocked()
	wg.Wait()
	sort.Strings(out)
	return out
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func TestCoalescing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTestCache(t, newFakeClock(), nil)
		release := make(chan struct{})
		o := newOrigin(func(int) (*Response, error) {
			<-release
			return resp(200, "hi", "Content-Type", htmlCT), nil
		})
		xc := concurrently(t, c, o, 10, "/", func() {
			if n := o.Calls(); n != 1 {
				t.Errorf("origin calls while blocked = %d, want 1", n)
			}
			close(release)
		})
		if diff := cmp.Diff(append(repeat("HIT", 9), "MISS"), xc); diff != "" {
			t.Errorf("X-Cache mismatch (-want +got):\n%s", diff)
		}
		if n := o.Calls(); n != 1 {
			t.Errorf("origin calls = %d, want 1", n)
		}
	})
}

func TestHitForPass(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := newFakeClock()
		c := newTestCache(t, clk, nil)
		release := make(chan struct{})
		cacheable := false
		o := newOrigin(func(int) (*Response, error) {
			<-release
			if cacheable {
				return resp(200, "hi", "Content-Type", htmlCT), nil
			}
			return resp(200, "hi", "Content-Type", htmlCT, "Set-Cookie", "cart=1"), nil
		})

		// Waiters behind an uncacheable fetch each fetch on their own.
		xc := concurrently(t, c, o, 5, "/", func() { close(release) })
		if diff := cmp.Diff(repeat("MISS", 5), xc); diff != "" {
			t.Errorf("first burst X-Cache mismatch (-want +got):\n%s", diff)
		}
		if n := o.Calls(); n != 5 {
			t.Errorf("origin calls = %d, want 5 (leader and 4 waiters)", n)
		}

		// While the key is hit-for-pass, requests do not queue: all reach
		// the origin at once.
		release = make(chan struct{})
		concurrently(t, c, o, 3, "/", func() {
			if n := o.Calls(); n != 8 {
				t.Errorf("origin calls while blocked = %d, want 8: hit-for-pass requests must not wait", n)
			}
			close(release)
		})

		// A cacheable answer during hit-for-pass is stored and ends it.
		cacheable = true
		do(t, c, req("GET", "/"), o)
		if diff := cmp.Diff(got{200, "HIT", "0", "hi"}, summary(do(t, c, req("GET", "/"), o))); diff != "" {
			t.Errorf("after cacheable answer (-want +got):\n%s", diff)
		}
	})
}

func TestHitForPassExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := newFakeClock()
		c := newTestCache(t, clk, func(cfg *Config) { cfg.HitForPass = 10 * time.Second })
		release := make(chan struct{})
		close(release)
		o := newOrigin(func(int) (*Response, error) {
			<-release
			return resp(200, "hi", "Content-Type", htmlCT, "Set-Cookie", "x=1"), nil
		})
		do(t, c, req("GET", "/"), o)
		clk.Advance(11 * time.Second)
		release = make(chan struct{})
		concurrently(t, c, o, 4, "/", func() {
			if n := o.Calls(); n != 2 {
				t.Errorf("origin calls while blocked = %d, want 2: coalescing resumes after HitForPass", n)
			}
			close(release)
		})
	})
}

func TestStaleWhileRevalidate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := newFakeClock()
		c := newTestCache(t, clk, nil) // SWR 30s
		release := make(chan struct{})
		o := newOrigin(func(n int) (*Response, error) {
			if n > 1 {
				<-release
			}
			// Tagged: a WordPress page, under the grace policy.
			return resp(200, "v"+itoa(n), "Cache-Control", "max-age=10", "Content-Type", htmlCT, "X-Scalepress-Tags", "home"), nil
		})
		do(t, c, req("GET", "/"), o)
		clk.Advance(15 * time.Second)
		for range 5 {
			w := do(t, c, req("GET", "/"), o)
			if diff := cmp.Diff(got{200, "HIT", "15", "v1"}, summary(w)); diff != "" {
				t.Errorf("stale-while-revalidate response mismatch (-want +got):\n%s", diff)
			}
		}
		synctest.Wait()
		if n := o.Calls(); n != 2 {
			t.Errorf("origin calls = %d, want 2 (one background refresh)", n)
		}
		close(release)
		synctest.Wait()
		if diff := cmp.Diff(got{200, "HIT", "0", "v2"}, summary(do(t, c, req("GET", "/"), o))); diff != "" {
			t.Errorf("after refresh mismatch (-want +got):\n%s", diff)
		}
		if s := c.Stats(); s.Refreshes != 1 {
			t.Errorf("Refreshes = %d, want 1", s.Refreshes)
		}
	})
}

func TestStaleWhileRevalidateDirective(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := newFakeClock()
		c := newTestCache(t, clk, nil)
		o := newOrigin(func(n int) (*Response, error) {
			return resp(200, "v"+itoa(n), "Cache-Control", "max-age=10, stale-while-revalidate=2"), nil
		})
		do(t, c, req("GET", "/"), o)
		clk.Advance(15 * time.Second) // past 10+2: wait for the origin
		if diff := cmp.Diff(got{200, "MISS", "", "v2"}, summary(do(t, c, req("GET", "/"), o))); diff != "" {
			t.Errorf("mismatch (-want +got):\n%s", diff)
		}
	})
}

func TestStaleIfError(t *testing.T) {
	errDown := errors.New("connection refused")
	tests := []struct {
		name    string
		cc      string
		advance time.Duration
		fail    func() (*Response, error)
		want    got
		wantErr bool
		// untagged: not a WordPress page, so no configured grace
		// (RFC 9111 §4.2.4: stale only where a directive allows it).
		untagged bool
	}{
		{name: "error within window", cc: "max-age=10", advance: 20 * time.Second,
			fail: func() (*Response, error) { return nil, errDown }, want: got{200, "STALE", "20", "v1"}, wantErr: true},
		{name: "503 within window", cc: "max-age=10", advance: time.Hour,
			fail: func() (*Response, error) { return resp(503, "down"), nil }, want: got{200, "STALE", "3600", "v1"}, wantErr: true},
		{name: "error past window", cc: "max-age=10, stale-if-error=60", advance: 71 * time.Second,
			fail: func() (*Response, error) { return nil, errDown }, want: got{503, "MISS", "", "503 service unavailable: the site's servers did not answer and no cached copy exists; retry shortly\n"}, wantErr: true},
		{name: "500 past window is relayed", cc: "max-age=10, stale-if-error=60", advance: 71 * time.Second,
			fail: func() (*Response, error) { return resp(500, "oops"), nil }, want: got{500, "MISS", "", "oops"}},
		{name: "must-revalidate forbids", cc: "max-age=10, must-revalidate", advance: 20 * time.Second,
			fail: func() (*Response, error) { return nil, errDown }, want: got{503, "MISS", "", "503 service unavailable: the site's servers did not answer and no cached copy exists; retry shortly\n"}, wantErr: true},
		{name: "untagged: no configured window (§4.2.4)", cc: "max-age=10", advance: 20 * time.Second, untagged: true,
			fail: func() (*Response, error) { return nil, errDown }, want: got{503, "MISS", "", "503 service unavailable: the site's servers did not answer and no cached copy exists; retry shortly\n"}, wantErr: true},
		{name: "untagged: stale-if-error directive (RFC 5861 §4)", cc: "max-age=10, stale-if-error=60", advance: 20 * time.Second, untagged: true,
			fail: func() (*Response, error) { return nil, errDown }, want: got{200, "STALE", "20", "v1"}, wantErr: true},
		{name: "s-maxage forbids stale-if-error (§5.2.2.10)", cc: "s-maxage=10, stale-if-error=60", advance: 20 * time.Second,
			fail: func() (*Response, error) { return nil, errDown }, want: got{503, "MISS", "", "503 service unavailable: the site's servers did not answer and no cached copy exists; retry shortly\n"}, wantErr: true},
		{name: "proxy-revalidate forbids (§5.2.2.8)", cc: "max-age=10, proxy-revalidate", advance: 20 * time.Second,
			fail: func() (*Response, error) { return nil, errDown }, want: got{503, "MISS", "", "503 service unavailable: the site's servers did not answer and no cached copy exists; retry shortly\n"}, wantErr: true},
		{name: "no-cache never stands in (§5.2.2.4)", cc: "max-age=600, no-cache", advance: 20 * time.Second,
			fail: func() (*Response, error) { return nil, errDown }, want: got{503, "MISS", "", "503 service unavailable: the site's servers did not answer and no cached copy exists; retry shortly\n"}, wantErr: true},
		{name: "404 is an answer, not a failure", cc: "max-age=10", advance: 20 * time.Second,
			fail: func() (*Response, error) { return resp(404, "gone", "Content-Type", htmlCT), nil }, want: got{404, "MISS", "", "gone"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			c := newTestCache(t, clk, func(cfg *Config) { cfg.StaleWhileRevalidate = 0 })
			o := newOrigin(func(n int) (*Response, error) {
				if n == 1 {
					if tt.untagged {
						return resp(200, "v1", "Cache-Control", tt.cc, "ETag", `"v1"`), nil
					}
					return resp(200, "v1", "Cache-Control", tt.cc, "ETag", `"v1"`, "X-Scalepress-Tags", "post-1"), nil
				}
				return tt.fail()
			})
			do(t, c, req("GET", "/"), o)
			clk.Advance(tt.advance)
			r := req("GET", "/")
			d := c.Classify(r)
			if c.ServeHit(httptest.NewRecorder(), r, d) {
				t.Fatalf("ServeHit() = true for a stale entry")
			}
			res := c.Fill(r.Context(), r, d, o.fetch)
			w := httptest.NewRecorder()
			if err := c.Serve(w, r, res); err != nil {
				t.Fatalf("Serve() error = %v", err)
			}
			if diff := cmp.Diff(tt.want, summary(w)); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
			if (res.Err != nil) != tt.wantErr || res.Err != nil && !errors.Is(res.Err, ErrOriginFailed) {
				t.Errorf("Result.Err = %v, want an ErrOriginFailed: %v", res.Err, tt.wantErr)
			}
			if res.XCache() != tt.want.XCache {
				t.Errorf("Result.XCache() = %s, want %s", res.XCache(), tt.want.XCache)
			}
		})
	}
}

func TestErrorSharedWithWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTestCache(t, newFakeClock(), nil)
		release := make(chan struct{})
		o := newOrigin(func(n int) (*Response, error) {
			<-release
			return resp(503, "overloaded", "Retry-After", "3"), nil
		})
		xc := concurrently(t, c, o, 6, "/", func() { close(release) })
		if diff := cmp.Diff(repeat("MISS", 6), xc); diff != "" {
			t.Errorf("X-Cache mismatch (-want +got):\n%s", diff)
		}
		if n := o.Calls(); n != 1 {
			t.Errorf("origin calls = %d, want 1: a failing origin is asked once per flight", n)
		}
		// No hit-for-pass after an error: the next burst coalesces again.
		release = make(chan struct{})
		concurrently(t, c, o, 4, "/", func() { close(release) })
		if n := o.Calls(); n != 2 {
			t.Errorf("origin calls = %d, want 2", n)
		}
	})
}

func TestRevalidation(t *testing.T) {
	lm := "Sat, 01 Mar 2025 10:00:00 GMT"
	clk := newFakeClock()
	c := newTestCache(t, clk, func(cfg *Config) { cfg.StaleWhileRevalidate = 0 })
	page := html(4096)
	o := newOrigin(func(n int) (*Response, error) {
		switch n {
		case 1:
			return resp(200, page, "Content-Type", htmlCT, "Cache-Control", "max-age=10", "ETag", `"v1"`, "Last-Modified", lm, "X-Scalepress-Tags", "post-1"), nil
		case 2:
			return resp(304, "", "Cache-Control", "max-age=100", "ETag", `"v1"`), nil
		}
		return nil, errors.New("unexpected fetch")
	})
	do(t, c, req("GET", "/"), o)
	clk.Advance(20 * time.Second)
	w := do(t, c, req("GET", "/", "Accept-Encoding", "gzip"), o)
	if w.Code != 200 || w.Header().Get(HeaderXCache) != "MISS" || gunzip(t, w.Body.Bytes()) != page {
		t.Errorf("revalidated response: %d %s", w.Code, w.Header().Get(HeaderXCache))
	}
	if got := w.Header().Get("Cache-Control"); got != "max-age=100" {
		t.Errorf("Cache-Control = %q, want the 304's max-age=100", got)
	}
	clk.Advance(90 * time.Second)
	if diff := cmp.Diff(got{200, "HIT", "90", page}, summary(do(t, c, req("GET", "/"), o))); diff != "" {
		t.Errorf("after revalidation mismatch (-want +got):\n%s", diff)
	}
	want := []Conditional{{}, {ETag: `"v1"`, LastModified: lm}}
	if diff := cmp.Diff(want, o.conds, cmp.AllowUnexported(Conditional{})); diff != "" {
		t.Errorf("conditionals sent mismatch (-want +got):\n%s", diff)
	}
	// Tags survive the revalidation.
	if n := c.PurgeTag("post-1", false); n != 1 {
		t.Errorf("PurgeTag() = %d, want 1", n)
	}
}

func TestNoCacheIsRevalidatedEveryTime(t *testing.T) {
	c := newTestCache(t, newFakeClock(), nil)
	o := newOrigin(func(n int) (*Response, error) {
		if n == 1 {
			return resp(200, "hi", "Content-Type", htmlCT, "Cache-Control", "no-cache", "ETag", `"a"`), nil
		}
		return resp(304, "", "ETag", `"a"`), nil
	})
	for i := range 3 {
		if diff := cmp.Diff(got{200, "MISS", "", "hi"}, summary(do(t, c, req("GET", "/"), o))); diff != "" {
			t.Errorf("request %d mismatch (-want +got):\n%s", i, diff)
		}
	}
	want := []Conditional{{}, {ETag: `"a"`}, {ETag: `"a"`}}
	if diff := cmp.Diff(want, o.conds, cmp.AllowUnexported(Conditional{})); diff != "" {
		t.Errorf("conditionals mismatch (-want +got):\n%s", diff)
	}
}

func TestLeaderGoneWaiterTakesOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTestCache(t, newFakeClock(), nil)
		o := newOrigin(func(n int) (*Response, error) {
			return resp(200, "v"+itoa(n), "Content-Type", htmlCT), nil
		})
		block := make(chan struct{})
		fetch := func(ctx context.Context, cond Conditional) (*Response, error) {
			if o.Calls() == 0 {
				o.fetch(ctx, cond)
				select {
				case <-ctx.Done():
					return nil, ctx.Err()
				case <-block:
				}
			}
			return o.fetch(ctx, cond)
		}
		ctx, cancel := context.WithCancel(context.Background())
		leader := req("GET", "/").WithContext(ctx)
		var leaderRes, waiterRes *Result
		var wg sync.WaitGroup
		wg.Go(func() { leaderRes = c.Fill(ctx, leader, c.Classify(leader), fetch) })
		synctest.Wait()
		waiter := req("GET", "/")
		wg.Go(func() { waiterRes = c.Fill(waiter.Context(), waiter, c.Classify(waiter), fetch) })
		synctest.Wait()
		cancel()
		wg.Wait()
		if leaderRes.Err == nil {
			t.Errorf("leader Result.Err = nil, want its context's error")
		}
		w := httptest.NewRecorder()
		c.Serve(w, waiter, waiterRes)
		if diff := cmp.Diff(got{200, "MISS", "", "v2"}, summary(w)); diff != "" {
			t.Errorf("waiter mismatch (-want +got):\n%s", diff)
		}
	})
}

func TestWaiterContextBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTestCache(t, newFakeClock(), nil)
		release := make(chan struct{})
		o := newOrigin(func(int) (*Response, error) {
			<-release
			return resp(200, "hi", "Content-Type", htmlCT), nil
		})
		go do(t, c, req("GET", "/"), o)
		synctest.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		r := req("GET", "/").WithContext(ctx)
		res := c.Fill(ctx, r, c.Classify(r), o.fetch)
		if !errors.Is(res.Err, context.DeadlineExceeded) {
			t.Errorf("Result.Err = %v, want the waiter's deadline", res.Err)
		}
		close(release)
		synctest.Wait()
	})
}

func TestPurgeDuringFillStoresSoftPurged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTestCache(t, newFakeClock(), nil)
		release := make(chan struct{})
		o := newOrigin(func(n int) (*Response, error) {
			if n == 1 {
				<-release
			}
			return resp(200, "v"+itoa(n), "Content-Type", htmlCT, "X-Scalepress-Tags", "post-1"), nil
		})
		go do(t, c, req("GET", "/"), o)
		synctest.Wait()
		c.PurgeTag("post-1", false) // WordPress saved the post while PHP rendered it
		close(release)
		synctest.Wait()
		if diff := cmp.Diff(got{200, "HIT", "0", "v1"}, summary(do(t, c, req("GET", "/"), o))); diff != "" {
			t.Errorf("mismatch (-want +got):\n%s", diff)
		}
		synctest.Wait()
		if diff := cmp.Diff(got{200, "HIT", "0", "v2"}, summary(do(t, c, req("GET", "/"), o))); diff != "" {
			t.Errorf("after the refresh mismatch (-want +got):\n%s", diff)
		}
	})
}

func TestBypassFillIsNotStored(t *testing.T) {
	c := newTestCache(t, newFakeClock(), nil)
	o := fixed(200, "private", "Content-Type", htmlCT)
	r := req("GET", "/", "Cookie", "wordpress_logged_in_1=x")
	d := c.Classify(r)
	w := httptest.NewRecorder()
	c.Serve(w, r, c.Fill(r.Context(), r, d, o.fetch))
	if diff := cmp.Diff(got{200, "MISS", "", "private"}, summary(w)); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
	if s := c.Stats(); s.Objects != 0 || s.Bypasses != 1 {
		t.Errorf("Stats() = %+v, want no object, one bypass", s)
	}
}

func TestFetchPanicReleasesWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTestCache(t, newFakeClock(), nil)
		release := make(chan struct{})
		calls := 0
		var mu sync.Mutex
		fetch := func(ctx context.Context, _ Conditional) (*Response, error) {
			mu.Lock()
			calls++
			n := calls
			mu.Unlock()
			if n == 1 {
				<-release
				panic("proxy aborted")
			}
			return resp(200, "ok", "Content-Type", htmlCT), nil
		}
		go func() {
			defer func() { recover() }()
			r := req("GET", "/")
			c.Fill(r.Context(), r, c.Classify(r), fetch)
		}()
		synctest.Wait()
		var res *Result
		done := make(chan struct{})
		go func() {
			r := req("GET", "/")
			res = c.Fill(r.Context(), r, c.Classify(r), fetch)
			close(done)
		}()
		synctest.Wait()
		close(release)
		<-done
		if res.XCache() != "MISS" || res.obj == nil {
			t.Errorf("waiter after a panicking leader: X-Cache %s, object %v", res.XCache(), res.obj != nil)
		}
	})
}

// TestStaleAtOnceWhileOriginFails: once a fetch for a stale page failed
// and its copy stood in, later requests get the copy at once (STALE) while
// one background refresh tries again, instead of each waiting on another
// fetch that fails the same way. Under overload the edge's fetch waits in
// the admission queue (http.queue_timeout, 3 s) before it is refused: the
// hits of that page would wait 3 s, for the same STALE copy, again and
// again (issue 18).
func TestStaleAtOnceWhileOriginFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := newFakeClock()
		c := newTestCache(t, clk, nil) // SWR 30 s, stale-if-error 24 h
		const queueWait = 3 * time.Second
		var up sync.Mutex // held: the origin is overloaded
		down := true
		o := newOrigin(func(n int) (*Response, error) {
			if n > 1 {
				time.Sleep(queueWait) // waits for admission...
				up.Lock()
				failing := down
				up.Unlock()
				if failing {
					return resp(503, "overloaded", "Retry-After", "1"), nil // ...and is refused
				}
			}
			return resp(200, "v"+itoa(n), "Cache-Control", "max-age=10", "Content-Type", htmlCT, "X-Scalepress-Tags", "home"), nil
		})
		do(t, c, req("GET", "/"), o)
		clk.Advance(45 * time.Second) // past max-age and stale-while-revalidate

		type answer struct {
			XCache, Body string
			Waited       time.Duration
		}
		get := func() answer {
			start := time.Now() // the bubble's clock: how long the request waited
			w := do(t, c, req("GET", "/"), o)
			return answer{w.Header().Get(HeaderXCache), w.Body.String(), time.Since(start)}
		}
		var got []answer
		got = append(got, get()) // fetches, waits, is refused: the copy stands in
		for range 3 {
			got = append(got, get()) // at once: the origin is known to fail
		}
		time.Sleep(queueWait) // the background refresh waits, and is refused too
		synctest.Wait()
		up.Lock()
		down = false
		up.Unlock()
		got = append(got, get()) // still at once; this refresh succeeds
		time.Sleep(queueWait)
		synctest.Wait()
		got = append(got, get())
		want := []answer{
			{"STALE", "v1", queueWait},
			{"STALE", "v1", 0}, {"STALE", "v1", 0}, {"STALE", "v1", 0},
			{"STALE", "v1", 0},
			{"HIT", "v4", 0},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("answers (-want +got):\n%s", diff)
		}
		if n := o.Calls(); n != 4 {
			t.Errorf("origin calls = %d, want 4: the first, the first stale request's, two background refreshes", n)
		}
	})
}
