package nomadlaunch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	nomad "github.com/hashicorp/nomad/api"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/nodegroup"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		plan *nomad.JobPlanResponse
		want specChange
	}{
		{"no diff", &nomad.JobPlanResponse{Diff: &nomad.JobDiff{Type: "None"}, Annotations: &nomad.PlanAnnotations{
			DesiredTGUpdates: map[string]*nomad.DesiredUpdates{Group: {Ignore: 3}}}}, specSame},
		{"edited in place", &nomad.JobPlanResponse{Diff: &nomad.JobDiff{Type: "Edited"}, Annotations: &nomad.PlanAnnotations{
			DesiredTGUpdates: map[string]*nomad.DesiredUpdates{Group: {InPlaceUpdate: 3}}}}, specInPlace},
		{"destructive", &nomad.JobPlanResponse{Diff: &nomad.JobDiff{Type: "Edited"}, Annotations: &nomad.PlanAnnotations{
			DesiredTGUpdates: map[string]*nomad.DesiredUpdates{Group: {DestructiveUpdate: 2, Ignore: 1}}}}, specDestructive},
		{"a stop", &nomad.JobPlanResponse{Diff: &nomad.JobDiff{Type: "Edited"}, Annotations: &nomad.PlanAnnotations{
			DesiredTGUpdates: map[string]*nomad.DesiredUpdates{Group: {Stop: 1}}}}, specDestructive},
		{"no plan", nil, specInPlace},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := classify(tt.plan); got != tt.want {
				t.Errorf("classify = %d, want %d", got, tt.want)
			}
		})
	}
}

// controllerRun is one controller's launcher and group over the dev agent.
type controllerRun struct {
	l      *Launcher
	g      *nodegroup.Group
	cancel context.CancelFunc
	done   chan struct{}
}

// startController makes a launcher and a group, submits the job and starts
// the group with what Submit adopted; the group is run (probes, heals) when
// run is set. kill ends it without stopping anything on Nomad, as SIGKILL
// does.
func startController(t *testing.T, cfg Config, ev *events, run bool) (*controllerRun, []nodegroup.Adopted) {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	l, err := New(cfg, logger, ev.add)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	c := &controllerRun{l: l, cancel: cancel, done: make(chan struct{})}
	adopted, err := l.Submit(ctx, []byte(`{"forward_key":"canary-secret"}`))
	if err != nil {
		t.Fatal(err)
	}
	gc := nodegroup.DefaultConfig()
	gc.Scaling = nodegroup.Scaling{Count: 2, Min: 2, Max: 3, Target: 0.6, ScaleInWindow: time.Minute, MaxStep: 1}
	gc.Children, gc.SiteHost, gc.DeregistrationDelay, gc.ReadyTimeout = 10, "www.example.test", 2*time.Second, 30*time.Second
	gc.FailedStopTimeout = 20 * time.Second
	c.g, err = nodegroup.New(gc, l, nodegroup.NewHTTPProber(), nodegroup.Hooks{
		Node:  func(i int) nodegroup.Node { return nodegroup.Node{ID: fmt.Sprintf("node-%d", i)} },
		Event: ev.add,
	}, logger)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(c.done)
		runDone := make(chan struct{})
		go func() { l.Run(ctx); close(runDone) }()
		if err := c.g.Start(ctx, adopted...); err != nil && ctx.Err() == nil {
			t.Errorf("start: %v\n%s", err, ev)
		}
		if run {
			c.g.Run(ctx)
		}
		<-runDone
	}()
	return c, adopted
}

func (c *controllerRun) kill() {
	c.cancel()
	<-c.done
}

// slotAllocs is, per slot, the ids of every allocation it ever had.
func slotAllocs(t *testing.T, l *Launcher) map[int][]string {
	t.Helper()
	allocs, _, err := l.nc.Jobs().Allocations(l.cfg.Job, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int][]string{}
	for _, a := range allocs {
		out[slotOf(a.Name)] = append(out[slotOf(a.Name)], a.ID)
	}
	return out
}

