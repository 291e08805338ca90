package edge

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/forward"
	"github.com/scalepress/scalepress/internal/pagecache"
	"github.com/scalepress/scalepress/internal/token"
)

// TestFastProxySameAsNetHTTP: a request the fast path proxies (a bypass)
// reaches the node exactly as one through net/http does (every header
// field, the signature valid, the client's forwarded claims and
// hop-by-hop fields gone), and the client gets the same answer (status,
// every header field but Date, 103 hints, body) whatever the node's
// framing; and the fast path did answer it.
func TestFastProxySameAsNetHTTP(t *testing.T) {
	key := token.NewKey()
	v, err := forward.NewVerifier(key)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		seen []http.Header // what the node got, per request
	)
	big := strings.Repeat("0123456789abcdef", 700) // 11 KB: chunked past hitfront's held bytes
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Clone()
		if id, err := v.Verify(r.Header, r.Method, r.Host, r.RequestURI, time.Now()); err != nil || id != "edge-1" {
			h.Set("Signature", "bad: "+err.Error())
		}
		delete(h, api.HeaderEdge) // its time may differ by a second
		h.Set("Request-Line", r.Method+" "+r.RequestURI+" "+r.Host)
		mu.Lock()
		seen = append(seen, h)
		mu.Unlock()
		wh := w.Header()
		wh.Set("Connection", "X-Secret")
		wh.Set("X-Secret", "hop")
		wh.Set("Keep-Alive", "timeout=5")
		wh.Set(api.HeaderTags, "post-1")
		wh.Set(api.HeaderNode, "node-1")
		wh.Set(pagecache.HeaderCDNCacheControl, "max-age=60")
		wh.Set("X-Kept", "yes")
		switch r.URL.Path {
		case "/len":
			wh.Set("Content-Length", "5")
			io.WriteString(w, "hello")
		case "/chunked-small": // chunked from the node, small: framed by length
			io.WriteString(w, "part one, ")
			w.(http.Flusher).Flush()
			io.WriteString(w, "part two")
		case "/chunked-big":
			io.WriteString(w, big[:100])
			w.(http.Flusher).Flush()
			io.WriteString(w, big[100:])
		case "/hints":
			wh.Set("Link", "</s.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			wh.Del("Link")
			io.WriteString(w, "hinted")
		case "/304":
			wh.Set("ETag", `"e1"`)
			w.WriteHeader(http.StatusNotModified)
		case "/404":
			http.NotFound(w, r)
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	t.Cleanup(node.Close)
	e, err := New(api.EdgeSpec{ID: "edge-1", Addr: "127.0.0.1:0", ForwardKey: key.Hex(),
		Cache: &api.CacheSpec{Enabled: true, DefaultTTL: "1h"}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	e.SetUpstreams([]api.Upstream{{ID: "node-1", Addr: strings.TrimPrefix(node.URL, "http://")}})
	slow := httptest.NewServer(e)
	t.Cleanup(slow.Close)
	fast := fastFront(t, e)

	type response struct {
		Status int
		Header http.Header
		Hints  []string
		Body   string
		Node   http.Header
	}
	do := func(t *testing.T, base, method, path string) response {
		t.Helper()
		c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		// What a client may claim: forwarded fields, a signature,
		// hop-by-hop fields; a logged-in cookie bypasses the cache.
		io.WriteString(c, method+" "+path+"?a=1&b=%20 HTTP/1.1\r\nHost: site.test\r\nUser-Agent: t\r\n"+
			"Cookie: wordpress_logged_in_x=1\r\nCookie: b=2\r\nX-Forwarded-For: 192.0.2.66\r\nX-Forwarded-Proto: https\r\n"+
			"X-Forwarded-Host: evil.test\r\nForwarded: for=192.0.2.66\r\nX-Real-IP: 192.0.2.66\r\n"+
			api.HeaderEdge+": edge-9 1 AAAA\r\nKeep-Alive: timeout=1\r\nProxy-Authorization: Basic eDp5\r\n"+
			"Connection: keep-alive\r\nAccept: */*\r\nX-Custom:  spaced \t\r\n\r\n")
		br := bufio.NewReader(c)
		var out response
		for {
			resp, err := http.ReadResponse(br, &http.Request{Method: method})
			if err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			if resp.StatusCode < 200 {
				out.Hints = append(out.Hints, resp.Header.Get("Link"))
				continue
			}
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("%s %s: body: %v", method, path, err)
			}
			out.Status, out.Header, out.Body = resp.StatusCode, resp.Header, string(b)
			break
		}
		if len(out.Header["Date"]) != 1 {
			t.Errorf("%s %s: Date %q, want one", method, path, out.Header["Date"])
		}
		delete(out.Header, "Date")
		mu.Lock()
		out.Node = seen[len(seen)-1]
		mu.Unlock()
		return out
	}
	tests := []struct{ method, path string }{
		{"GET", "/len"}, {"HEAD", "/len"}, {"GET", "/chunked-small"}, {"GET", "/chunked-big"},
		{"HEAD", "/chunked-big"}, {"GET", "/hints"}, {"GET", "/304"}, {"GET", "/404"}, {"GET", "/empty"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			want := do(t, slow.URL, tt.method, tt.path)
			before := e.fast.Stats()
			got := do(t, fast, tt.method, tt.path)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("fast path and net/http differ (-net/http +fast):\n%s", diff)
			}
			if st := e.fast.Stats(); st.Served-before.Served != 1 || st.Handed != before.Handed {
				t.Errorf("hitfront stats %+v -> %+v: want the fast path to answer it", before, st)
			}
			// What no client field may carry to the node, and no node
			// field to the client, whichever way it came.
			for _, k := range []string{"Keep-Alive", "Proxy-Authorization", "Connection", "Forwarded", "X-Real-Ip", "Signature"} {
				if v := got.Node[k]; v != nil {
					t.Errorf("node got %s: %q", k, v)
				}
			}
			if got.Node.Get("X-Forwarded-For") != "127.0.0.1" || got.Node.Get("X-Forwarded-Host") != "site.test" || got.Node.Get("X-Forwarded-Proto") != "http" {
				t.Errorf("node got X-Forwarded-* %q %q %q, want the edge's own view", got.Node["X-Forwarded-For"], got.Node["X-Forwarded-Host"], got.Node["X-Forwarded-Proto"])
			}
			for _, k := range []string{"Connection", "X-Secret", "Keep-Alive", api.HeaderTags, api.HeaderNode, pagecache.HeaderCDNCacheControl} {
				if v := got.Header[k]; v != nil {
					t.Errorf("client got %s: %q", k, v)
				}
			}
			if got.Header.Get(api.HeaderCache) != "BYPASS" {
				t.Errorf("X-Cache = %q, want BYPASS", got.Header.Get(api.HeaderCache))
			}
		})
	}
	if m := scrapeURL(t, slow.URL); !strings.Contains(m, `scalepress_edge_request_duration_seconds_count{cache="bypass",edge="edge-1",method="GET"} 14`) {
		t.Errorf("the request histogram does not count every bypass GET of both paths (14):\n%s", m)
	}
}

