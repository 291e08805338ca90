package supervise

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestStopAllOrder(t *testing.T) {
	tests := []struct {
		name  string
		order [][]string
		// want lists the stop groups in order; names within a group may
		// stop in any order.
		want [][]string
	}{
		{"no order stops everything", nil, [][]string{{"db-1", "edge", "node-1", "node-2"}}},
		{
			name:  "agents, then edge, then db",
			order: [][]string{{"node-1", "node-2"}, {"edge"}, {"db-1"}},
			want:  [][]string{{"node-1", "node-2"}, {"edge"}, {"db-1"}},
		},
		{
			name:  "unknown names are skipped and leftovers go last",
			order: [][]string{{"edge", "nope"}, {"node-2"}},
			want:  [][]string{{"edge"}, {"node-2"}, {"db-1", "node-1"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sv := newTestSupervisor(t)
			rec := record(sv)
			for _, name := range []string{"db-1", "edge", "node-1", "node-2"} {
				if _, err := sv.Start(testSpec(t, name, "sleep", "60")); err != nil {
					t.Fatal(err)
				}
			}
			sv.StopAll(t.Context(), tt.order)

			got := rec.names(EventStopped)
			for i, group := range tt.want {
				if len(got) < len(group) {
					t.Fatalf("stopped %v, want groups %v", rec.names(EventStopped), tt.want)
				}
				head := slices.Sorted(slices.Values(got[:len(group)]))
				if !slices.Equal(head, group) {
					t.Fatalf("stop group %d = %v, want %v (all: %v)", i, head, group, rec.names(EventStopped))
				}
				got = got[len(group):]
			}
			if len(got) != 0 {
				t.Errorf("unexpected extra stops %v", got)
			}
		})
	}
}

func TestStopAllContextEnds(t *testing.T) {
	sv := newTestSupervisor(t)
	var ps []*Process
	for _, name := range []string{"a", "b"} {
		spec := testSpec(t, name, "/bin/sh", "-c", ignoreTERM)
		spec.StopTimeout = time.Hour
		p, err := sv.Start(spec)
		if err != nil {
			t.Fatal(err)
		}
		waitLog(t, spec.LogFile, "ready")
		ps = append(ps, p)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	sv.StopAll(ctx, [][]string{{"a"}, {"b"}})
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("StopAll took %s after its context ended", took)
	}
	for _, p := range ps {
		waitDone(t, p, 2*time.Second)
	}
}

func TestDuplicateName(t *testing.T) {
	sv := newTestSupervisor(t)
	p, err := sv.Start(testSpec(t, "db-1", "sleep", "60"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sv.Start(testSpec(t, "db-1", "sleep", "60")); err == nil || !strings.Contains(err.Error(), "already supervised") {
		t.Fatalf("second Start = %v, want already supervised", err)
	}
	if err := p.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	p2, err := sv.Start(testSpec(t, "db-1", "sleep", "60"))
	if err != nil {
		t.Fatalf("Start after Stop: %v", err)
	}
	if p2 == p {
		t.Error("got the old Process back")
	}
}

func TestCloseStopsEverything(t *testing.T) {
	sv := New(nil)
	var pids []int
	for _, name := range []string{"a", "b", "c"} {
		p, err := sv.Start(testSpec(t, name, "sleep", "60"))
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, p.Pid())
		killOnCleanup(t, p.Pid())
	}
	sv.Close()
	sv.Close() // idempotent
	for _, pid := range pids {
		if Alive(pid) {
			t.Errorf("pid %d alive after Close", pid)
		}
	}
	if _, err := sv.Start(testSpec(t, "late", "sleep", "60")); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Close = %v, want ErrClosed", err)
	}
}
