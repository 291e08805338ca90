package nomadlaunch

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scalepress/scalepress/internal/nodegroup"
)

// TestAgentFenceTakeOver is the interleaving the home variable's read
// cannot catch (ADR 31), against a real Nomad: controller A reads that it
// owns the site (its fence passes); before A's write reaches Nomad,
// controller B takes the site over: it writes the home variable and
// registers the job with its owner, and its own first register is refused
// once too (A's last write came between B's read of the job and B's
// write: B reads again and takes over on the new index). A's write, a
// scale to launch node-2, carries the job modify index A last saw: Nomad
// refuses it, A is told it was taken over, and nothing changed: the job
// is B's, count 1, and node-1 runs in its allocation, not restarted by
// the take-over (the owner is in the service's meta: an in-place update).
func TestAgentFenceTakeOver(t *testing.T) {
	addr := devAgent(t)
	nodeDir := t.TempDir()
	os.WriteFile(filepath.Join(nodeDir, "util"), []byte("0.5"), 0o644)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Address, cfg.Job, cfg.Command = addr, "sp-test-fence", self
	cfg.Env = map[string]string{fakeNodeEnv: nodeDir}
	cfg.CPU, cfg.MemoryMB, cfg.KillTimeout, cfg.Poll = 100, 64, 5*time.Second, 2*time.Second
	home, err := NewHomeStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	spec := []byte(`{"forward_key":"canary-secret"}`)
	ctx, cancel := context.WithCancel(t.Context())
	var runs sync.WaitGroup
	defer runs.Wait()
	defer cancel()

	// owns is the fence both controllers ask before a change: the home
	// variable's owner is theirs.
	owns := func(ctx context.Context, owner string) error {
		h, _, err := home.Read(ctx)
		if err != nil {
			return err
		}
		if h.Owner != owner {
			return ErrTakenOver
		}
		return nil
	}

	// B: its fence, the first time it is asked (before its take-over
	// register), lets A's last write through first: a scale of the job
	// to the count it has (a write all the same: a new modify index).
	cfgB := cfg
	cfgB.Owner = "run-b"
	var b *Launcher
	raceB := true
	cfgB.Fence = func(ctx context.Context) error {
		if err := owns(ctx, "run-b"); err != nil {
			return err
		}
		if raceB {
			raceB = false
			one := 1
			if _, _, err := b.nc.Jobs().Scale(cfg.Job, Group, &one, "A's last write", false, nil, nil); err != nil {
				t.Errorf("A's last write before B's take-over: %v", err)
			}
		}
		return nil
	}
	if b, err = New(cfgB, logger, nil); err != nil {
		t.Fatal(err)
	}
	var adoptedByB []nodegroup.Adopted
	takeOver := func(ctx context.Context) {
		if _, err := home.Write(ctx, Home{Carry: "{}", Dir: "/srv/b", Host: "b", Owner: "run-b"}); err != nil {
			t.Errorf("B writes the home variable: %v", err)
			return
		}
		var err error
		if adoptedByB, err = b.Submit(ctx, spec); err != nil {
			t.Errorf("B takes the job over: %v", err)
		}
	}

	// A: it owns the site and runs node-1. Its fence, once armed, passes
	// (A owns the site at that moment) and then lets B take the site over
	// before A's write is sent.
	cfgA := cfg
	cfgA.Owner = "run-a"
	var armed bool
	var taken []string
	cfgA.TakenOver = func(why string) { taken = append(taken, why) }
	var blind bool // A's read of the owner is skipped: only Nomad's check is left
	cfgA.Fence = func(ctx context.Context) error {
		if blind {
			return nil
		}
		if err := owns(ctx, "run-a"); err != nil {
			return err
		}
		if armed {
			armed = false
			takeOver(ctx)
		}
		return nil
	}
	a, err := New(cfgA, logger, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := home.Write(ctx, Home{Carry: "{}", Dir: "/srv/a", Host: "a", Owner: "run-a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Submit(ctx, spec); err != nil {
		t.Fatal(err)
	}
	runs.Go(func() { a.Run(ctx) })
	if _, err := a.Launch(ctx, nodegroup.Node{ID: "node-1"}); err != nil {
		t.Fatal(err)
	}
	before := slotAllocs(t, a)
	if len(before[0]) != 1 {
		t.Fatalf("slot 0: allocations %v, want one", before[0])
	}
	pid := taskPID(t, nodeDir, 0, before[0][0])

	armed = true
	_, err = a.Launch(ctx, nodegroup.Node{ID: "node-2"})
	if !errors.Is(err, ErrTakenOver) {
		t.Fatalf("A's launch of node-2 after B's take-over: %v, want ErrTakenOver", err)
	}
	if len(taken) != 1 {
		t.Errorf("A told it was taken over %d times (%q), want once", len(taken), taken)
	}
	if raceB {
		t.Error("B's fence was never asked: B did not register the job")
	}
	if len(adoptedByB) != 1 || adoptedByB[0].Node.ID != "node-1" || adoptedByB[0].Node.Addr == "" {
		t.Errorf("B adopted %+v, want node-1 with its address", adoptedByB)
	}

	j, _, err := b.nc.Jobs().Info(cfg.Job, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := ownerOf(j); got != "run-b" {
		t.Errorf("the job's owner %q, want run-b", got)
	}
	if got := countOf(j); got != 1 {
		t.Errorf("the job's count %d, want 1 (A's scale refused)", got)
	}
	b.mu.Lock()
	bIndex := b.jobIndex
	b.mu.Unlock()
	if bIndex != *j.JobModifyIndex {
		t.Errorf("B's job index %d, the job's %d: B's next write would be refused", bIndex, *j.JobModifyIndex)
	}
	// Once Nomad evaluated every write of the job (a second allocation
	// would be placed, node-1 replaced, by one that should not be),
	// look at the allocations.
	waitEvals(t, b)
	if diff := cmp.Diff(before, slotAllocs(t, b)); diff != "" {
		t.Errorf("allocations after the take-over (-before +after):\n%s", diff)
	}
	if err := syscall.Kill(pid, 0); err != nil {
		t.Errorf("node-1's task (pid %d) no longer runs after the take-over: %v", pid, err)
	}

	// A `down` on A's host: the stop is conditioned too. With A's read of
	// the owner skipped, Nomad refuses it: the job runs, and its spec
	// variable (the nodes read it) stays.
	blind = true
	if err := a.Close(ctx); !errors.Is(err, ErrTakenOver) {
		t.Errorf("A stops the job after B's take-over: %v, want ErrTakenOver", err)
	}
	if j, _, err := b.nc.Jobs().Info(cfg.Job, nil); err != nil || j.Stop != nil && *j.Stop {
		t.Errorf("the job after A's stop: %v, stopped; want it running", err)
	}
	if _, _, err := b.nc.Variables().Read(VariablePath(cfg.Job), nil); err != nil {
		t.Errorf("the job's spec variable after A's stop: %v", err)
	}

	// B owns the job: its writes go through, and it stops the job.
	runs.Go(func() { b.Run(ctx) })
	cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
	defer ccancel()
	if err := b.Close(cctx); err != nil {
		t.Errorf("B stops the job: %v", err)
	}
	if j, _, err := b.nc.Jobs().Info(cfg.Job, nil); err != nil || j.Stop == nil || !*j.Stop {
		t.Errorf("the job after B's stop: %v; want it stopped", err)
	}
}

// waitEvals waits until every evaluation of the job is done.
func waitEvals(t *testing.T, l *Launcher) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		evals, _, err := l.nc.Jobs().Evaluations(l.cfg.Job, nil)
		pending := err != nil
		for _, e := range evals {
			if e.Status == "pending" || e.Status == "blocked" && e.TriggeredBy != "queued-allocs" {
				pending = true
			}
		}
		if !pending {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("evaluations of %s not done within 30s: %v", l.cfg.Job, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
