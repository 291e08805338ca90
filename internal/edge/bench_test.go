package edge

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/scalepress/scalepress/internal/api"
)

// discardWriter is a minimal ResponseWriter, so the benchmark measures the
// edge and not a recorder.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}

// BenchmarkProxyHop is one proxied request: pick, round trip to a node on
// loopback (keep-alive), copy of a 7 KB answer.
func BenchmarkProxyHop(b *testing.B) {
	body := strings.Repeat("x", 7000)
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css")
		io.WriteString(w, body)
	}))
	defer node.Close()
	e, err := New(api.EdgeSpec{ID: "edge-1", Addr: "127.0.0.1:0", Cache: &api.CacheSpec{Enabled: false}}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	e.SetUpstreams([]api.Upstream{{ID: "node-1", Addr: strings.TrimPrefix(node.URL, "http://")}})
	req := httptest.NewRequest("GET", "http://site.test/wp-includes/x.css", nil)
	req.RemoteAddr = "127.0.0.1:5555"
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		e.ServeHTTP(w, req)
	}
}

// BenchmarkCacheHit is the edge's own work for a cached 64 KB page (the
// net/http server around it is not included): classify, look up, write.
func BenchmarkCacheHit(b *testing.B) {
	page := "<html>" + strings.Repeat("lorem ipsum ", 5400) + "</html>"
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=UTF-8")
		io.WriteString(w, page)
	}))
	defer node.Close()
	e, err := New(api.EdgeSpec{ID: "edge-1", Addr: "127.0.0.1:0", Cache: &api.CacheSpec{Enabled: true, DefaultTTL: "1h"}}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	e.SetUpstreams([]api.Upstream{{ID: "node-1", Addr: strings.TrimPrefix(node.URL, "http://")}})
	req := httptest.NewRequest("GET", "http://site.test/", nil)
	req.RemoteAddr = "127.0.0.1:5555"
	req.Header.Set("Accept-Encoding", "gzip")
	w := &discardWriter{h: http.Header{}}
	e.ServeHTTP(w, req) // fill
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		e.ServeHTTP(w, req)
	}
}

// BenchmarkProxyPost is BenchmarkProxyHop for a POST with a 2 KB form body,
// the path of forms, comments and admin-ajax.
func BenchmarkProxyPost(b *testing.B) {
	body := strings.Repeat("x", 7000)
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, body)
	}))
	defer node.Close()
	e, err := New(api.EdgeSpec{ID: "edge-1", Addr: "127.0.0.1:0", Cache: &api.CacheSpec{Enabled: false}}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	e.SetUpstreams([]api.Upstream{{ID: "node-1", Addr: strings.TrimPrefix(node.URL, "http://")}})
	form := "comment=" + strings.Repeat("a", 2048)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req := httptest.NewRequest("POST", "http://site.test/?s=bench", strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.RemoteAddr = "127.0.0.1:5555"
		clear(w.h)
		e.ServeHTTP(w, req)
	}
}

// BenchmarkLoginPost is a failed wp-login.php POST through login
// throttling: the body read ahead, the limiter asked, the answer looked at.
func BenchmarkLoginPost(b *testing.B) {
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "<form>Error</form>")
	}))
	defer node.Close()
	lt := &api.LoginThrottleSpec{PerAddress: 1_000_000, PerUser: 1_000_000, Window: "1h", Block: "1h", TrustedFor: "1h", MaxEntries: 1024}
	e, err := New(api.EdgeSpec{ID: "edge-1", Addr: "127.0.0.1:0", Cache: &api.CacheSpec{Enabled: false}, HTTP: api.HTTPSpec{LoginThrottle: lt}}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	e.SetUpstreams([]api.Upstream{{ID: "node-1", Addr: strings.TrimPrefix(node.URL, "http://")}})
	form := "log=admin&pwd=guess&wp-submit=Log+In&redirect_to=%2Fwp-admin%2F&testcookie=1"
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req := httptest.NewRequest("POST", "http://site.test/wp-login.php", strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.RemoteAddr = "127.0.0.1:5555"
		clear(w.h)
		e.ServeHTTP(w, req)
	}
}

// BenchmarkRequestMetrics is what the request duration histogram adds to
// a site request: a clock read (time.Now at the start is read anyway by a
// cache hit, which then does not read it again), the X-Cache lookup, one
// observation.
func BenchmarkRequestMetrics(b *testing.B) {
	e, err := New(api.EdgeSpec{ID: "edge-1", Addr: "127.0.0.1:0", Cache: &api.CacheSpec{Enabled: true}}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	h := http.Header{api.HeaderCache: []string{"HIT"}}
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		e.metrics.observe(http.MethodGet, h, false, time.Since(start))
	}
}