// TestFastProxyHandsOver: requests the fast path must not proxy itself
// reach net/http (hitfront hands the connection over): the edge's own
// paths, login requests when login throttling is on (Basic credentials
// on any URL), a cacheable miss (the fill), unusual framing; a header
// larger than the fast path's buffer meets net/http's limit.
func TestFastProxyHandsOver(t *testing.T) {
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "page")
	}))
	t.Cleanup(node.Close)
	e, err := New(api.EdgeSpec{ID: "edge-1", Addr: "127.0.0.1:0", PurgeSecret: "s3cret",
		HTTP:  api.HTTPSpec{LoginThrottle: &api.LoginThrottleSpec{PerAddress: 5, PerUser: 5, Window: "1m", Block: "1m", TrustedFor: "1h", MaxEntries: 1024}},
		Cache: &api.CacheSpec{Enabled: true, DefaultTTL: "1h"}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	e.SetUpstreams([]api.Upstream{{ID: "node-1", Addr: strings.TrimPrefix(node.URL, "http://")}})
	fast := fastFront(t, e)
	tests := []struct {
		name   string
		raw    string
		status int
		handed bool
	}{
		{"bypass: fast", "GET /?s=x HTTP/1.1\r\nHost: a\r\n\r\n", 200, false},
		{"edge health", "GET " + api.EdgePathHealth + " HTTP/1.1\r\nHost: a\r\n\r\n", 200, true},
		{"purge", "GET " + api.EdgePathPurge + " HTTP/1.1\r\nHost: a\r\n\r\n", 401, true},
		{"Basic credentials: a login", "GET /?s=x HTTP/1.1\r\nHost: a\r\nAuthorization: Basic dTpw\r\n\r\n", 200, true},
		{"cacheable miss: the fill", "GET /page/ HTTP/1.1\r\nHost: a\r\n\r\n", 200, true},
		{"GET with a body", "GET /?s=x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nab", 200, true},
		{"header over the buffer", "GET /?s=x HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("b", 70<<10) + "\r\n\r\n", 431, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.fast.Stats()
			c, err := net.Dial("tcp", strings.TrimPrefix(fast, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(c, tt.raw)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			st := e.fast.Stats()
			if resp.StatusCode != tt.status || (st.Handed > before.Handed) != tt.handed {
				t.Errorf("status %d, stats %+v -> %+v; want %d, handed to net/http %v", resp.StatusCode, before, st, tt.status, tt.handed)
			}
		})
	}
}

// TestFastProxyPipelined: pipelined requests on one connection, proxied
// and hits mixed, are answered in order by the fast path, each framed so
// the next is read where it starts; a client that goes away in the middle
// of an answer ends only its own connection.
func TestFastProxyPipelined(t *testing.T) {
	big := strings.Repeat("z", 64<<10)
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big":
			io.WriteString(w, big) // no Content-Length: chunked from the node
		case "/page/":
			w.Header().Set("Cache-Control", "public, s-maxage=60")
			io.WriteString(w, "page")
		default:
			io.WriteString(w, "search "+r.URL.RawQuery)
		}
	}))
	t.Cleanup(node.Close)
	e, err := New(api.EdgeSpec{ID: "edge-1", Addr: "127.0.0.1:0", Cache: &api.CacheSpec{Enabled: true, DefaultTTL: "1h"}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	e.SetUpstreams([]api.Upstream{{ID: "node-1", Addr: strings.TrimPrefix(node.URL, "http://")}})
	fast := fastFront(t, e)
	addr := strings.TrimPrefix(fast, "http://")
	waitFor(t, func() bool { // the fill (a miss, through net/http), stored
		req, _ := http.NewRequest("GET", fast+"/page/", nil)
		req.Host = "a" // the cache key's host, as below
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.Header.Get(api.HeaderCache) == "HIT"
	})
	// A client that leaves in the middle of a large answer.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET /big?s=1 HTTP/1.1\r\nHost: a\r\n\r\n")
	if _, err := io.ReadFull(c, make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	c.Close()

	before := e.fast.Stats()
	c, err = net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET /?s=a HTTP/1.1\r\nHost: a\r\n\r\nGET /page/ HTTP/1.1\r\nHost: a\r\n\r\n"+
		"GET /big?s=2 HTTP/1.1\r\nHost: a\r\n\r\nHEAD /?s=b HTTP/1.1\r\nHost: a\r\n\r\nGET /?s=c HTTP/1.1\r\nHost: a\r\n\r\n")
	br := bufio.NewReader(c)
	var got []string
	for _, m := range []string{"GET", "GET", "GET", "HEAD", "GET"} {
		resp, err := http.ReadResponse(br, &http.Request{Method: m})
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if len(b) > 20 {
			b = []byte(string(b[:1]) + "×" + strconv.Itoa(len(b)))
		}
		got = append(got, resp.Header.Get(api.HeaderCache)+" "+string(b))
	}
	want := []string{"BYPASS search s=a", "HIT page", "BYPASS z×65536", "BYPASS ", "BYPASS search s=c"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("answers (-want +got):\n%s", diff)
	}
	if st := e.fast.Stats(); st.Served-before.Served != 5 || st.Handed != before.Handed {
		t.Errorf("hitfront stats %+v -> %+v, want 5 served by the fast path", before, st)
	}
}

// TestOutRequestReuse: the request sent to a node is reused from one
// forwarded request to the next (forwardAs): nothing of one request's
// header reaches the node with the next, on the fast path and through
// net/http alike.
func TestOutRequestReuse(t *testing.T) {
	var (
		mu   sync.Mutex
		seen []string
	)
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.RequestURI+" x-one="+r.Header.Get("X-One")+" x-two="+r.Header.Get("X-Two")+" xfh="+r.Header.Get("X-Forwarded-Host"))
		mu.Unlock()
		io.WriteString(w, "ok")
	}))
	defer node.Close()
	e, err := New(api.EdgeSpec{ID: "edge-1", Addr: "127.0.0.1:0", Cache: &api.CacheSpec{Enabled: true, DefaultTTL: "1h"}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	e.SetUpstreams([]api.Upstream{{ID: "node-1", Addr: strings.TrimPrefix(node.URL, "http://")}})
	front := fastFront(t, e)
	bypass := "wordpress_logged_in_x=1"
	for _, via := range []string{front, "net/http"} {
		for i, h := range []struct{ name, host string }{{"X-One", "a.test"}, {"X-Two", "b.test"}, {"", "c.test"}} {
			req := httptest.NewRequest("GET", "http://"+h.host+"/p"+strconv.Itoa(i), nil)
			req.Header.Set("Cookie", bypass)
			if h.name != "" {
				req.Header.Set(h.name, "set")
			}
			if via == "net/http" {
				req.RemoteAddr = "127.0.0.1:5555"
				e.ServeHTTP(httptest.NewRecorder(), req)
				continue
			}
			req.RequestURI = ""
			req.URL.Host = strings.TrimPrefix(front, "http://")
			req.Host = h.host
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	one := []string{
		"GET /p0 x-one=set x-two= xfh=a.test",
		"GET /p1 x-one= x-two=set xfh=b.test",
		"GET /p2 x-one= x-two= xfh=c.test",
	}
	if diff := cmp.Diff(append(one, one...), seen); diff != "" {
		t.Errorf("what the node got (-want +got):\n%s", diff)
	}
	if e.fast.Stats().Served != 3 {
		t.Errorf("fast path served %d, want 3", e.fast.Stats().Served)
	}
}
