package nomadlaunch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	nomad "github.com/hashicorp/nomad/api"

	"github.com/scalepress/scalepress/internal/nodegroup"
)

// A controller that no longer owns the site (Config.Fence says so) sends
// Nomad no change of the node job: not a register, a scale, a reschedule,
// a signal or a stop (ADR 27). Nomad here answers every request with 500
// and counts them: none may come.
func TestFenceStopsEveryChange(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		http.Error(w, "not expected", http.StatusInternalServerError)
	}))
	defer srv.Close()
	ops := []struct {
		name string
		do   func(context.Context, *Launcher) error
	}{
		{"submit", func(ctx context.Context, l *Launcher) error { _, err := l.Submit(ctx, []byte("{}")); return err }},
		{"close", func(ctx context.Context, l *Launcher) error { return l.Close(ctx) }},
		{"launch a new node (scale)", func(ctx context.Context, l *Launcher) error {
			_, err := l.Launch(ctx, nodegroup.Node{ID: "node-2"})
			return err
		}},
		{"stop a node (scale)", func(ctx context.Context, l *Launcher) error { return l.Stop(ctx, "node-1") }},
		{"fail a node (signal)", func(ctx context.Context, l *Launcher) error { return l.Fail(ctx, "node-1") }},
		{"refill (reschedule)", func(ctx context.Context, l *Launcher) error { return l.refill(ctx, []int{0}) }},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			requests.Store(0)
			cfg := DefaultConfig()
			cfg.Address, cfg.Command, cfg.Job = srv.URL, "/usr/bin/scalepress", "site"
			cfg.Fence = func(context.Context) error { return ErrTakenOver }
			l, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
			if err != nil {
				t.Fatal(err)
			}
			l.slots[0] = &slot{id: "node-1", alloc: "a1"}
			l.allocs[0] = &nomad.AllocationListStub{ID: "a1", ClientStatus: nomad.AllocClientStatusRunning, DesiredStatus: nomad.AllocDesiredStatusRun}
			l.count = 1
			err = op.do(t.Context(), l)
			if !errors.Is(err, ErrTakenOver) {
				t.Errorf("%s with the fence closed: %v, want ErrTakenOver", op.name, err)
			}
			if n := requests.Load(); n != 0 {
				t.Errorf("%s with the fence closed: %d requests to Nomad, want none", op.name, n)
			}
		})
	}
}

// judge decides what a conditional write Nomad refused means, from the job
// read after the refusal.
func TestJudge(t *testing.T) {
	job := func(owner string) *nomad.Job { c := DefaultConfig(); c.Owner = owner; return Job(c, 1) }
	for _, tc := range []struct {
		name     string
		cur      *nomad.Job
		takeover bool
		want     refusal
	}{
		{"another owner wrote it: taken over", job("run-b"), false, refusedTaken},
		{"the job lost its owner: taken over", job(""), false, refusedTaken},
		{"changed under this owner (an operator): write again", job("run-a"), false, refusedMoved},
		{"purged", nil, false, refusedGone},
		{"purged during a take-over", nil, true, refusedGone},
		{"this one takes over, the last owner wrote first: read again", job("run-b"), true, refusedTakeover},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := judge(tc.cur, "run-a", tc.takeover); got != tc.want {
				t.Errorf("judge: %d, want %d", got, tc.want)
			}
		})
	}
}

// The owner is in the node service's meta, where a change is an in-place
// update; not in the job's, group's or task's meta, which reach the task's
// environment (a change there restarts every node).
func TestJobOwner(t *testing.T) {
	c := DefaultConfig()
	c.Command = "/usr/bin/scalepress"
	if got := ownerOf(Job(c, 1)); got != "" {
		t.Errorf("no Owner: the job's owner %q, want none", got)
	}
	c.Owner = "run-a"
	j := Job(c, 1)
	if got := ownerOf(j); got != "run-a" {
		t.Errorf("the job's owner %q, want run-a", got)
	}
	tg := j.TaskGroups[0]
	if len(j.Meta) != 0 || len(tg.Meta) != 0 || len(tg.Tasks[0].Meta) != 0 {
		t.Errorf("meta in the job %v, group %v, task %v: want none (a change would restart every node)", j.Meta, tg.Meta, tg.Tasks[0].Meta)
	}
}

