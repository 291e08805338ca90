package nodegroup

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scalepress/scalepress/internal/api"
)

func state(h *harness, id string) string {
	for _, n := range h.g.Nodes() {
		if n.ID == id {
			return n.State
		}
	}
	return ""
}

// TestLaunchPendingWarmingInService: a node is pending until its agent
// answers, warming while it is primed with the edge's top paths (not when
// no node serves yet: a cold node then beats none), and in service
// (published to the edges) after that.
func TestLaunchPendingWarmingInService(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.Scaling.Count = 1
		h := newHarness(t, cfg, nil)
		h.p.set(func(p *fakeProber) { p.notUp["node-1"] = true })
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		started := make(chan error, 1)
		go func() { started <- h.g.Start(ctx) }()

		time.Sleep(5 * time.Second)
		synctest.Wait()
		if got := state(h, "node-1"); got != api.NodePending {
			t.Fatalf("node-1 is %s while its agent does not answer, want pending", got)
		}
		if h.edges.last() != nil {
			t.Errorf("published %v before any node was in service", h.edges.last())
		}
		h.p.set(func(p *fakeProber) { p.notUp["node-1"] = false })
		if err := <-started; err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"node-1=in-service"}, h.states()); diff != "" {
			t.Error(diff)
		}
		if diff := cmp.Diff([]string{"node-1"}, h.edges.last()); diff != "" {
			t.Errorf("published set: %s", diff)
		}
		if got := h.p.warmed["node-1"]; len(got) != 0 {
			t.Errorf("the first node was warmed with %q before any node served, want no warm-up", got)
		}
		if err := <-h.g.launch(ctx, "test"); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"/", "/wp-login.php", "/hello-world/"}, h.p.warmed["node-2"]); diff != "" {
			t.Errorf("node-2, launched with node-1 in service, warmed with: %s", diff)
		}
		want := []string{
			"node-1: launching at 127.0.1.1:8080 (initial group)",
			"node-1: pending → warming",
			"node-1: warming → in-service",
		}
		if diff := cmp.Diff(want, h.events.find("node", "node-1")); diff != "" {
			t.Errorf("events: %s", diff)
		}
	})
}

// TestWarmingWaitsForFiles: a warming node goes in service only once its
// docroot applied every change the files store had.
func TestWarmingWaitsForFiles(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.Scaling.Count = 1
		h := newHarness(t, cfg, func(context.Context) (uint64, error) { return 5, nil })
		h.p.set(func(p *fakeProber) { p.reports["node-1"] = Report{PHPOK: true, FilesReady: true, FilesSeq: 3} })
		started := make(chan error, 1)
		go func() { started <- h.g.Start(t.Context()) }()
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if got := state(h, "node-1"); got != api.NodeWarming {
			t.Fatalf("node-1 at files seq 3 of 5 is %s, want warming", got)
		}
		h.p.set(func(p *fakeProber) { p.reports["node-1"] = Report{PHPOK: true, FilesReady: true, FilesSeq: 5} })
		if err := <-started; err != nil {
			t.Fatal(err)
		}
		if got := state(h, "node-1"); got != api.NodeInService {
			t.Errorf("node-1 at files seq 5 of 5 is %s, want in-service", got)
		}
	})
}

// TestWarmAfterFiles: a new node is warmed only once its docroot holds the
// store's files (a docroot bootstrapped from the store, ADR 29, is empty
// when the node first answers: warming it then would prime nothing).
func TestWarmAfterFiles(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.Scaling.Count = 1
		h := newHarness(t, cfg, func(context.Context) (uint64, error) { return 5, nil })
		h.p.set(func(p *fakeProber) { p.reports["node-1"] = Report{PHPOK: true, FilesReady: true, FilesSeq: 5} })
		if err := h.g.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		h.p.set(func(p *fakeProber) { p.reports["node-2"] = Report{PHPOK: true, FilesReady: false} })
		done := h.g.launch(t.Context(), "test")
		time.Sleep(10 * time.Second)
		synctest.Wait()
		h.p.set(func(p *fakeProber) {
			if got := p.warmed["node-2"]; len(got) != 0 {
				t.Errorf("node-2 warmed with %q before its docroot was bootstrapped", got)
			}
			p.reports["node-2"] = Report{PHPOK: true, FilesReady: true, FilesSeq: 5}
		})
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		h.p.set(func(p *fakeProber) {
			if len(p.warmed["node-2"]) == 0 || p.warmedAt["node-2"] != 5 {
				t.Errorf("node-2 warmed with %q at files seq %d, want warmed at 5", p.warmed["node-2"], p.warmedAt["node-2"])
			}
		})
	})
}