// TestAgentAdopt: a controller killed (nothing stopped on Nomad), a new one
// adopts the two running nodes (same allocations, same processes, in
// service, the job not registered again); a third one with another spec
// updates them one at a time, never both down, and the group follows the
// replacements; the job is back to the group's update strategy after.
func TestAgentAdopt(t *testing.T) {
	addr := devAgent(t)
	nodeDir := t.TempDir()
	os.WriteFile(filepath.Join(nodeDir, "util"), []byte("0.5"), 0o644)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ev := &events{}
	cfg := DefaultConfig()
	cfg.Address, cfg.Job, cfg.Command = addr, "sp-test-adopt", self
	cfg.Env = map[string]string{fakeNodeEnv: nodeDir}
	cfg.CPU, cfg.MemoryMB, cfg.KillTimeout, cfg.Poll = 100, 64, 5*time.Second, 2*time.Second

	first, adopted := startController(t, cfg, ev, false)
	if len(adopted) != 0 {
		t.Fatalf("the first controller adopted %v from no job", adopted)
	}
	var last *controllerRun
	defer func() {
		if last == nil {
			return
		}
		cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer ccancel()
		if err := last.l.Close(cctx); err != nil {
			t.Error(err)
		}
		last.kill()
	}()
	last = first
	waitGroup(t, first.g, ev, "2 in service", 60*time.Second, func() bool { return len(first.g.InService()) == 2 })
	before := slotAllocs(t, first.l)
	pids := map[int]int{}
	for slot, ids := range before {
		if len(ids) != 1 {
			t.Fatalf("slot %d had allocations %v, want one", slot, ids)
		}
		pids[slot] = taskPID(t, nodeDir, slot, ids[0])
	}
	j, _, err := first.l.nc.Jobs().Info(cfg.Job, nil)
	if err != nil {
		t.Fatal(err)
	}
	version := *j.Version
	first.kill()

	// A new controller: it adopts both nodes and restarts nothing.
	t0 := time.Now()
	second, adopted := startController(t, cfg, ev, true)
	last = second
	var ids []string
	for _, a := range adopted {
		ids = append(ids, a.Node.ID)
		if a.Node.Addr == "" {
			t.Errorf("%s adopted with no address", a.Node.ID)
		}
	}
	if diff := cmp.Diff([]string{"node-1", "node-2"}, ids); diff != "" {
		t.Fatalf("adopted (-want +got):\n%s", diff)
	}
	waitGroup(t, second.g, ev, "2 adopted in service", 30*time.Second, func() bool { return len(second.g.InService()) == 2 })
	t.Logf("a new controller to 2 adopted nodes in service: %s", time.Since(t0).Round(time.Millisecond))
	checkSlots(t, second.g, 2)
	if diff := cmp.Diff(before, slotAllocs(t, second.l)); diff != "" {
		t.Errorf("allocations after the adoption (-before +after):\n%s", diff)
	}
	for slot, pid := range pids {
		if err := syscall.Kill(pid, 0); err != nil {
			t.Errorf("slot %d: the task (pid %d) no longer runs: %v", slot, pid, err)
		}
		if got := taskPID(t, nodeDir, slot, before[slot][0]); got != pid {
			t.Errorf("slot %d: pid %d, was %d", slot, got, pid)
		}
	}
	if j, _, err := second.l.nc.Jobs().Info(cfg.Job, nil); err != nil {
		t.Fatal(err)
	} else if *j.Version != version {
		t.Errorf("job version %d after the adoption, was %d: registered again with the same spec", *j.Version, version)
	}
	if n := ev.count("adopted as it is"); n != 1 {
		t.Errorf("%d 'adopted as it is' events, want 1\n%s", n, ev)
	}
	second.kill()

	// A third controller with another spec: a rolling update.
	cfg.Env = map[string]string{fakeNodeEnv: nodeDir, "SCALEPRESS_TEST_SPEC": "2"}
	t1 := time.Now()
	third, _ := startController(t, cfg, ev, true)
	last = third
	minRunning := 2
	for {
		allocs, _, err := third.l.nc.Jobs().Allocations(cfg.Job, true, nil)
		if err != nil {
			t.Fatal(err)
		}
		k, fresh := 0, 0
		for _, a := range allocs {
			if running(a) {
				k++
				if !slices.Contains(before[slotOf(a.Name)], a.ID) {
					fresh++
				}
			}
		}
		minRunning = min(minRunning, k)
		if fresh == 2 && len(third.g.InService()) == 2 {
			third.l.mu.Lock()
			rolling := third.l.rolling
			third.l.mu.Unlock()
			if !rolling {
				break
			}
		}
		if time.Since(t1) > 3*time.Minute {
			t.Fatalf("rolling update not over after 3 min: %d fresh allocations running\n%s", fresh, ev)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("rolling update of 2 adopted nodes, the group following: %s", time.Since(t1).Round(time.Millisecond))
	if minRunning < 1 {
		t.Errorf("during the rolling update %d allocations ran at one point: want at least 1 of 2", minRunning)
	}
	checkSlots(t, third.g, 2)
	j, _, err = third.l.nc.Jobs().Info(cfg.Job, nil)
	if err != nil {
		t.Fatal(err)
	}
	if u := j.TaskGroups[0].Update; u == nil || u.MaxParallel == nil || *u.MaxParallel != 0 {
		t.Errorf("after the roll the update strategy is %+v, want max_parallel 0", u)
	}
	for _, v := range third.g.Nodes() {
		if v.State != api.NodeInService && v.State != api.NodeTerminated {
			t.Errorf("%s %s after the roll", v.ID, v.State)
		}
	}
}

// TestAgentHome: the controller's home variable, absent for a new site,
// reads back as written, at its path; a controller that took the site over
// (its own Write) makes the last one's Update fail with ErrTakenOver and
// its Watch return at once.
func TestAgentHome(t *testing.T) {
	addr := devAgent(t)
	cfg := DefaultConfig()
	cfg.Address, cfg.Job = addr, "sp-test-home"
	s, err := NewHomeStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.Read(t.Context()); err != nil || ok {
		t.Fatalf("read before any write: ok %v, err %v; want nothing, no error", ok, err)
	}
	want := Home{Carry: `{"secrets":{"root-key":"k"}}`, Dir: "/srv/sp", Host: "h1", At: "2026-12-07T15:00:00Z", Owner: "run-a"}
	index, err := s.Write(t.Context(), want)
	if err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.Read(t.Context())
	if err != nil || !ok {
		t.Fatalf("read: ok %v, err %v", ok, err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("home (-want +got):\n%s", diff)
	}
	if s.Path() != "nomad/jobs/sp-test-home-controller" {
		t.Errorf("path %s", s.Path())
	}
	// The owner updates it while nobody else wrote.
	want.At = "2026-12-07T15:01:00Z"
	if index, err = s.Update(t.Context(), want, index); err != nil {
		t.Fatalf("update by its owner: %v", err)
	}

	watched := make(chan error, 1)
	var seen Home
	go func() {
		var err error
		seen, err = s.Watch(t.Context(), "run-a")
		watched <- err
	}()
	select {
	case err := <-watched:
		t.Fatalf("Watch returned with no take-over: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	// Another controller takes the site over.
	other := Home{Carry: want.Carry, Dir: "/srv/sp2", Host: "h2", At: "2026-12-07T15:02:00Z", Owner: "run-b"}
	if _, err := s.Write(t.Context(), other); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-watched:
		if err != nil || seen.Owner != "run-b" || seen.Host != "h2" {
			t.Errorf("Watch: %+v, %v; want run-b on h2", seen, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not see the take-over within 10 s")
	}
	if _, err := s.Update(t.Context(), want, index); !errors.Is(err, ErrTakenOver) {
		t.Errorf("update by the last owner after the take-over: %v, want ErrTakenOver", err)
	}
	if _, err := NewHomeStore(Config{Address: "127.0.0.1:4646", Job: "x"}); err == nil {
		t.Error("an address without scheme: no error")
	}
}
