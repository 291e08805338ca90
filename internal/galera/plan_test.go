package galera

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const (
	uA = "ef78fd03-e9a1-11f1-a34b-2b31645d8083"
	uB = "0b1c2d3e-0000-11f1-a34b-2b31645d8083"
)

// Helpers that build observations the way the driver sees members.
func down(id string) Observation { return Observation{ID: id} }

// crashed: grastate says -1 (it ran), --wsrep-recover says seqno.
func crashed(id, uuid string, seqno int64) Observation {
	return Observation{ID: id, HasData: true,
		Grastate:  &GraState{Version: "2.1", UUID: uuid, Seqno: -1},
		Recovered: &Position{UUID: uuid, Seqno: seqno}, ViewID: "3 x 4"}
}

// clean: a clean stop wrote the seqno into grastate.
func clean(id, uuid string, seqno int64, safe bool) Observation {
	return Observation{ID: id, HasData: true,
		Grastate:  &GraState{Version: "2.1", UUID: uuid, Seqno: seqno, SafeToBootstrap: safe},
		Recovered: &Position{UUID: uuid, Seqno: seqno}}
}

func synced(id, uuid string, seqno int64) Observation {
	return Observation{ID: id, Running: true, HasData: true,
		Status: &Status{Ready: true, ClusterStatus: "Primary", LocalState: 4, StateUUID: uuid, LastCommitted: seqno, ClusterSize: 2}}
}

func size(o Observation, n int) Observation { o.Status.ClusterSize = n; return o }

func stuck(id, uuid string, seqno int64, d time.Duration) Observation {
	return Observation{ID: id, Running: true, HasData: true, StuckFor: d,
		Status: &Status{ClusterStatus: "non-Primary", LocalState: 1, StateUUID: uuid, LastCommitted: seqno}}
}

func with(o Observation, f func(*Observation)) Observation { f(&o); return o }