// fakeJobs is a Nomad that answers the job's register and read: each
// register is refused (the job modify index it carries is not the job's)
// until refuse reaches 0, and the job read back has owner at index.
type fakeJobs struct {
	mu        sync.Mutex
	owner     string
	index     uint64
	refuse    int
	registers []uint64 // the job modify index each register carried (all enforced)
}

func (f *fakeJobs) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case r.Method == http.MethodPut && r.URL.Path == "/v1/jobs":
		var req nomad.JobRegisterRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || !req.EnforceIndex {
			http.Error(w, "want an enforced register", http.StatusBadRequest)
			return
		}
		f.registers = append(f.registers, req.JobModifyIndex)
		if f.refuse > 0 || req.JobModifyIndex != f.index {
			f.refuse--
			http.Error(w, fmt.Sprintf("Enforcing job modify index %d: job exists with conflicting job modify index: %d", req.JobModifyIndex, f.index), http.StatusInternalServerError)
			return
		}
		f.index++
		f.owner = ownerOf(req.Job)
		json.NewEncoder(w).Encode(nomad.JobRegisterResponse{JobModifyIndex: f.index})
	case r.Method == http.MethodGet && r.URL.Path == "/v1/job/site":
		c := DefaultConfig()
		c.Job, c.Owner = "site", f.owner
		j := Job(c, 1)
		j.JobModifyIndex = &f.index
		json.NewEncoder(w).Encode(j)
	default:
		http.Error(w, "not expected: "+r.Method+" "+r.URL.Path, http.StatusTeapot)
	}
}

// A write Nomad refuses because the job moved: written by another owner →
// ErrTakenOver, the controller told once, nothing sent again; moved under
// this owner → sent again on the job's new index, up to jobRetries; a
// take-over refused → errJobMoved (the caller reads and plans again).
func TestRegisterRefused(t *testing.T) {
	for _, tc := range []struct {
		name      string
		owner     string // the job's owner in Nomad when the write is refused
		refuse    int
		takeover  bool
		wantErr   error
		registers []uint64
		taken     int
		index     uint64 // this launcher's job index after
	}{
		{"taken over", "run-b", 1, false, ErrTakenOver, []uint64{7}, 1, 7},
		{"moved under this owner: written again", "run-a", 1, false, nil, []uint64{7, 9}, 0, 10},
		{"moved every time: gives up", "run-a", 5, false, errJobMoved, []uint64{7, 9, 9}, 0, 9},
		{"take-over refused: read again", "run-a", 1, true, errJobMoved, []uint64{7}, 0, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeJobs{owner: tc.owner, index: 9, refuse: tc.refuse}
			srv := httptest.NewServer(f)
			defer srv.Close()
			cfg := DefaultConfig()
			cfg.Address, cfg.Command, cfg.Job, cfg.Owner = srv.URL, "/usr/bin/scalepress", "site", "run-a"
			if tc.takeover {
				cfg.Owner = "run-c"
			}
			var taken []string
			cfg.TakenOver = func(why string) { taken = append(taken, why) }
			l, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
			if err != nil {
				t.Fatal(err)
			}
			l.jobIndex = 7
			_, err = l.register(t.Context(), l.wanted(2), tc.takeover)
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("register: %v, want %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.registers, f.registers); diff != "" {
				t.Errorf("job modify index of each register sent (-want +got):\n%s", diff)
			}
			if len(taken) != tc.taken {
				t.Errorf("told taken over %d times (%q), want %d", len(taken), taken, tc.taken)
			}
			if l.jobIndex != tc.index {
				t.Errorf("job index after: %d, want %d", l.jobIndex, tc.index)
			}
		})
	}
}
