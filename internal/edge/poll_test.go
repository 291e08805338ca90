package edge

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
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