func TestPlan(t *testing.T) {
	grace := 20 * time.Second
	tests := []struct {
		name    string
		in      []Observation
		plainNo bool // PlainRestartFailed
		want    Action
		members []string
		pos     map[string]Position
		reason  string // substring
	}{
		// A fresh environment.
		{name: "no data anywhere: initialise the first member", in: []Observation{down("db-1"), down("db-2"), down("db-3")},
			want: ActInit, members: []string{"db-1"}},
		{name: "first member synced: the second joins by SST", in: []Observation{size(synced("db-1", uA, 3), 1), down("db-2"), down("db-3")},
			want: ActJoin, members: []string{"db-2"}, reason: "SST"},
		{name: "one at a time: wait while db-2 joins", in: []Observation{synced("db-1", uA, 3), {ID: "db-2", Running: true}, down("db-3")},
			want: ActWait, members: []string{"db-2"}},
		{name: "a donor does not block the next join", in: []Observation{synced("db-1", uA, 3), synced("db-2", uA, 3), down("db-3")},
			want: ActJoin, members: []string{"db-3"}},
		{name: "all synced", in: []Observation{synced("db-1", uA, 3), synced("db-2", uA, 3), synced("db-3", uA, 3)},
			want: ActNone},

		// One member lost while the others keep the primary component.
		{name: "crashed member: recover its position first", in: []Observation{synced("db-1", uA, 9), synced("db-2", uA, 9), with(crashed("db-3", uA, 0), func(o *Observation) { o.Recovered = nil })},
			want: ActRecover, members: []string{"db-3"}},
		{name: "crashed member rejoins at its recovered position (IST)", in: []Observation{synced("db-1", uA, 9), synced("db-2", uA, 9), crashed("db-3", uA, 6)},
			want: ActJoin, members: []string{"db-3"}, pos: map[string]Position{"db-3": {uA, 6}}, reason: "IST"},
		{name: "member whose data is gone joins by SST", in: []Observation{synced("db-1", uA, 9), down("db-2"), synced("db-3", uA, 9)},
			want: ActJoin, members: []string{"db-2"}, reason: "SST"},
		{name: "unreadable position while the cluster runs: SST is safe", in: []Observation{synced("db-1", uA, 9), synced("db-2", uA, 9), with(crashed("db-3", uA, 0), func(o *Observation) { o.Recovered, o.RecoverErr = nil, "InnoDB: corrupt" })},
			want: ActJoin, members: []string{"db-3"}, reason: "corrupt"},
		{name: "member with another cluster's history is not erased", in: []Observation{synced("db-1", uA, 9), synced("db-2", uA, 9), crashed("db-3", uB, 50)},
			want: ActRefuse, members: []string{"db-3"}, reason: "another cluster's history"},
		{name: "a killed member waits until the cluster has evicted it", in: []Observation{size(synced("db-1", uA, 9), 3), size(synced("db-2", uA, 9), 3), crashed("db-3", uA, 6)},
			want: ActWait, members: []string{"db-3"}, reason: "evicted"},
		{name: "member that gave up is left alone", in: []Observation{synced("db-1", uA, 9), synced("db-2", uA, 9), with(crashed("db-3", uA, 6), func(o *Observation) { o.GaveUp = true })},
			want: ActNone, members: []string{"db-3"}},

		// Whole-cluster crash, recovery on up.
		{name: "whole crash: recover every position", in: []Observation{
			with(crashed("db-1", uA, 0), func(o *Observation) { o.Recovered = nil }), with(crashed("db-2", uA, 0), func(o *Observation) { o.Recovered = nil }), down("db-3")},
			want: ActRecover, members: []string{"db-1", "db-2"}},
		{name: "whole crash in one view: plain restart first (pc.recovery)", in: []Observation{crashed("db-1", uA, 1821), crashed("db-2", uA, 1821), crashed("db-3", uA, 1821)},
			want: ActStartAll, members: []string{"db-1", "db-2", "db-3"}, pos: map[string]Position{"db-1": {uA, 1821}, "db-2": {uA, 1821}, "db-3": {uA, 1821}}},
		{name: "NOTES case: db-3 died earlier, plain restart failed: bootstrap the most advanced (lowest id on a tie)", plainNo: true,
			in:   []Observation{crashed("db-1", uA, 1821), crashed("db-2", uA, 1821), crashed("db-3", uA, 1706)},
			want: ActBootstrap, members: []string{"db-1"}, pos: map[string]Position{"db-1": {uA, 1821}}, reason: "db-3 at 1706"},
		{name: "different last views: no plain restart, bootstrap the most advanced", in: []Observation{
			with(crashed("db-1", uA, 1706), func(o *Observation) { o.ViewID = "2 x 3" }), crashed("db-2", uA, 1821), crashed("db-3", uA, 1821)},
			want: ActBootstrap, members: []string{"db-2"}, pos: map[string]Position{"db-2": {uA, 1821}}},
		{name: "most advanced is not the first", plainNo: true, in: []Observation{crashed("db-1", uA, 10), crashed("db-2", uA, 12), crashed("db-3", uA, 11)},
			want: ActBootstrap, members: []string{"db-2"}},
		{name: "clean stop: the last one out (safe_to_bootstrap) on a tie", in: []Observation{clean("db-1", uA, 40, false), clean("db-2", uA, 40, false), clean("db-3", uA, 40, true)},
			want: ActBootstrap, members: []string{"db-3"}},
		{name: "data-loss guard: safe_to_bootstrap on a less advanced member is overruled", in: []Observation{clean("db-1", uA, 41, false), clean("db-2", uA, 40, true), clean("db-3", uA, 41, false)},
			want: ActBootstrap, members: []string{"db-1"}},
		{name: "data-loss guard: an empty member is never bootstrapped while one has data", in: []Observation{down("db-1"), with(crashed("db-2", uA, 5), func(o *Observation) { o.ViewID = "" }), down("db-3")},
			want: ActBootstrap, members: []string{"db-2"}, reason: "db-1 empty"},
		{name: "grastate seqno from a clean stop beats a lower recovered one", in: []Observation{
			with(clean("db-1", uA, 50, false), func(o *Observation) { o.Recovered = &Position{uA, 49} }), clean("db-2", uA, 49, true), down("db-3")},
			want: ActBootstrap, members: []string{"db-1"}},
		{name: "data-loss guard: unreadable position stops everything", in: []Observation{crashed("db-1", uA, 10), with(crashed("db-2", uA, 0), func(o *Observation) { o.Recovered, o.RecoverErr = nil, "mariadbd: exit status 1" }), crashed("db-3", uA, 9)},
			want: ActRefuse, reason: "cannot read db-2's position"},
		{name: "data-loss guard: two cluster histories", in: []Observation{crashed("db-1", uA, 10), crashed("db-2", uB, 99), down("db-3")},
			want: ActRefuse, reason: "different cluster histories"},
		{name: "data-loss guard: data without position beside a positioned member", in: []Observation{crashed("db-1", uA, 10), {ID: "db-2", HasData: true, Recovered: &Position{ZeroUUID, -1}}, down("db-3")},
			want: ActRefuse, reason: "without a Galera position"},
		{name: "standalone data becomes a cluster (1 -> 3 members)", in: []Observation{{ID: "db-1", HasData: true, Recovered: &Position{ZeroUUID, -1}}, down("db-2"), down("db-3")},
			want: ActBootstrap, members: []string{"db-1"}, reason: "new cluster"},
		{name: "two members with data and no position: refuse", in: []Observation{{ID: "db-1", HasData: true, Recovered: &Position{ZeroUUID, -1}}, {ID: "db-2", HasData: true, Recovered: &Position{ZeroUUID, -1}}, down("db-3")},
			want: ActRefuse, reason: "cannot tell which is newer"},

		// No primary component, some members running.
		{name: "plain restart in progress: wait for the component", in: []Observation{stuck("db-1", uA, 9, 3*time.Second), stuck("db-2", uA, 9, 3*time.Second), stuck("db-3", uA, 9, 3*time.Second)},
			want: ActWait},
		{name: "plain restart did not form: stop them", in: []Observation{stuck("db-1", uA, 9, grace), stuck("db-2", uA, 9, grace), stuck("db-3", uA, 9, grace)},
			want: ActStop, members: []string{"db-1", "db-2", "db-3"}},
		{name: "minority survivor: the dead with data are restarted first", in: []Observation{stuck("db-1", uA, 9, grace), crashed("db-2", uA, 9), crashed("db-3", uA, 9)},
			want: ActJoin, members: []string{"db-2"}},
		{name: "minority survivor, others known dead: pc.bootstrap", in: []Observation{stuck("db-1", uA, 9, grace),
			with(crashed("db-2", uA, 9), func(o *Observation) { o.GaveUp = true }), with(crashed("db-3", uA, 8), func(o *Observation) { o.GaveUp = true })},
			want: ActPCBootstrap, members: []string{"db-1"}, pos: map[string]Position{"db-1": {uA, 9}}},
		{name: "minority survivor, others empty: pc.bootstrap", in: []Observation{stuck("db-1", uA, 9, grace), down("db-2"), down("db-3")},
			want: ActPCBootstrap, members: []string{"db-1"}, pos: map[string]Position{"db-1": {uA, 9}}},
		{name: "minority survivor less advanced than a dead member: refuse", in: []Observation{stuck("db-1", uA, 7, grace),
			with(crashed("db-2", uA, 9), func(o *Observation) { o.GaveUp = true }), down("db-3")},
			want: ActRefuse, members: []string{"db-2"}, reason: "most advanced"},
		{name: "two survivors: pc.bootstrap the most advanced", in: []Observation{stuck("db-1", uA, 7, grace), stuck("db-2", uA, 8, grace),
			with(crashed("db-3", uA, 8), func(o *Observation) { o.GaveUp = true })},
			want: ActPCBootstrap, members: []string{"db-2"}},
		{name: "survivor not stuck long enough: wait", in: []Observation{stuck("db-1", uA, 9, time.Second), down("db-2"), down("db-3")},
			want: ActWait},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Plan(Input{Members: tt.in, PlainRestartFailed: tt.plainNo, Grace: grace})
			if got.Action != tt.want {
				t.Fatalf("action = %s (%v: %s), want %s", got.Action, got.Members, got.Reason, tt.want)
			}
			if tt.members != nil {
				if diff := cmp.Diff(tt.members, got.Members); diff != "" {
					t.Errorf("members (-want +got):\n%s", diff)
				}
			}
			if tt.pos != nil {
				if diff := cmp.Diff(tt.pos, got.Positions); diff != "" {
					t.Errorf("positions (-want +got):\n%s", diff)
				}
			}
			if !strings.Contains(got.Reason, tt.reason) {
				t.Errorf("reason %q does not contain %q", got.Reason, tt.reason)
			}
			if got.Reason == "" {
				t.Error("no reason given")
			}
		})
	}
}

