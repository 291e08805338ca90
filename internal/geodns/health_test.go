package geodns

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/scalepress/scalepress/internal/api"
)

func TestObserve(t *testing.T) {
	type state struct {
		Up     bool
		Streak int
	}
	tests := []struct {
		name    string
		results []bool // probe results in order, from healthy
		want    []state
	}{
		{name: "good stays up", results: []bool{true, true}, want: []state{{true, 0}, {true, 0}}},
		{name: "one failure is forgiven", results: []bool{false, true, false}, want: []state{{true, 1}, {true, 0}, {true, 1}}},
		{name: "fall 2 takes it down", results: []bool{false, false}, want: []state{{true, 1}, {false, 0}}},
		{name: "rise 2 brings it back", results: []bool{false, false, true, false, true, true}, want: []state{{true, 1}, {false, 0}, {false, 1}, {false, 0}, {false, 1}, {true, 0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up, streak := true, 0
			var got []state
			for _, ok := range tt.results {
				up, streak = observe(up, streak, ok, 2, 2)
				got = append(got, state{up, streak})
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("states (-want +got):\n%s", diff)
			}
		})
	}
}

// scriptedProber answers from a per-address script of results, one per
// call; past the end, the last result repeats. A "hang" result blocks
// until the probe's context ends.
type scriptedProber struct {
	mu     sync.Mutex
	script map[string][]string
	calls  map[string]int
}

func (p *scriptedProber) Probe(ctx context.Context, addr string) error {
	p.mu.Lock()
	s := p.script[addr]
	i := min(p.calls[addr], len(s)-1)
	p.calls[addr]++
	p.mu.Unlock()
	switch s[i] {
	case "ok":
		return nil
	case "hang":
		<-ctx.Done()
		return ctx.Err()
	default:
		return context.DeadlineExceeded
	}
}

// TestCheckerTiming runs the checker on synctest's fake clock: a check at
// once and every 2 s, fall and rise 2, a hanging probe cut at the 1 s
// timeout.
func TestCheckerTiming(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		edges := []edgeInfo{
			{region: 0, addr: netip.MustParseAddr("192.0.2.1"), healthAddr: "a:80", weight: 1},
			{region: 1, addr: netip.MustParseAddr("192.0.2.2"), healthAddr: "b:80", weight: 1},
			{region: 1, addr: netip.MustParseAddr("192.0.2.3"), weight: 1}, // not probed
		}
		prober := &scriptedProber{
			script: map[string][]string{
				"a:80": {"ok", "fail", "fail", "ok", "ok"},
				"b:80": {"hang", "hang", "ok"},
			},
			calls: map[string]int{},
		}
		type event struct {
			At time.Duration
			Up []bool
		}
		var mu sync.Mutex
		var events []event
		start := time.Now()
		cfg := DefaultConfig().Health
		c := newChecker(cfg, edges, []string{"r0", "r1", "r1"}, prober, realClock{}, slog.New(slog.DiscardHandler), func(up []bool) {
			mu.Lock()
			defer mu.Unlock()
			events = append(events, event{time.Since(start), up})
		})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			c.run(ctx)
			close(done)
		}()
		time.Sleep(11 * time.Second)
		synctest.Wait()
		cancel()
		<-done

		// Rounds start at 0, 2, 4, 6, 8, 10 s; a round with a hanging probe
		// ends 1 s later. a: ok, fail, fail (down at the 4 s round), ok, ok
		// (up at 8 s). b: hang, hang (down at the 2 s round, ending 3 s),
		// ok, ok (up at 6 s).
		want := []event{
			{3 * time.Second, []bool{true, false, true}},
			{4 * time.Second, []bool{false, false, true}},
			{6 * time.Second, []bool{false, true, true}},
			{8 * time.Second, []bool{true, true, true}},
		}
		mu.Lock()
		defer mu.Unlock()
		if diff := cmp.Diff(want, events); diff != "" {
			t.Errorf("published (-want +got):\n%s", diff)
		}
	})
}

func TestCheckerWithoutProbedEdgesReturns(t *testing.T) {
	edges := []edgeInfo{{addr: netip.MustParseAddr("192.0.2.1"), weight: 1}}
	c := newChecker(DefaultConfig().Health, edges, []string{"r"}, &scriptedProber{}, realClock{}, slog.New(slog.DiscardHandler), func([]bool) {})
	c.run(t.Context()) // returns at once: nothing to probe
}

func TestHTTPProber(t *testing.T) {
	status := http.StatusOK
	var mu sync.Mutex
	var gotPath string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		gotPath = r.URL.Path
		w.WriteHeader(status)
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	p := NewHTTPProber("")

	tests := []struct {
		name    string
		status  int
		addr    string
		wantErr string
	}{
		{name: "200", status: http.StatusOK, addr: addr},
		{name: "204", status: http.StatusNoContent, addr: addr},
		{name: "503", status: http.StatusServiceUnavailable, addr: addr, wantErr: "status 503"},
		{name: "redirect is not healthy", status: http.StatusFound, addr: addr, wantErr: "status 302"},
		{name: "nothing listening", status: http.StatusOK, addr: "127.0.0.1:1", wantErr: "connect"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			status = tt.status
			mu.Unlock()
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			err := p.Probe(ctx, tt.addr)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Probe: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Probe: %v, want an error with %q", err, tt.wantErr)
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if gotPath != api.EdgePathHealth {
		t.Errorf("probed %q, want %q", gotPath, api.EdgePathHealth)
	}
}
