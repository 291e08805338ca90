package edge

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/scalepress/scalepress/internal/api"
)

// TestServesWhileControllerIsGone: an edge that polled a node set keeps
// serving with it when the controller stops answering (an error status, or
// a connection dropped as by a dead host): with the edges on Nomad the
// controller may be gone for good, and the site must not go with it.
func TestServesWhileControllerIsGone(t *testing.T) {
	tests := []struct {
		name string
		fail func(http.ResponseWriter)
	}{
		{"error status", func(w http.ResponseWriter) { http.Error(w, "controller stopping", http.StatusServiceUnavailable) }},
		{"connection dropped", func(w http.ResponseWriter) {
			c, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				c.Close()
			}
		}},
		{"empty answer", func(w http.ResponseWriter) { w.WriteHeader(http.StatusOK) }},
		// A controller started again answers before its node group
		// published anything: generation 0 is no set, not an empty one.
		{"nothing published yet", func(w http.ResponseWriter) { json.NewEncoder(w).Encode(api.Upstreams{Nodes: []api.Upstream{}}) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			node := backend(t, "a")
			var dead atomic.Bool
			failed, served := make(chan struct{}, 100), make(chan struct{}, 100)
			ctl := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if dead.Load() {
					tt.fail(w)
					select {
					case failed <- struct{}{}:
					default:
					}
					return
				}
				json.NewEncoder(w).Encode(api.Upstreams{Generation: 1, Nodes: []api.Upstream{{ID: "a", Addr: strings.TrimPrefix(node.URL, "http://")}}})
				select {
				case served <- struct{}{}:
				default:
				}
			}))
			defer ctl.Close()
			e, err := New(api.EdgeSpec{ID: "edge-1", Region: "default", Addr: "127.0.0.1:0", UpstreamsURL: ctl.URL, Cache: &api.CacheSpec{Enabled: false}}, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			wg.Go(func() { e.poll(ctx) })
			defer func() { cancel(); wg.Wait() }()
			s := httptest.NewServer(e)
			defer s.Close()
			// Polls are sequential: the second one asked means the first
			// answer is applied.
			<-served
			<-served
			dead.Store(true)
			for range 3 { // three polls the controller did not answer
				<-failed
			}
			for i := range 5 {
				resp, body := get(t, s.URL+"/?s=term", "site.test")
				if resp.StatusCode != http.StatusOK || !strings.HasPrefix(body, "a ") {
					t.Fatalf("request %d with the controller gone: %d %q, want 200 from node a", i, resp.StatusCode, body)
				}
			}
			if g := e.generation.Load(); g != 1 {
				t.Errorf("generation %d after the controller stopped answering, want 1", g)
			}
		})
	}
}

// TestRestartKeepsUpstreams: an edge that keeps its node set in a file
// (KeepUpstreams) and is restarted while no controller answers serves the
// nodes it knew; without a kept set, or with an unreadable one, it has
// none.
func TestRestartKeepsUpstreams(t *testing.T) {
	node := backend(t, "a")
	served := make(chan struct{}, 100)
	ctl := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(api.Upstreams{Generation: 3, Nodes: []api.Upstream{{ID: "a", Addr: strings.TrimPrefix(node.URL, "http://")}}})
		select {
		case served <- struct{}{}:
		default:
		}
	}))
	path := filepath.Join(t.TempDir(), "upstreams.json")
	open := func() *os.File {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	spec := api.EdgeSpec{ID: "edge-1", Region: "default", Addr: "127.0.0.1:0", UpstreamsURL: ctl.URL, Cache: &api.CacheSpec{Enabled: false}}
	first, err := New(spec, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	first.KeepUpstreams(open())
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { first.poll(ctx) })
	<-served
	<-served // the first answer is applied, and kept
	cancel()
	wg.Wait()
	ctl.Close() // the controller is gone

	restarted := func() (int, string) {
		e, err := New(spec, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		e.KeepUpstreams(open())
		s := httptest.NewServer(e)
		defer s.Close()
		resp, body := get(t, s.URL+"/?s=term", "site.test")
		if g := e.generation.Load(); g != 0 {
			t.Errorf("a kept set applied as generation %d: it must not be acknowledged as the controller's", g)
		}
		return resp.StatusCode, body
	}
	if code, body := restarted(); code != http.StatusOK || !strings.HasPrefix(body, "a ") {
		t.Errorf("restarted with the kept set and no controller: %d %q, want 200 from node a", code, body)
	}
	if err := os.WriteFile(path, []byte(`{"generation": 3, "nodes": [{"id": "a", "addr`), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _ := restarted(); code != http.StatusServiceUnavailable {
		t.Errorf("restarted with a torn kept file: %d, want 503 (no node set)", code)
	}
}
