package nodegroup

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// TestStartAdopts: the group starts over a slotted launcher that kept
// nodes running (a new controller over Nomad). A running node answering
// is put in service as it is: not launched, not warmed, not stopped; one
// whose slot runs nothing (or that does not answer) is replaced at its
// index; the count is made up with new nodes above them.
func TestStartAdopts(t *testing.T) {
	tests := []struct {
		name         string
		count        int
		adopt        []Adopted
		notUp        []string // adopted nodes that never answer
		wantLaunched []string
		wantFailed   []string // Fail of the slotted launcher
	}{
		{
			name: "every node runs", count: 2,
			adopt: []Adopted{{1, Node{ID: "node-1", Addr: "10.0.0.2:20001"}}, {2, Node{ID: "node-2", Addr: "10.0.0.3:20002"}}},
		},
		{
			name: "one slot runs nothing, the count asks for one more", count: 3,
			adopt:        []Adopted{{1, Node{ID: "node-1", Addr: "10.0.0.2:20001"}}, {2, Node{ID: "node-2"}}},
			wantLaunched: []string{"node-2", "node-3"}, wantFailed: []string{"node-2"},
		},
		{
			name: "an adopted node does not answer", count: 2,
			adopt:        []Adopted{{1, Node{ID: "node-1", Addr: "10.0.0.2:20001"}}, {2, Node{ID: "node-2", Addr: "10.0.0.3:20002"}}},
			notUp:        []string{"node-2"},
			wantLaunched: []string{"node-2"}, wantFailed: []string{"node-2"},
		},
		{
			name: "more nodes run than the count: all adopted", count: 1,
			adopt: []Adopted{{1, Node{ID: "node-1", Addr: "10.0.0.2:20001"}}, {2, Node{ID: "node-2", Addr: "10.0.0.3:20002"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := testConfig()
				cfg.Scaling.Count = tt.count
				cfg.ReadyTimeout = 5 * time.Second
				sl := newSlotLauncher()
				for _, a := range tt.adopt {
					if a.Node.Addr == "" {
						continue
					}
					sl.slots[a.Index] = true
					sl.nodes[a.Node.ID] = &Instance{Node: a.Node, Procs: []Process{{Name: a.Node.ID, PID: 500 + a.Index, Alive: true}}}
				}
				h := newHarnessWith(t, cfg, nil, sl)
				for _, id := range tt.notUp {
					h.p.notUp[id] = true
				}
				go func() {
					// A replacement launched in the slot answers.
					for _, id := range tt.notUp {
						for failed, _ := sl.report(); !contains(failed, id); failed, _ = sl.report() {
							time.Sleep(50 * time.Millisecond) // fake time
						}
						h.p.set(func(p *fakeProber) { delete(p.notUp, id) })
					}
				}()
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				if err := h.g.Start(ctx, tt.adopt...); err != nil {
					t.Fatalf("start: %v", err)
				}
				want := max(tt.count, len(tt.adopt))
				if n := len(h.g.InService()); n != want {
					t.Fatalf("%d in service, want %d: %v", n, want, h.states())
				}
				if diff := cmp.Diff(tt.wantLaunched, h.l.launched, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
					t.Errorf("launched (-want +got):\n%s", diff)
				}
				failed, mismatches := sl.report()
				if diff := cmp.Diff(tt.wantFailed, failed); diff != "" {
					t.Errorf("failed (-want +got):\n%s", diff)
				}
				if len(h.l.stops()) != 0 || len(mismatches) != 0 {
					t.Errorf("stops %v, mismatches %v", h.l.stops(), mismatches)
				}
				for _, a := range tt.adopt {
					if a.Node.Addr != "" && len(h.p.warmed[a.Node.ID]) > 0 && !contains(tt.wantLaunched, a.Node.ID) {
						t.Errorf("%s adopted and warmed: %v", a.Node.ID, h.p.warmed[a.Node.ID])
					}
				}
				if got := h.edges.last(); len(got) != want {
					t.Errorf("published %v, want %d nodes", got, want)
				}
				cancel()
				h.g.wg.Wait()
			})
		})
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
