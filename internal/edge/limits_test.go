package edge

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/forward"
	"github.com/scalepress/scalepress/internal/token"
	"github.com/scalepress/scalepress/internal/upstream"
)

// TestForwardedHeaders: the edge believes X-Forwarded-* only from trusted
// proxies, and signs what it forwards so that the node can tell.
func TestForwardedHeaders(t *testing.T) {
	key := token.NewKey().Derive(token.Forward)
	v, _ := forward.NewVerifier(key)
	type seen struct{ XFF, Proto, XHost, Forwarded, RealIP, Edge string }
	var (
		mu   sync.Mutex
		last seen
	)
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := v.Verify(r.Header, r.Method, r.Host, r.RequestURI, time.Now())
		if err != nil {
			id = err.Error()
		}
		mu.Lock()
		last = seen{r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Proto"), r.Header.Get("X-Forwarded-Host"),
			r.Header.Get("Forwarded"), r.Header.Get("X-Real-Ip"), id}
		mu.Unlock()
	}))
	t.Cleanup(node.Close)
	forged := map[string]string{
		"X-Forwarded-For": "192.0.2.66", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.test",
		"Forwarded": "for=192.0.2.66", "X-Real-Ip": "192.0.2.66", api.HeaderEdge: "edge-9 1 AAAA",
	}
	tests := []struct {
		name    string
		trusted []string
		header  map[string]string
		want    seen
	}{
		{"direct client, no claims", nil, nil,
			seen{"127.0.0.1", "http", "site.test", "", "", "edge-1"}},
		{"direct client's claims are replaced", nil, forged,
			seen{"127.0.0.1", "http", "site.test", "", "", "edge-1"}},
		{"not in the trusted network", []string{"10.0.0.0/8"}, forged,
			seen{"127.0.0.1", "http", "site.test", "", "", "edge-1"}},
		{"trusted proxy's client is believed", []string{"127.0.0.1/32"},
			map[string]string{"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "www.site.test"},
			seen{"203.0.113.7", "https", "www.site.test", "", "", "edge-1"}},
		{"client's own claims left of it stay claims", []string{"127.0.0.1/32", "10.0.0.0/8"},
			map[string]string{"X-Forwarded-For": "192.0.2.66, 203.0.113.7, 10.1.1.1"},
			seen{"192.0.2.66, 203.0.113.7", "http", "site.test", "", "", "edge-1"}},
		{"garbage ends the chain", []string{"127.0.0.1/32"},
			map[string]string{"X-Forwarded-For": "203.0.113.7, nonsense"},
			seen{"127.0.0.1", "http", "site.test", "", "", "edge-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newEdgeSpec(t, api.EdgeSpec{ID: "edge-1", Addr: "127.0.0.1:0", ForwardKey: key.Hex(),
				HTTP: api.HTTPSpec{TrustedProxies: tt.trusted}, Cache: &api.CacheSpec{Enabled: false}}, node)
			req, _ := http.NewRequest("GET", s.URL+"/?s=x", nil)
			req.Host = "site.test"
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			mu.Lock()
			got := last
			mu.Unlock()
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("the node saw (-want +got):\n%s", diff)
			}
		})
	}
}