// TestCheckBootstrap is the data-loss guard on its own: the driver asks it
// again right before any bootstrap.
func TestCheckBootstrap(t *testing.T) {
	cluster := []Observation{crashed("db-1", uA, 1821), crashed("db-2", uA, 1821), crashed("db-3", uA, 1706)}
	tests := []struct {
		name    string
		ms      []Observation
		id      string
		wantErr string
	}{
		{"most advanced", cluster, "db-1", ""},
		{"tie with the most advanced", cluster, "db-2", ""},
		{"less advanced member", cluster, "db-3", "db-1 is more advanced (1821 > 1706)"},
		{"empty member while others have data", []Observation{down("db-1"), crashed("db-2", uA, 3), down("db-3")}, "db-1", "it has no data while db-2 has"},
		{"new cluster", []Observation{down("db-1"), down("db-2"), down("db-3")}, "db-1", ""},
		{"unknown position elsewhere", []Observation{crashed("db-1", uA, 5), with(crashed("db-2", uA, 0), func(o *Observation) { o.Recovered, o.RecoverErr = nil, "boom" })}, "db-1", "cannot read db-2's position"},
		{"other history", []Observation{crashed("db-1", uA, 5), crashed("db-2", uB, 1)}, "db-1", "different cluster histories"},
		{"safe_to_bootstrap does not make a stale member safe", []Observation{clean("db-1", uA, 41, false), clean("db-2", uA, 40, true)}, "db-2", "db-1 is more advanced"},
		{"no such member", cluster, "db-9", "no such member"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckBootstrap(tt.ms, tt.id)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}
