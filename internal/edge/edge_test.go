package edge

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/scalepress/scalepress/internal/api"
)

func backend(t *testing.T, name string) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(api.HeaderNode, name)
		io.WriteString(w, name+" host="+r.Host+" xff="+r.Header.Get("X-Forwarded-For")+" proto="+r.Header.Get("X-Forwarded-Proto")+" xfh="+r.Header.Get("X-Forwarded-Host"))
	}))
	t.Cleanup(s.Close)
	return s
}

func newEdge(t *testing.T, debug bool, backends ...*httptest.Server) *httptest.Server {
	t.Helper()
	return newEdgeSpec(t, api.EdgeSpec{ID: "edge-1", Region: "default", Addr: "127.0.0.1:0", Debug: debug, Cache: &api.CacheSpec{Enabled: false}}, backends...)
}

func newEdgeSpec(t *testing.T, spec api.EdgeSpec, backends ...*httptest.Server) *httptest.Server {
	t.Helper()
	e, err := New(spec, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var ups []api.Upstream
	for i, b := range backends {
		ups = append(ups, api.Upstream{ID: string(rune('a' + i)), Addr: strings.TrimPrefix(b.URL, "http://")})
	}
	e.SetUpstreams(ups)
	if e.fast != nil {
		// As Run serves it: hitfront first, net/http behind it.
		return &httptest.Server{URL: fastFront(t, e)}
	}
	s := httptest.NewServer(e)
	t.Cleanup(s.Close)
	return s
}

func get(t *testing.T, url, host string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if host != "" {
		req.Host = host
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestProxy(t *testing.T) {
	a, b := backend(t, "a"), backend(t, "b")
	s := newEdge(t, false, a, b)
	seen := map[string]int{}
	for range 10 {
		resp, body := get(t, s.URL+"/hello/", "site.test:8080")
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if got := resp.Header.Get(api.HeaderCache); got != "BYPASS" {
			t.Errorf("X-Cache = %q", got)
		}
		if resp.Header.Get(api.HeaderNode) != "" {
			t.Error("node header reached the client")
		}
		for _, want := range []string{"host=site.test:8080", "xff=127.0.0.1", "proto=http", "xfh=site.test:8080"} {
			if !strings.Contains(body, want) {
				t.Errorf("backend saw %q, want %q", body, want)
			}
		}
		seen[body[:1]]++
	}
	if seen["a"] == 0 || seen["b"] == 0 {
		t.Errorf("one node got nothing: %v", seen)
	}
}

func failing(t *testing.T, status int, own bool) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if own {
			w.Header().Set(api.HeaderNodeError, "1")
		}
		w.WriteHeader(status)
		io.WriteString(w, "failing node")
	}))
	t.Cleanup(s.Close)
	return s
}

func TestRetries(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	tests := []struct {
		name     string
		backends []*httptest.Server
		method   string
		want     int
	}{
		{"GET after refused dial goes elsewhere", []*httptest.Server{dead, backend(t, "a")}, "GET", 200},
		{"POST after refused dial goes elsewhere (never sent)", []*httptest.Server{dead, backend(t, "a")}, "POST", 200},
		{"GET after the agent's own 502 goes elsewhere", []*httptest.Server{failing(t, 502, true), backend(t, "a")}, "GET", 200},
		{"POST after the agent's own 502 is not repeated", []*httptest.Server{failing(t, 502, true), failing(t, 502, true)}, "POST", 502},
		{"an application 500 is passed on", []*httptest.Server{failing(t, 500, false)}, "GET", 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newEdge(t, false, tt.backends...)
			for range 10 {
				var body io.Reader
				if tt.method == "POST" {
					body = strings.NewReader("body")
				}
				req, _ := http.NewRequest(tt.method, s.URL+"/x", body)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tt.want {
					t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
				}
				if resp.Header.Get(api.HeaderNodeError) != "" {
					t.Error("node error header reached the client")
				}
			}
		})
	}
}

func TestDebugKeepsNodeHeader(t *testing.T) {
	s := newEdge(t, true, backend(t, "a"))
	resp, _ := get(t, s.URL+"/", "")
	if resp.Header.Get(api.HeaderNode) != "a" {
		t.Errorf("debug edge dropped %s", api.HeaderNode)
	}
}

func TestEdgeErrors(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	tests := []struct {
		name     string
		backends []*httptest.Server
		path     string
		want     int
	}{
		{"no node", nil, "/", http.StatusServiceUnavailable},
		{"node down", []*httptest.Server{dead}, "/", http.StatusBadGateway},
		{"internal path not forwarded", []*httptest.Server{backend(t, "a")}, "/_scalepress/status", http.StatusNotFound},
		{"health", nil, api.EdgePathHealth, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newEdge(t, false, tt.backends...)
			resp, _ := get(t, s.URL+tt.path, "")
			if resp.StatusCode != tt.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.want)
			}
			if resp.Header.Get(api.HeaderCache) != "BYPASS" {
				t.Errorf("X-Cache missing on %d", resp.StatusCode)
			}
		})
	}
}

func TestCacheAndPurge(t *testing.T) {
	var hits int
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		w.Header().Set("Content-Type", "text/html; charset=UTF-8")
		w.Header().Set(api.HeaderTags, "post-1 home")
		io.WriteString(w, "<html>page "+strings.Repeat("x", 2000)+"</html>")
	}))
	defer origin.Close()
	s := newEdgeSpec(t, api.EdgeSpec{ID: "edge-1", Addr: "127.0.0.1:0", PurgeSecret: "s3cret", Cache: &api.CacheSpec{Enabled: true, DefaultTTL: "1m"}}, origin)
	steps := []struct {
		name   string
		cookie string
		want   string
	}{
		{"first is a miss", "", "MISS"},
		{"second is a hit", "", "HIT"},
		{"logged in bypasses", "wordpress_logged_in_abc=1", "BYPASS"},
		{"analytics cookie still hits", "_ga=1", "HIT"},
	}
	for _, st := range steps {
		req, _ := http.NewRequest("GET", s.URL+"/hello/", nil)
		if st.cookie != "" {
			req.Header.Set("Cookie", st.cookie)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if got := resp.Header.Get(api.HeaderCache); got != st.want {
			t.Errorf("%s: X-Cache %q, want %q", st.name, got, st.want)
		}
		if resp.Header.Get(api.HeaderTags) != "" {
			t.Errorf("%s: tag header reached the client", st.name)
		}
	}
	purge := func(auth, body string) int {
		req, _ := http.NewRequest("POST", s.URL+api.EdgePathPurge, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := purge("", `{"tags":["post-1"]}`); code != 401 {
		t.Errorf("purge without token: %d", code)
	}
	if code := purge("wrong", `{"tags":["post-1"]}`); code != 401 {
		t.Errorf("purge with a wrong token: %d", code)
	}
	if code := purge("s3cret", `{"tags":["bad tag!"]}`); code != 400 {
		t.Errorf("purge of a bad tag: %d", code)
	}
	before := hits
	if code := purge("s3cret", `{"tags":["post-1"], "soft": false}`); code != 200 {
		t.Fatalf("purge: %d", code)
	}
	resp, _, _ := func() (*http.Response, string, error) {
		resp, err := http.Get(s.URL + "/hello/")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		return resp, "", nil
	}()
	if resp.Header.Get(api.HeaderCache) != "MISS" || hits != before+1 {
		t.Errorf("after a hard purge: X-Cache %q, origin hits %d -> %d", resp.Header.Get(api.HeaderCache), before, hits)
	}
}