// TestClientConcurrency: one client gets at most client_concurrency
// requests in flight to nodes; others and cache hits are not held back.
func TestClientConcurrency(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 16)
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/cached" {
			w.Header().Set("Cache-Control", "public, s-maxage=60")
			io.WriteString(w, "page")
			return
		}
		if r.URL.Query().Get("s") == "slow" {
			arrived <- struct{}{}
			<-release
		}
	}))
	t.Cleanup(node.Close)
	s := newEdgeSpec(t, api.EdgeSpec{ID: "edge-1", Addr: "127.0.0.1:0",
		HTTP:  api.HTTPSpec{ClientConcurrency: 2, TrustedProxies: []string{"127.0.0.1/32"}},
		Cache: &api.CacheSpec{Enabled: true, DefaultTTL: "1m"}}, node)
	do := func(path, client string) (*http.Response, string) {
		req, _ := http.NewRequest("GET", s.URL+path, nil)
		req.Header.Set("X-Forwarded-For", client)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return nil, ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	if resp, _ := do("/cached", "203.0.113.1"); resp == nil || resp.StatusCode != 200 {
		t.Fatal("priming the cache failed")
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { do("/?s=slow", "203.0.113.1") })
	}
	<-arrived
	<-arrived // the client has two requests at a node
	resp, body := do("/?s=third", "203.0.113.1")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" ||
		!strings.HasPrefix(body, "429 too many requests: 203.0.113.1 has 2 requests in flight") || strings.Count(body, "\n") != 1 {
		t.Errorf("third request: %d Retry-After %q %q; want 429 with Retry-After and a one-line reason", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if resp, _ := do("/cached", "203.0.113.1"); resp.StatusCode != 200 || resp.Header.Get(api.HeaderCache) != "HIT" {
		t.Errorf("cache hit of a client at its cap: %d %s, want 200 HIT", resp.StatusCode, resp.Header.Get(api.HeaderCache))
	}
	if resp, _ := do("/?s=other", "203.0.113.2"); resp.StatusCode != 200 {
		t.Errorf("another client: %d, want 200", resp.StatusCode)
	}
	close(release)
	wg.Wait()
	if resp, _ := do("/?s=after", "203.0.113.1"); resp.StatusCode != 200 {
		t.Errorf("after its requests ended: %d, want 200", resp.StatusCode)
	}
	_, metrics := get(t, s.URL+api.EdgePathMetrics, "")
	if !strings.Contains(metrics, `scalepress_edge_client_refused_total{edge="edge-1"} 1`) {
		t.Errorf("metrics lack one refusal:\n%s", metrics)
	}
}

// pipeListener hands out in-memory connections, so that servers run
// inside a synctest bubble with deadlines on the fake clock.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *pipeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80} }

func (l *pipeListener) dial() net.Conn {
	a, b := net.Pipe()
	l.conns <- &addrConn{a}
	return b
}

// addrConn gives a pipe a TCP peer address, as the edge expects one.
type addrConn struct{ net.Conn }

func (c *addrConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
}

// TestRequestBodyLimits: the edge ends a request body that stops arriving
// (408) or grows too large (413) itself, also while it reads a login body
// ahead for login throttling.
func TestRequestBodyLimits(t *testing.T) {
	tests := []struct {
		name     string
		header   string
		steps    []time.Duration // wait before each byte written of the body
		wantCode int
	}{
		{"steady trickle is read", "Content-Length: 4", []time.Duration{0, 9 * time.Second, 9 * time.Second, 9 * time.Second}, 200},
		{"stall", "Content-Length: 4", []time.Duration{0, 9 * time.Second, 11 * time.Second}, http.StatusRequestTimeout},
		{"nothing sent", "Content-Length: 4", nil, http.StatusRequestTimeout},
		{"declared too large", "Content-Length: 9", nil, http.StatusRequestEntityTooLarge},
		{"chunked too large", "Transfer-Encoding: chunked", []time.Duration{0, 0, 0, 0, 0, 0, 0, 0, 0}, http.StatusRequestEntityTooLarge},
	}
	for _, tc := range []struct{ name, path string }{{"", "/wp-admin/admin-ajax.php"}, {"login ", "/wp-login.php"}} {
		for _, tt := range tests {
			t.Run(tc.name+tt.name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					nodeLn := newPipeListener()
					node := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						b, err := io.ReadAll(r.Body)
						if err != nil {
							return
						}
						fmt.Fprintf(w, "%d", len(b))
					})}
					go node.Serve(nodeLn)
					defer node.Shutdown(context.Background())
					e, err := New(api.EdgeSpec{ID: "edge-1", Addr: "127.0.0.1:0", Cache: &api.CacheSpec{Enabled: false},
						HTTP: api.HTTPSpec{BodyTimeout: "10s", MaxBody: 8, LoginThrottle: throttleSpec(5, 5)}}, slog.New(slog.DiscardHandler))
					if err != nil {
						t.Fatal(err)
					}
					e.transport.DialContext = func(context.Context, string, string) (net.Conn, error) { return nodeLn.dial(), nil }
					ucfg := upstream.DefaultConfig()
					ucfg.DialContext = e.transport.DialContext
					if e.up, err = upstream.New(ucfg); err != nil {
						t.Fatal(err)
					}
					defer e.transport.CloseIdleConnections()
					e.SetUpstreams([]api.Upstream{{ID: "a", Addr: "node.test:80"}})
					edgeLn := newPipeListener()
					srv := &http.Server{Handler: e}
					go srv.Serve(edgeLn)
					defer srv.Shutdown(context.Background())

					nc := edgeLn.dial()
					var wg sync.WaitGroup
					defer wg.Wait()
					defer nc.Close()
					wg.Go(func() {
						fmt.Fprintf(nc, "POST %s HTTP/1.1\r\nHost: site.test\r\n%s\r\n\r\n", tc.path, tt.header)
						for i, d := range tt.steps {
							time.Sleep(d)
							chunk := "abcd"[i%4 : i%4+1]
							if strings.Contains(tt.header, "chunked") {
								chunk = "1\r\n" + chunk + "\r\n"
							}
							if _, err := io.WriteString(nc, chunk); err != nil {
								return
							}
						}
					})
					resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
					if err != nil {
						t.Fatal(err)
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != tt.wantCode {
						t.Errorf("status %d %q, want %d", resp.StatusCode, b, tt.wantCode)
					}
					if tt.wantCode != 200 && strings.Count(string(b), "\n") != 1 {
						t.Errorf("body %q is not a one-line reason", b)
					}
				})
			})
		}
	}
}
