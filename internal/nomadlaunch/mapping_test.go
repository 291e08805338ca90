package nomadlaunch

import (
	"io"
	"log/slog"
	"testing"

	"github.com/google/go-cmp/cmp"
	nomad "github.com/hashicorp/nomad/api"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/nodegroup"
)

func stub(id, name, desired, client string, idx uint64) *nomad.AllocationListStub {
	return &nomad.AllocationListStub{ID: id, Name: name, TaskGroup: Group, DesiredStatus: desired, ClientStatus: client, NodeName: "host-" + id, CreateIndex: idx}
}

// TestLaunchAction: what a Launch asks of Nomad, from the slot the group
// holds and the newest allocation in it. A failed node's slot is refilled
// once: by adopting Nomad's replacement of a lost allocation, or by a
// forced reschedule of a failed one, never both.
func TestLaunchAction(t *testing.T) {
	held := &slot{id: "node-2", alloc: "old"}
	tests := []struct {
		name string
		s    *slot
		cur  *nomad.AllocationListStub
		want launchAct
	}{
		{"a new slot", nil, nil, actScale},
		{"a new slot Nomad placed already (a higher launch raised the count)", nil, stub("a", "j.node[1]", "run", "running", 5), actScale},
		{"lost, Nomad's replacement placed: adopt it", held, stub("new", "j.node[1]", "run", "pending", 9), actAdopt},
		{"lost, Nomad's replacement running: adopt it", held, stub("new", "j.node[1]", "run", "running", 9), actAdopt},
		{"lost, no replacement yet: wait for Nomad's", held, stub("old", "j.node[1]", "stop", "lost", 4), actWait},
		{"failed in its slot: force a reschedule", held, stub("old", "j.node[1]", "run", "failed", 4), actReschedule},
		{"failed by the group's order (Fail): force a reschedule", held, stub("old", "j.node[1]", "run", "failed", 4), actReschedule},
		{"still running: refuse", held, stub("old", "j.node[1]", "run", "running", 4), actRunning},
		{"rescheduled already (another node's refill forced it): adopt", held, stub("new", "j.node[1]", "run", "running", 9), actAdopt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := launchAction(tt.s, tt.cur); got != tt.want {
				t.Errorf("launchAction = %d, want %d", got, tt.want)
			}
		})
	}
}

// TestList: a node is alive while the allocation it was launched as runs.
// Nomad's replacement of a lost allocation does not bring the node back by
// itself (the group must fail it and adopt the replacement), and a slot
// not launched yet is not listed.
func TestList(t *testing.T) {
	var events []string
	l := &Launcher{cfg: testConfig(), logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		event:   func(e api.Event) { events = append(events, e.Message) },
		slots:   map[int]*slot{0: {id: "node-1", alloc: "a1"}, 1: {id: "node-2", alloc: "a2"}, 2: {id: "node-3", alloc: "a3"}, 3: {id: "node-4"}},
		changed: make(chan struct{}), seenLost: map[string]bool{}}
	lost := stub("a2", "j.node[1]", "stop", "lost", 2)
	l.update([]*nomad.AllocationListStub{
		stub("a1", "j.node[0]", "run", "running", 1),
		lost,
		stub("b2", "j.node[1]", "run", "running", 7), // Nomad's replacement of a2
		stub("a3", "j.node[2]", "run", "failed", 3),
	})
	type row struct {
		ID, Host string
		Alive    bool
		Exit     string
	}
	var got []row
	for _, in := range l.List() {
		got = append(got, row{in.ID, in.Host, in.Alive(), in.Exit})
	}
	want := []row{
		{"node-1", "host-a1", true, ""},
		{"node-2", "", false, "allocation a2 replaced or gone"},
		{"node-3", "host-a3", false, "allocation a3 failed"},
	}
	byID := func(rs []row) map[string]row {
		m := map[string]row{}
		for _, r := range rs {
			m[r.ID] = r
		}
		return m
	}
	if diff := cmp.Diff(byID(want), byID(got)); diff != "" {
		t.Error(diff)
	}
	// The loss is told once, though Nomad replaced it already.
	l.update([]*nomad.AllocationListStub{lost})
	if diff := cmp.Diff([]string{"node-2: nomad lost allocation a2 on host-a2 (lost)"}, events); diff != "" {
		t.Error(diff)
	}
	var _ nodegroup.Slotted = l
}
