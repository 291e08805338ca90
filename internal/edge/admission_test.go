package edge

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scalepress/scalepress/internal/api"
)

// With every PHP worker of the node busy and the edge's queue full, an
// uncached request is answered at once: a page the cache holds from its
// stale copy (STALE), anything else with 503 and Retry-After. Cache hits
// never wait; another client still gets a place in the queue.
func TestAdmissionStaleOr503(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan string, 16)
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/page/", "/hit/":
			w.Header().Set("Cache-Control", "public, s-maxage=60")
			io.WriteString(w, "page "+r.URL.Path)
			return
		}
		arrived <- r.URL.RawQuery
		<-release
		io.WriteString(w, "search "+r.URL.RawQuery)
	}))
	t.Cleanup(node.Close)
	s := newEdgeSpec(t, api.EdgeSpec{ID: "edge-1", Addr: "127.0.0.1:0", PurgeSecret: "s3cret",
		HTTP:  api.HTTPSpec{TrustedProxies: []string{"127.0.0.1/32"}, NodeLimit: 1, QueueBacklog: 1, QueueTimeout: "1m"},
		Cache: &api.CacheSpec{Enabled: true, DefaultTTL: "1m"}}, node)
	// Before the servers close (cleanups run last first): they wait for
	// the requests the node holds.
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	do := func(method, path, client, body string) (*http.Response, string) {
		req, _ := http.NewRequest(method, s.URL+path, strings.NewReader(body))
		req.Header.Set("X-Forwarded-For", client)
		if body != "" {
			req.Header.Set("Authorization", "Bearer s3cret")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return &http.Response{Header: http.Header{}}, ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	for _, p := range []string{"/page/", "/hit/"} {
		if resp, _ := do("GET", p, "203.0.113.1", ""); resp.StatusCode != 200 || resp.Header.Get(api.HeaderCache) != "MISS" {
			t.Fatalf("priming %s: %d %s", p, resp.StatusCode, resp.Header.Get(api.HeaderCache))
		}
	}
	// A soft purge: the next request for /page/ must go to the node, and
	// may fall back on the purged copy when none can answer.
	if resp, _ := do("POST", api.EdgePathPurge, "203.0.113.1", `{"urls":["`+s.URL+`/page/"],"soft":true}`); resp.StatusCode != 200 {
		t.Fatalf("purge: %d", resp.StatusCode)
	}

	var wg sync.WaitGroup
	results := make(chan string, 4)
	wg.Go(func() { _, b := do("GET", "/?s=busy", "203.0.113.1", ""); results <- b })
	if q := <-arrived; q != "s=busy" {
		t.Fatalf("node got %q first", q)
	}
	// The node's only worker is busy: this one waits in the queue...
	wg.Go(func() { _, b := do("GET", "/?s=queued", "203.0.113.1", ""); results <- b })
	waitFor(t, func() bool {
		return strings.Contains(scrapeURL(t, s.URL), `scalepress_edge_queue_waiting{edge="edge-1"} 1`)
	})

	// ...and the queue is full: the same client's next requests are refused at once.
	resp, body := do("GET", "/?s=refused", "203.0.113.1", "")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || strings.Count(body, "\n") != 1 {
		t.Errorf("uncached over the queue: %d Retry-After %q %q; want a one-line 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	resp, body = do("GET", "/page/", "203.0.113.1", "")
	if resp.StatusCode != 200 || resp.Header.Get(api.HeaderCache) != "STALE" || body != "page /page/" {
		t.Errorf("purged page over the queue: %d X-Cache %q %q; want 200 STALE from the old copy", resp.StatusCode, resp.Header.Get(api.HeaderCache), body)
	}
	if resp, _ := do("GET", "/hit/", "203.0.113.1", ""); resp.StatusCode != 200 || resp.Header.Get(api.HeaderCache) != "HIT" {
		t.Errorf("cache hit while PHP is saturated: %d %s, want 200 HIT", resp.StatusCode, resp.Header.Get(api.HeaderCache))
	}
	// Another client takes the place of the first one's newest waiter.
	wg.Go(func() { _, b := do("GET", "/?s=other", "203.0.113.2", ""); results <- b })
	if b := <-results; !strings.HasPrefix(b, "503 service unavailable: every node is busy") {
		t.Errorf("first client's waiter, dropped for the other client: %q, want the 503", b)
	}
	close(release)
	wg.Wait()
	close(results)
	var got []string
	for b := range results {
		got = append(got, b)
	}
	if strings.Join(got, "|") != "search s=busy|search s=other" && strings.Join(got, "|") != "search s=other|search s=busy" {
		t.Errorf("answers %q, want the busy request's and the other client's", got)
	}
	m := scrapeURL(t, s.URL)
	for _, want := range []string{
		`scalepress_edge_overload_refused_total{edge="edge-1",reason="queue_full"} 3`,
		`scalepress_edge_admitted_total{edge="edge-1",how="after_wait"} 1`,
		`scalepress_edge_queue_waiting{edge="edge-1"} 0`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s:\n%s", want, m)
		}
	}
}

func scrapeURL(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + api.EdgePathMetrics)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// waitFor polls cond until it holds (10 s at most: a hang, not a timing
// assertion).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