// BenchmarkCacheHitHTTP is a cache hit as a client sees it: BenchmarkCacheHit
// behind net/http's server, over a keep-alive loopback connection, the 64 KB
// page read whole.
func BenchmarkCacheHitHTTP(b *testing.B) {
	page := "<html>" + strings.Repeat("lorem ipsum ", 5400) + "</html>"
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=UTF-8")
		io.WriteString(w, page)
	}))
	defer node.Close()
	e, err := New(api.EdgeSpec{ID: "edge-1", Addr: "127.0.0.1:0", Cache: &api.CacheSpec{Enabled: true, DefaultTTL: "1h"}}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	e.SetUpstreams([]api.Upstream{{ID: "node-1", Addr: strings.TrimPrefix(node.URL, "http://")}})
	srv := httptest.NewServer(e)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 1}}
	get := func() {
		resp, err := client.Get(srv.URL + "/")
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	get() // fill
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		get()
	}
}

// BenchmarkCacheHitWire is a cache hit of the 64 KB page over one
// keep-alive loopback connection, the client a fixed request written and
// the response read raw (no client allocations), served by net/http alone
// (net-http, the edge before hitfront) and by hitfront (as Run serves).
func BenchmarkCacheHitWire(b *testing.B) {
	page := "<html>" + strings.Repeat("lorem ipsum ", 5400) + "</html>"
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=UTF-8")
		io.WriteString(w, page)
	}))
	defer node.Close()
	for _, mode := range []string{"net-http", "hitfront"} {
		b.Run(mode, func(b *testing.B) {
			e, err := New(api.EdgeSpec{ID: "edge-1", Addr: "127.0.0.1:0", Cache: &api.CacheSpec{Enabled: true, DefaultTTL: "1h"}}, slog.New(slog.DiscardHandler))
			if err != nil {
				b.Fatal(err)
			}
			e.SetUpstreams([]api.Upstream{{ID: "node-1", Addr: strings.TrimPrefix(node.URL, "http://")}})
			var addr string
			if mode == "hitfront" {
				addr = strings.TrimPrefix(fastFront(b, e), "http://")
			} else {
				srv := httptest.NewServer(e)
				defer srv.Close()
				addr = strings.TrimPrefix(srv.URL, "http://")
			}
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			req := []byte("GET / HTTP/1.1\r\nHost: site.test\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
			br := bufio.NewReaderSize(c, 128<<10)
			buf := make([]byte, 128<<10)
			get := func() {
				if _, err := c.Write(req); err != nil {
					b.Fatal(err)
				}
				n := -1
				for {
					line, err := br.ReadSlice('\n')
					if err != nil {
						b.Fatal(err)
					}
					if len(line) == 2 {
						break
					}
					if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
						n, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
					}
				}
				if n < 0 {
					b.Fatal("no Content-Length")
				}
				if _, err := io.ReadFull(br, buf[:n]); err != nil {
					b.Fatal(err)
				}
			}
			get() // fill
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				get()
			}
			b.StopTimer()
			if e.fast != nil {
				b.ReportMetric(float64(e.fast.Stats().Served), "fast-served")
			}
		})
	}
}

// BenchmarkProxyWire is a proxied request (a logged-in cookie: the cache
// is bypassed) for a 7 KB answer over one keep-alive loopback connection,
// the request written and the response read raw, served by net/http
// alone (net-http, the edge before the fast path proxied) and by hitfront
// (as Run serves). cpu-us/op is the process's CPU (edge, test node and
// client alike) per request, from getrusage.
//
// The miss-* cases are cacheable misses instead (a new URL each time, the
// answer stored): the fast path hands each to net/http and takes the
// connection back (ADR 0028), against net/http alone.
func BenchmarkProxyWire(b *testing.B) {
	file := strings.Repeat("x", 7<<10)
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css")
		w.Header().Set("Content-Length", strconv.Itoa(len(file)))
		if strings.HasPrefix(r.URL.Path, "/miss/") {
			w.Header().Set("Cache-Control", "public, s-maxage=600")
		}
		io.WriteString(w, file)
	}))
	defer node.Close()
	for _, mode := range []string{"net-http", "hitfront", "miss-net-http", "miss-hitfront"} {
		b.Run(mode, func(b *testing.B) {
			e, err := New(api.EdgeSpec{ID: "edge-1", Addr: "127.0.0.1:0", Cache: &api.CacheSpec{Enabled: true, DefaultTTL: "1h"}}, slog.New(slog.DiscardHandler))
			if err != nil {
				b.Fatal(err)
			}
			e.SetUpstreams([]api.Upstream{{ID: "node-1", Addr: strings.TrimPrefix(node.URL, "http://")}})
			var addr string
			if strings.HasSuffix(mode, "hitfront") {
				addr = strings.TrimPrefix(fastFront(b, e), "http://")
			} else {
				srv := httptest.NewServer(e)
				defer srv.Close()
				addr = strings.TrimPrefix(srv.URL, "http://")
			}
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			req := []byte("GET /wp-includes/a.css HTTP/1.1\r\nHost: site.test\r\nUser-Agent: bench\r\nAccept: */*\r\nCookie: wordpress_logged_in_bench=1\r\n\r\n")
			miss := strings.HasPrefix(mode, "miss-")
			br := bufio.NewReaderSize(c, 64<<10)
			buf := make([]byte, 64<<10)
			n := 0
			get := func() {
				if miss {
					n++
					req = fmt.Appendf(req[:0], "GET /miss/%d.css HTTP/1.1\r\nHost: site.test\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n", n)
				}
				if _, err := c.Write(req); err != nil {
					b.Fatal(err)
				}
				n := -1
				for {
					line, err := br.ReadSlice('\n')
					if err != nil {
						b.Fatal(err)
					}
					if len(line) == 2 {
						break
					}
					if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
						n, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
					}
				}
				if n < 0 {
					b.Fatal("no Content-Length")
				}
				if _, err := io.ReadFull(br, buf[:n]); err != nil {
					b.Fatal(err)
				}
			}
			get()
			cpu := func() time.Duration {
				var ru syscall.Rusage
				syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
				return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
			}
			b.ReportAllocs()
			b.ResetTimer()
			t0 := cpu()
			for b.Loop() {
				get()
			}
			b.StopTimer()
			b.ReportMetric(float64(cpu()-t0)/float64(b.N)/1e3, "cpu-us/op")
			if e.fast != nil {
				b.ReportMetric(float64(e.fast.Stats().Served), "fast-served")
			}
		})
	}
}