// TestFilesNotInSyncFails: a node whose docroot does not catch up within
// FilesTimeout fails and is stopped.
func TestFilesNotInSyncFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.Scaling.Count = 1
		h := newHarness(t, cfg, func(context.Context) (uint64, error) { return 5, nil })
		h.p.set(func(p *fakeProber) { p.reports["node-1"] = Report{PHPOK: true, FilesReady: false} })
		err := h.g.Start(t.Context())
		if err == nil || !strings.Contains(err.Error(), "files not in sync after 1m0s: docroot not bootstrapped yet") {
			t.Fatalf("start: %v", err)
		}
		if got := state(h, "node-1"); got != api.NodeFailed {
			t.Errorf("node-1 is %s, want failed", got)
		}
		if diff := cmp.Diff([]string{"node-1"}, h.l.stops()); diff != "" {
			t.Errorf("stopped: %s", diff)
		}
	})
}

// TestPendingExitFails: a node whose processes exit before it answers
// fails at once, naming why, instead of waiting for ReadyTimeout.
func TestPendingExitFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.Scaling.Count = 1
		h := newHarness(t, cfg, nil)
		h.p.set(func(p *fakeProber) { p.notUp["node-1"] = true })
		started := make(chan error, 1)
		go func() { started <- h.g.Start(t.Context()) }()
		time.Sleep(time.Second)
		h.l.kill("node-1")
		t0 := time.Now()
		err := <-started
		if err == nil || !strings.Contains(err.Error(), "node-1 exited while starting: killed by the test") {
			t.Fatalf("start: %v", err)
		}
		if took := time.Since(t0); took > time.Second {
			t.Errorf("noticed the exit after %s", took)
		}
	})
}

// TestLaunchErrorFails: a launcher that cannot start the node fails it.
func TestLaunchErrorFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.Scaling.Count = 1
		h := newHarness(t, cfg, nil)
		h.l.fail["node-1"] = errors.New("no such binary")
		if err := h.g.Start(t.Context()); err == nil || !strings.Contains(err.Error(), "node-1: no such binary") {
			t.Fatalf("start: %v", err)
		}
		if got := state(h, "node-1"); got != api.NodeFailed {
			t.Errorf("node-1 is %s, want failed", got)
		}
	})
}

// TestHealthFailuresReplace: a node in service that fails FailAfter
// reports in a row is failed, stopped and replaced by a new node.
func TestHealthFailuresReplace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, testConfig(), nil)
		h.start(t)
		defer h.stop(t)
		h.p.set(func(p *fakeProber) { p.sick["node-1"] = true })
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if got := state(h, "node-1"); got != api.NodeInService {
			t.Fatalf("node-1 after 10 failed reports is %s, want still in service", got)
		}
		waitFor(t, h, "a replacement in service", 20*time.Second, func() bool {
			return h.l.launches() == 3 && len(h.g.InService()) == 2
		})
		if diff := cmp.Diff([]string{"node-1"}, h.l.stops()); diff != "" {
			t.Errorf("stopped: %s", diff)
		}
		if got := h.events.find("node", "health checks failed in a row)"); len(got) != 1 {
			t.Errorf("failure events: %v", got)
		}
		if got := h.events.find("heal", "node-1 failed: stopping it and launching a replacement"); len(got) != 1 {
			t.Errorf("heal events: %v", got)
		}
		if got := h.edges.last(); len(got) != 2 {
			t.Errorf("published set: %v", got)
		}
	})
}

// TestProcessExitReplaces: a node in service whose process exits is failed
// and replaced at the next reconcile.
func TestProcessExitReplaces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, testConfig(), nil)
		h.start(t)
		defer h.stop(t)
		h.l.kill("node-2")
		took := waitFor(t, h, "node-2 replaced", 10*time.Second, func() bool {
			return h.l.launches() == 3 && len(h.g.InService()) == 2
		})
		if diff := cmp.Diff([]string{"node-2"}, h.l.stops()); diff != "" {
			t.Errorf("stopped: %s\n%v\n%v", diff, h.events.all, h.states())
		}
		if took > 2*time.Second {
			t.Errorf("replaced after %s, want within two reconciles", took)
		}
		if got := h.events.find("node", "node-2: in-service → failed (process exited)"); len(got) != 1 {
			t.Errorf("failure events: %v", got)
		}
	})
}

// TestReplacementBudget: at most MaxReplacements per ReplacementWindow;
// a failed node beyond that keeps its place (no launch) until the window
// lets it go, and the deferral is recorded once.
func TestReplacementBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.Scaling.Count = 3
		cfg.MaxReplacements, cfg.ReplacementWindow = 1, 30*time.Second
		h := newHarness(t, cfg, nil)
		h.start(t)
		defer h.stop(t)
		h.l.kill("node-1")
		h.l.kill("node-2")
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if got := state(h, "node-2"); got != "failed" || h.l.launches() != 4 || len(h.g.InService()) != 2 {
			t.Fatalf("after two failures with a budget of one: %v, %d launches", h.states(), h.l.launches())
		}
		if got := h.events.find("heal", "node-2: replacement deferred: failed"); len(got) != 1 {
			t.Errorf("deferral events: %v", got)
		}
		took := waitFor(t, h, "node-2 replaced once the window passed", 40*time.Second, func() bool {
			return h.l.launches() == 5 && len(h.g.InService()) == 3
		})
		if took < 20*time.Second {
			t.Errorf("node-2 replaced %s after the deferral, before the window", took)
		}
		if diff := cmp.Diff([]string{"node-1", "node-2"}, h.l.stops()); diff != "" {
			t.Errorf("stopped: %s", diff)
		}
	})
}

