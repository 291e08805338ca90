package nodegroup

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/autoscale"
)

// TestPolicySlotted is the policy over a Slotted launcher (Nomad): its
// scheduler stops the highest slots and refills a failed one in place.
func TestPolicySlotted(t *testing.T) {
	fixed := func(n int) Scaling {
		return Scaling{Count: n, Min: 1, Max: 6, Target: 0.6, ScaleInWindow: 10 * time.Second, MaxStep: 4}
	}
	tests := []struct {
		name   string
		count  int
		budget int
		spent  int
		nodes  []Member
		want   Plan
	}{
		{
			name: "scale-in drains the highest slots, starting or not", count: 2, budget: 3,
			nodes: []Member{member(1, api.NodeInService), member(2, api.NodeInService), member(3, api.NodeInService), member(4, api.NodePending)},
			want:  Plan{Desired: 2, Drain: []Change{{ID: "node-4", Reason: "scale-in to 2"}, {ID: "node-3", Reason: "scale-in to 2"}}},
		},
		{
			name: "a failed node in a highest slot: no drain, no drop (wait for its refill)", count: 2, budget: 1, spent: 1,
			nodes: []Member{member(1, api.NodeInService), member(2, api.NodeInService), member(3, api.NodeFailed)},
			want:  Plan{Desired: 2, Deferred: []Change{{ID: "node-3"}}},
		},
		{
			name: "a failed node in a lower slot: the highest drains, the failed one stays", count: 2, budget: 1, spent: 1,
			nodes: []Member{member(1, api.NodeFailed), member(2, api.NodeInService), member(3, api.NodeInService)},
			want:  Plan{Desired: 2, Deferred: []Change{{ID: "node-1"}}, Drain: []Change{{ID: "node-3", Reason: "scale-in to 2"}}},
		},
		{
			name: "a failure is replaced in its slot: no launch at a new index", count: 2, budget: 3,
			nodes: []Member{member(1, api.NodeInService), member(2, api.NodeInService, dead)},
			want: Plan{Desired: 2,
				Fail:    []Change{{ID: "node-2", Reason: "process exited"}},
				Replace: []Change{{ID: "node-2"}}},
		},
		{
			name: "a node being replaced keeps its slot", count: 2, budget: 3,
			nodes: []Member{member(1, api.NodeInService), member(2, api.NodeFailed, replacing)},
			want:  Plan{Desired: 2},
		},
		{
			name: "no new slot while a node drains", count: 3, budget: 3,
			nodes: []Member{member(1, api.NodeInService), member(2, api.NodeInService), member(3, api.NodeDraining)},
			want:  Plan{Desired: 3},
		},
		{
			name: "a new slot once nothing drains", count: 3, budget: 3,
			nodes: []Member{member(1, api.NodeInService), member(2, api.NodeInService), member(3, api.NodeTerminated)},
			want:  Plan{Desired: 3, Launch: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := newPolicy(Config{FailAfter: 15, MaxReplacements: tt.budget, ReplacementWindow: time.Minute, Scaling: fixed(tt.count)}, true)
			if err != nil {
				t.Fatal(err)
			}
			for i := range tt.spent {
				p.healer.Decide(now0, []autoscale.NodeHealth{{ID: "spent-" + nodeID(i), Condition: autoscale.Failed}})
			}
			got := p.decide(now0, tt.nodes)
			opts := []cmp.Option{
				cmpopts.IgnoreFields(Plan{}, "Scale"),
				cmpopts.EquateEmpty(),
				cmp.FilterPath(func(p cmp.Path) bool {
					return p.Last().String() == ".Reason" && len(p) > 2 && (p.Index(1).String() == ".Replace" || p.Index(1).String() == ".Deferred")
				}, cmp.Ignore()),
			}
			if diff := cmp.Diff(tt.want, got, opts...); diff != "" {
				t.Error(diff)
			}
		})
	}
}

// TestSlottedFailureReplacedInPlace: a node whose processes exit is failed
// once (Fail, never Stop: its slot stays) and relaunched with its own id;
// the scheduler's choices and the group's never differ.
func TestSlottedFailureReplacedInPlace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.Scaling.Count = 3
		sl := newSlotLauncher()
		h := newHarnessWith(t, cfg, nil, sl)
		h.start(t)
		defer h.stop(t)
		h.l.kill("node-2")
		waitFor(t, h, "node-2 back in service", 10*time.Second, func() bool {
			return h.l.launches() == 4 && len(h.g.InService()) == 3
		})
		failed, mismatches := sl.report()
		if diff := cmp.Diff([]string{"node-2"}, failed); diff != "" {
			t.Errorf("failed: %s", diff)
		}
		if len(h.l.stops()) != 0 || len(mismatches) != 0 {
			t.Errorf("stops %v, mismatches %v", h.l.stops(), mismatches)
		}
		if got := h.l.launched[3]; got != "node-2" {
			t.Errorf("the replacement is %s, want node-2 in its slot", got)
		}
	})
}

// TestSlottedScaleInAndOut: the group shrinks from the highest slot, holds
// a scale-out while a node drains, then grows into the next slot; the
// scheduler's choices and the group's never differ.
func TestSlottedScaleInAndOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.Scaling.Enabled, cfg.Scaling.Count, cfg.Scaling.Min = true, 3, 1
		sl := newSlotLauncher()
		h := newHarnessWith(t, cfg, nil, sl)
		h.start(t)
		defer h.stop(t)
		h.edges.ack(1 << 30) // every generation applied
		h.p.set(func(p *fakeProber) {
			for _, id := range []string{"node-1", "node-2", "node-3"} {
				p.reports[id] = Report{PHPOK: true, FilesReady: true, Utilization: 0.1}
			}
			p.reports["node-3"] = Report{PHPOK: true, FilesReady: true, Utilization: 0.1, InFlight: 1}
		})
		waitFor(t, h, "node-3 draining", 15*time.Second, func() bool { return state(h, "node-3") == api.NodeDraining })
		// Load comes back while node-3 drains: no node at a new slot yet.
		h.p.set(func(p *fakeProber) {
			for _, id := range []string{"node-1", "node-2"} {
				p.reports[id] = Report{PHPOK: true, FilesReady: true, Utilization: 0.95}
			}
		})
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if h.l.launches() != 3 {
			t.Fatalf("launched during the drain: %v", h.states())
		}
		h.p.set(func(p *fakeProber) { p.reports["node-3"] = Report{PHPOK: true, FilesReady: true, Utilization: 0.95} })
		waitFor(t, h, "grown again", 20*time.Second, func() bool { return len(h.g.InService()) >= 3 })
		_, mismatches := sl.report()
		if len(mismatches) != 0 {
			t.Errorf("the scheduler and the group chose differently: %v", mismatches)
		}
		// The autoscaler may drain node-2 too: its slot then goes after
		// node-3's, even when its drain ends first.
		if got := h.l.stops(); len(got) == 0 || len(got) > 2 || got[0] != "node-3" || len(got) == 2 && got[1] != "node-2" {
			t.Errorf("stopped %v, want node-3 (then node-2)", got)
		}
	})
}
