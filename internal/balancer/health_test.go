package balancer

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// runBalancer starts Run in the synctest bubble; the returned stop ends it
// and waits.
func runBalancer(t *testing.T, cfg Config, checker Checker, ids ...string) (*Balancer, func()) {
	t.Helper()
	b, err := New(cfg, checker, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	b.Update(ups(ids...))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- b.Run(ctx) }()
	synctest.Wait()
	return b, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run() = %v", err)
		}
	}
}

func TestActiveHealthChecks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		chk := newFakeChecker()
		b, stop := runBalancer(t, noSlowStart(), chk, "a", "b")
		defer stop()
		// Checks of a run at j, j+2s, j+4s… for some j in [0, 2s).
		chk.set("a:80", true)
		time.Sleep(1900 * time.Millisecond) // at most one failed check
		synctest.Wait()
		if got := states(b)["a"]; got != StateInService {
			t.Fatalf("after ≤1 failed check: a = %s", got)
		}
		time.Sleep(4600 * time.Millisecond) // t = 6.5s: at least 3
		synctest.Wait()
		if got := state(t, b, "a"); got.State != StateUnhealthy || got.LastCheck == "" {
			t.Fatalf("after 3 failed checks: a = %+v", got)
		}
		if diff := cmp.Diff([]string{"b"}, keys(pickCounts(t, b, 200))); diff != "" {
			t.Errorf("picks while a is unhealthy (-want +got):\n%s", diff)
		}
		chk.set("a:80", false)
		time.Sleep(2 * time.Second) // t = 8.5s: one good check
		synctest.Wait()
		if got := states(b)["a"]; got != StateUnhealthy {
			t.Fatalf("after 1 good check: a = %s, want rise 2", got)
		}
		time.Sleep(2 * time.Second) // t = 10.5s: two
		synctest.Wait()
		if got := states(b)["a"]; got != StateInService {
			t.Fatalf("after 2 good checks: a = %s", got)
		}
	})
}

func TestRunEndsSlowStartAndEjection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := DefaultConfig()
		satEject(1)(&cfg)
		b, stop := runBalancer(t, cfg, nil, "a", "b")
		defer stop()
		report(t, b, "a", Saturated)
		// No Pick from here: Run alone moves the states on.
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if got := b.view.Load(); len(got.ready) != 2 {
			t.Errorf("5s after the ejection: %d nodes ready, want 2", len(got.ready))
		}
		time.Sleep(25 * time.Second)
		synctest.Wait()
		if got := b.view.Load(); got.warming || got.expires != never {
			t.Errorf("after slow start: view warming=%v expires=%d", got.warming, got.expires)
		}
	})
}

func TestRunForgetsDrainedNodes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, stop := runBalancer(t, noSlowStart(), nil, "a", "b", "c")
		defer stop()
		na, _ := b.Pick("b", "c")
		nb, _ := b.Pick("a", "c")
		if err := b.Drain("c"); err != nil { // explicit: stays
			t.Fatal(err)
		}
		b.Update(ups("c")) // a and b drain
		synctest.Wait()
		na.Done(OK) // a drained: forgotten at once
		synctest.Wait()
		if diff := cmp.Diff(map[string]string{"b": StateDraining, "c": StateDrained}, states(b)); diff != "" {
			t.Fatalf("after a drained (-want +got):\n%s", diff)
		}
		time.Sleep(30 * time.Second) // the deregistration delay: b goes though busy
		synctest.Wait()
		if diff := cmp.Diff(map[string]string{"c": StateDrained}, states(b)); diff != "" {
			t.Fatalf("after the deregistration delay (-want +got):\n%s", diff)
		}
		nb.Done(OK)
	})
}

func TestRunOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, stop := runBalancer(t, DefaultConfig(), nil)
		defer stop()
		if err := b.Run(t.Context()); err == nil {
			t.Error("second Run() = nil, want an error")
		}
	})
}

func TestChecksStopForDrainingNodes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		chk := newFakeChecker()
		b, stop := runBalancer(t, noSlowStart(), chk, "a", "b")
		defer stop()
		time.Sleep(10 * time.Second)
		if err := b.Drain("a"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		chk.mu.Lock()
		before := chk.checks["a:80"]
		chk.mu.Unlock()
		time.Sleep(10 * time.Second)
		synctest.Wait()
		chk.mu.Lock()
		defer chk.mu.Unlock()
		if chk.checks["a:80"] != before || chk.checks["b:80"] < 9 {
			t.Errorf("checks: a %d → %d after Drain, b %d", before, chk.checks["a:80"], chk.checks["b:80"])
		}
	})
}

func TestHTTPChecker(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/_scalepress/health" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
	}))
	addr := srv.Listener.Addr().String()
	c := &HTTPChecker{Client: srv.Client(), Path: "/_scalepress/health"}
	tests := []struct {
		name   string
		status int
		close  bool
		ok     bool
	}{
		{name: "200", status: 200, ok: true},
		{name: "503", status: 503},
		{name: "down", close: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status = tt.status
			if tt.close {
				srv.Close()
			}
			err := c.Check(t.Context(), addr)
			if (err == nil) != tt.ok {
				t.Errorf("Check() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