// TestScaleOut: load above the target adds nodes at once.
func TestScaleOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.Scaling.Enabled = true
		h := newHarness(t, cfg, nil)
		h.start(t)
		defer h.stop(t)
		h.p.set(func(p *fakeProber) {
			p.reports["node-1"] = Report{PHPOK: true, FilesReady: true, Utilization: 0.9}
			p.reports["node-2"] = Report{PHPOK: true, FilesReady: true, Utilization: 0.9}
		})
		waitFor(t, h, "3 nodes in service", 5*time.Second, func() bool { return len(h.g.InService()) == 3 })
		if got := h.events.find("scale", "2 → 3 nodes"); len(got) != 1 {
			t.Errorf("scale events: %v", h.events.find("scale", ""))
		}
		if a := h.g.Autoscaling(); a.Desired != 3 {
			t.Errorf("desired %d, want 3", a.Desired)
		}
		want := map[DecisionKey]uint64{{Direction: "out", Reason: "scale-out"}: 1}
		if diff := cmp.Diff(want, h.g.Decisions()); diff != "" {
			t.Errorf("decisions (-want +got):\n%s", diff)
		}
	})
}

// TestScaleInDrainsNewestFirst: a scale-in drains the newest node in
// service; it is stopped only after every edge applied the set without it
// and its requests finished.
func TestScaleInDrainsNewestFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.Scaling.Enabled, cfg.Scaling.Count, cfg.Scaling.Min = true, 3, 2
		h := newHarness(t, cfg, nil)
		h.start(t)
		defer h.stop(t)
		h.edges.ack(h.edges.gen())
		h.p.set(func(p *fakeProber) {
			for _, id := range []string{"node-1", "node-2", "node-3"} {
				p.reports[id] = Report{PHPOK: true, FilesReady: true, Utilization: 0.1}
			}
			p.reports["node-3"] = Report{PHPOK: true, FilesReady: true, Utilization: 0.1, InFlight: 2}
		})
		waitFor(t, h, "node-3 draining", 15*time.Second, func() bool { return state(h, "node-3") == api.NodeDraining })
		if diff := cmp.Diff([]string{"node-1", "node-2"}, h.edges.last()); diff != "" {
			t.Errorf("published set while draining: %s", diff)
		}
		time.Sleep(3 * time.Second) // the edges have not acknowledged: AckTimeout (5 s) not over
		synctest.Wait()
		if got := state(h, "node-3"); got != api.NodeDraining {
			t.Fatalf("node-3 is %s before the edges acknowledged", got)
		}
		h.edges.ack(h.edges.gen())
		time.Sleep(2 * time.Second) // in flight: still 2
		synctest.Wait()
		if got := state(h, "node-3"); got != api.NodeDraining {
			t.Fatalf("node-3 is %s with requests in flight", got)
		}
		h.p.set(func(p *fakeProber) { p.reports["node-3"] = Report{PHPOK: true, FilesReady: true} })
		waitFor(t, h, "node-3 terminated", time.Second, func() bool { return state(h, "node-3") == api.NodeTerminated })
		if diff := cmp.Diff([]string{"node-3"}, h.l.stops()); diff != "" {
			t.Errorf("stopped: %s", diff)
		}
		if got := h.events.find("node", "node-3: drained and stopped"); len(got) != 1 {
			t.Errorf("drain events: %v", got)
		}
	})
}

// TestDrainIsBounded: edges that never acknowledge and requests that never
// finish hold a drain for AckTimeout + DeregistrationDelay, no longer.
func TestDrainIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.Scaling.Enabled, cfg.Scaling.Count = true, 2
		h := newHarness(t, cfg, nil)
		h.start(t)
		defer h.stop(t)
		h.p.set(func(p *fakeProber) {
			p.reports["node-1"] = Report{PHPOK: true, Utilization: 0.1}
			p.reports["node-2"] = Report{PHPOK: true, Utilization: 0.1, InFlight: 1}
		})
		waitFor(t, h, "node-2 draining", 15*time.Second, func() bool { return state(h, "node-2") == api.NodeDraining })
		took := waitFor(t, h, "node-2 terminated", time.Minute, func() bool { return state(h, "node-2") == api.NodeTerminated })
		bound := cfg.AckTimeout + cfg.DeregistrationDelay
		if took < bound-time.Second || took > bound+time.Second {
			t.Errorf("drain took %s, want about %s (AckTimeout + DeregistrationDelay)", took, bound)
		}
	})
}
