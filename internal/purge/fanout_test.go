package purge

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/config"
)

// edge is a purge endpoint that refuses the first fail requests, then
// answers that it purged 2 entries.
func edge(t *testing.T, token string, fail int32) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		if r.URL.Path != api.EdgePathPurge || r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, "wrong path or token", http.StatusUnauthorized)
			return
		}
		if b, _ := io.ReadAll(r.Body); string(b) != `{"all":true}` {
			http.Error(w, "body "+string(b), http.StatusBadRequest)
			return
		}
		if n <= fail {
			http.Error(w, "not now", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, `{"purged": 2}`)
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func TestFanoutAppliesAndRetries(t *testing.T) {
	const token = "edge-purge-token"
	up, _ := edge(t, token, 0)
	flaky, flakyCalls := edge(t, token, 1)
	type retried struct {
		edge  string
		tries int
	}
	done := make(chan retried, 1)
	f, err := New(Config{
		Edges: []config.Edge{
			{ID: "edge-1", Addr: strings.TrimPrefix(up.URL, "http://")},
			{ID: "edge-2", Addr: strings.TrimPrefix(flaky.URL, "http://")},
		},
		Token:     token,
		HTTP:      up.Client(),
		Logger:    slog.New(slog.DiscardHandler),
		OnRetried: func(edge string, tries int) { done <- retried{edge, tries} },
	})
	if err != nil {
		t.Fatal(err)
	}

	got := f.Purge(context.Background(), []byte(`{"all":true}`))
	want := api.PurgeResult{Applied: []string{"edge-1"}, Pending: []string{"edge-2"}, Purged: 2}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("Purge (-want +got):\n%s", diff)
	}

	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { defer close(stopped); f.Run(ctx) }()
	defer func() { cancel(); <-stopped }()
	if diff := cmp.Diff(retried{"edge-2", 1}, <-done, cmp.AllowUnexported(retried{})); diff != "" {
		t.Errorf("OnRetried (-want +got):\n%s", diff)
	}
	f.mu.Lock()
	left := len(f.pending)
	f.mu.Unlock()
	if left != 0 || flakyCalls.Load() != 2 {
		t.Errorf("after the retry: %d purges pending, the flaky edge was called %d times, want 0 and 2", left, flakyCalls.Load())
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"default", func(*Config) {}, ""},
		{"no client", func(c *Config) { c.HTTP = nil }, "purge: HTTP: no client"},
		{"no logger", func(c *Config) { c.Logger = nil }, "purge: Logger: no logger"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.change(&cfg)
			got := ""
			if err := cfg.Validate(); err != nil {
				got = err.Error()
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Validate (-want +got):\n%s", diff)
			}
		})
	}
}