// BenchmarkProxyFast is the fast path's proxied GET as bench/proxy.sh
// sends it (a logged-in cookie, cache bypassed, forwarded headers signed)
// over real loopback sockets, against a trivial node that answers every
// request head with the same 7 KB response: allocs/op are the edge's own
// (and the raw client's and node's, which allocate nothing per request).
// cpu-us/op is the whole process's CPU per request (getrusage).
func BenchmarkProxyFast(b *testing.B) {
	for _, nodes := range []int{1, 2} {
		b.Run(fmt.Sprintf("nodes=%d", nodes), func(b *testing.B) {
			var ups []api.Upstream
			for i := range nodes {
				ups = append(ups, api.Upstream{ID: fmt.Sprintf("node-%d", i+1), Addr: rawNode(b, 7000)})
			}
			key := strings.Repeat("ab", 32)
			e, err := New(api.EdgeSpec{ID: "edge-1", Addr: "127.0.0.1:0", ForwardKey: key, Cache: &api.CacheSpec{Enabled: true, DefaultTTL: "1h"}}, slog.New(slog.DiscardHandler))
			if err != nil {
				b.Fatal(err)
			}
			e.SetUpstreams(ups)
			c, err := net.Dial("tcp", strings.TrimPrefix(fastFront(b, e), "http://"))
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			req := []byte("GET /wp-includes/a.css HTTP/1.1\r\nHost: site.test\r\nUser-Agent: bench\r\nAccept: */*\r\nCookie: wordpress_logged_in_bench=1\r\n\r\n")
			br := bufio.NewReaderSize(c, 64<<10)
			buf := make([]byte, 64<<10)
			get := func() {
				if _, err := c.Write(req); err != nil {
					b.Fatal(err)
				}
				n := -1
				for {
					line, err := br.ReadSlice('\n')
					if err != nil {
						b.Fatal(err)
					}
					if len(line) == 2 {
						break
					}
					if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
						n, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
					}
				}
				if n < 0 {
					b.Fatal("no Content-Length")
				}
				if _, err := io.ReadFull(br, buf[:n]); err != nil {
					b.Fatal(err)
				}
			}
			for range 10 {
				get()
			}
			cpu := func() time.Duration {
				var ru syscall.Rusage
				syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
				return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
			}
			b.ReportAllocs()
			b.ResetTimer()
			t0 := cpu()
			for b.Loop() {
				get()
			}
			b.StopTimer()
			b.ReportMetric(float64(cpu()-t0)/float64(b.N)/1e3, "cpu-us/op")
		})
	}
}

// rawNode is a trivial node on loopback: every request head (requests
// have no body here) gets the same response with a body of size bytes,
// written in one write, nothing allocated per request. It returns its
// address.
func rawNode(b *testing.B, size int) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	resp := fmt.Appendf(nil, "HTTP/1.1 200 OK\r\nContent-Type: text/css\r\nContent-Length: %d\r\nDate: Mon, 07 Dec 2026 12:00:00 GMT\r\nLast-Modified: Mon, 07 Dec 2026 11:00:00 GMT\r\nEtag: \"1b58-60d\"\r\nAccept-Ranges: bytes\r\n\r\n%s", size, strings.Repeat("x", size))
	var wg sync.WaitGroup
	b.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.Cleanup(func() { c.Close() })
			wg.Go(func() {
				br := bufio.NewReaderSize(c, 16<<10)
				for {
					for {
						line, err := br.ReadSlice('\n')
						if err != nil {
							return
						}
						if len(line) == 2 {
							break
						}
					}
					if _, err := c.Write(resp); err != nil {
						return
					}
				}
			})
		}
	})
	return ln.Addr().String()
}
