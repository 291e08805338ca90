package edge

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/scalepress/scalepress/internal/api"
)

// fastFront serves e as Run does: hitfront on a loopback port, net/http
// behind its handoff. It returns the base URL.
func fastFront(t testing.TB, e *Edge) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: e.fast.Returning(e), MaxHeaderBytes: 64 << 10} // as Run
	var wg sync.WaitGroup
	handoff := e.fast.Handoff(ln.Addr())
	wg.Go(func() { e.fast.Serve(ln) })
	wg.Go(func() { srv.Serve(handoff) })
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e.fast.Shutdown(ctx)
		srv.Shutdown(ctx)
		wg.Wait()
	})
	return "http://" + ln.Addr().String()
}

// TestFastHitsSameAsNetHTTP: a cache hit answered by hitfront is the
// response net/http gives for it (status, every header field but Date and
// Age's value, body), for plain, compressed, HEAD, conditional and range
// requests; and the fast path did answer them.
func TestFastHitsSameAsNetHTTP(t *testing.T) {
	page := "<!doctype html><html>" + strings.Repeat("<p>Hello, WordPress. ", 400) + "</html>"
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=UTF-8")
		w.Header().Set("ETag", `"p1"`)
		w.Header().Set("Last-Modified", "Sat, 01 Mar 2025 12:00:00 GMT")
		w.Header().Add("Link", `<https://site.test/wp-json/>; rel="https://api.w.org/"`)
		io.WriteString(w, page)
	}))
	t.Cleanup(node.Close)
	e, err := New(api.EdgeSpec{ID: "edge-1", Addr: "127.0.0.1:0", Cache: &api.CacheSpec{Enabled: true, DefaultTTL: "1h"}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	e.SetUpstreams([]api.Upstream{{ID: "node-1", Addr: strings.TrimPrefix(node.URL, "http://")}})
	if e.fast == nil {
		t.Fatal("no fast path on a plain edge with a cache")
	}
	slow := httptest.NewServer(e)
	t.Cleanup(slow.Close)
	fast := fastFront(t, e)
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	type response struct {
		Status int
		Header http.Header
		Body   string
	}
	do := func(base, method, path string, kv ...string) response {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, nil)
		req.Host = "site.test"
		for i := 0; i+1 < len(kv); i += 2 {
			req.Header.Set(kv[i], kv[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		h := resp.Header.Clone()
		if len(h["Date"]) != 1 || (h.Get(api.HeaderCache) == "HIT" && len(h["Age"]) != 1) {
			t.Errorf("%s %s %v: Date %q, Age %q, want one each", method, path, kv, h["Date"], h["Age"])
		}
		delete(h, "Date")
		delete(h, "Age")
		return response{resp.StatusCode, h, string(b)}
	}
	do(slow.URL, "GET", "/page/") // fill
	tests := []struct {
		name   string
		method string
		kv     []string
	}{
		{"plain", "GET", nil},
		{"gzip", "GET", []string{"Accept-Encoding", "gzip"}},
		{"browser: br", "GET", []string{"Accept-Encoding", "gzip, deflate, br, zstd"}},
		{"zstd", "GET", []string{"Accept-Encoding", "zstd"}},
		{"HEAD", "HEAD", []string{"Accept-Encoding", "br"}},
		{"If-None-Match", "GET", []string{"If-None-Match", `"p1"`}},
		{"If-None-Match, compressed", "GET", []string{"If-None-Match", `W/"p1"`, "Accept-Encoding", "br"}},
		{"If-Modified-Since", "GET", []string{"If-Modified-Since", "Sat, 01 Mar 2025 12:00:00 GMT"}},
		{"Range", "GET", []string{"Range", "bytes=10-19"}},
		{"Range unsatisfiable", "GET", []string{"Range", "bytes=999999-"}},
		{"Connection: close", "GET", []string{"Connection", "close"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.fast.Stats().Served
			want := do(slow.URL, tt.method, "/page/", tt.kv...)
			got := do(fast, tt.method, "/page/", tt.kv...)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("hitfront and net/http differ (-net/http +hitfront):\n%s", diff)
			}
			if got.Header.Get(api.HeaderCache) != "HIT" {
				t.Errorf("X-Cache = %q, want HIT", got.Header.Get(api.HeaderCache))
			}
			if n := e.fast.Stats().Served - before; n != 1 {
				t.Errorf("hitfront answered %d requests, want 1 (%+v)", n, e.fast.Stats())
			}
		})
	}
}

// TestFastPathHandsOverTheRest: what the fast path does not answer (a
// miss, the edge's own paths) reaches ServeHTTP through net/http on the
// same port; a bypass is proxied by the fast path itself.
func TestFastPathHandsOverTheRest(t *testing.T) {
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "page "+r.URL.Path)
	}))
	t.Cleanup(node.Close)
	e, err := New(api.EdgeSpec{ID: "edge-1", Addr: "127.0.0.1:0", Cache: &api.CacheSpec{Enabled: true, DefaultTTL: "1h"}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	e.SetUpstreams([]api.Upstream{{ID: "node-1", Addr: strings.TrimPrefix(node.URL, "http://")}})
	fast := fastFront(t, e)
	type got struct {
		Status int
		XCache string
		Body   string
	}
	tests := []struct {
		name   string
		path   string
		cookie string
		want   got
	}{
		{"miss", "/a/", "", got{200, "MISS", "page /a/"}},
		{"hit, on the connection the miss took to net/http", "/a/", "", got{200, "HIT", "page /a/"}},
		{"logged in: bypass", "/a/", "wordpress_logged_in_x=1", got{200, "BYPASS", "page /a/"}},
		{"edge health", api.EdgePathHealth, "", got{200, "BYPASS", "ok\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", fast+tt.path, nil)
			if tt.cookie != "" {
				req.Header.Set("Cookie", tt.cookie)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if diff := cmp.Diff(tt.want, got{resp.StatusCode, resp.Header.Get(api.HeaderCache), string(b)}); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
	// One keep-alive connection: the miss handed it over, its stored
	// answer (Content-Length) brought it back, the hit and the bypass were
	// fast, the edge's own path went to net/http again.
	if st := e.fast.Stats(); st.Served != 2 || st.Returned < 1 {
		t.Errorf("hitfront stats %+v, want 2 served and the connection returned", st)
	}
	resp, err := http.Get(fast + api.EdgePathMetrics)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if want := `scalepress_edge_fast_path_total{edge="edge-1",event="served"} 2`; !strings.Contains(string(b), want) {
		t.Errorf("metrics lack %s", want)
	}
}

// TestFastPathWhen: hitfront runs on a plain edge (with a cache or
// without: it proxies), unless cache.fast_hits is off.
func TestFastPathWhen(t *testing.T) {
	tests := []struct {
		name  string
		cache *api.CacheSpec
		want  bool
	}{
		{"cache on", &api.CacheSpec{Enabled: true}, true},
		{"no cache section: cache on", nil, true},
		{"fast_hits: false", &api.CacheSpec{Enabled: true, SlowHits: true}, false},
		{"cache off: plain proxying", &api.CacheSpec{Enabled: false}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := New(api.EdgeSpec{ID: "edge-1", Addr: "127.0.0.1:0", Cache: tt.cache}, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			if got := e.fast != nil; got != tt.want {
				t.Errorf("fast path = %v, want %v", got, tt.want)
			}
		})
	}
}
