package nodegroup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/scalepress/scalepress/internal/api"
)

// fakeLauncher runs nodes in memory: a launched node is alive until the
// test kills it or the group stops it.
type fakeLauncher struct {
	mu       sync.Mutex
	nodes    map[string]*Instance
	launched []string
	stopped  []string
	fail     map[string]error // Launch of this id fails
}

var _ Launcher = (*fakeLauncher)(nil)

func newFakeLauncher() *fakeLauncher {
	return &fakeLauncher{nodes: map[string]*Instance{}, fail: map[string]error{}}
}

func (l *fakeLauncher) Launch(_ context.Context, n Node) (Node, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.fail[n.ID]; err != nil {
		return n, err
	}
	l.launched = append(l.launched, n.ID)
	l.nodes[n.ID] = &Instance{Node: n, Procs: []Process{{Name: n.ID, PID: 1000 + len(l.launched), Alive: true}}}
	return n, nil
}

func (l *fakeLauncher) Stop(_ context.Context, id string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.nodes, id)
	l.stopped = append(l.stopped, id)
	return nil
}

func (l *fakeLauncher) List() []Instance {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Instance
	for _, in := range l.nodes {
		c := *in
		c.Procs = slices.Clone(in.Procs)
		out = append(out, c)
	}
	return out
}

// kill makes a node's process exit.
func (l *fakeLauncher) kill(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	in := l.nodes[id]
	in.Procs[0].Alive, in.Procs[0].PID, in.Exit = false, 0, "killed by the test"
}

func (l *fakeLauncher) launches() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.launched)
}

func (l *fakeLauncher) stops() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.stopped)
}

// fakeProber answers for every node from what the test set.
type fakeProber struct {
	mu      sync.Mutex
	notUp   map[string]bool   // Ready fails
	sick    map[string]bool   // Report fails
	reports map[string]Report // by id; default: PHP ok, idle, files ready at 0
	warmed  map[string][]string
	// warmedAt is the files seq each node reported when it was warmed.
	warmedAt map[string]uint64
}

func newFakeProber() *fakeProber {
	return &fakeProber{notUp: map[string]bool{}, sick: map[string]bool{}, reports: map[string]Report{}, warmed: map[string][]string{}, warmedAt: map[string]uint64{}}
}

func (p *fakeProber) Ready(_ context.Context, n Node) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.notUp[n.ID] {
		return errors.New("connection refused")
	}
	return nil
}

func (p *fakeProber) Report(_ context.Context, n Node) (Report, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sick[n.ID] {
		return Report{}, errors.New("timeout")
	}
	if r, ok := p.reports[n.ID]; ok {
		return r, nil
	}
	return Report{PHPOK: true, FilesReady: true}, nil
}

func (p *fakeProber) Warm(_ context.Context, n Node, host string, paths []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.warmed[n.ID] = append(p.warmed[n.ID], paths...)
	p.warmedAt[n.ID] = p.reports[n.ID].FilesSeq
}

func (p *fakeProber) set(fn func(p *fakeProber)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fn(p)
}

// edges stands for the edges: it keeps the published sets and acknowledges
// a generation when the test says so.
type edges struct {
	mu      sync.Mutex
	sets    [][]string
	acked   uint64
	changed chan struct{}
}

func newEdges() *edges { return &edges{changed: make(chan struct{})} }

func (e *edges) publish(set []Node) uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	var ids []string
	for _, n := range set {
		ids = append(ids, n.ID)
	}
	e.sets = append(e.sets, ids)
	return uint64(len(e.sets))
}

func (e *edges) ack(gen uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.acked = gen
	close(e.changed)
	e.changed = make(chan struct{})
}

func (e *edges) applied(ctx context.Context, gen uint64) {
	for {
		e.mu.Lock()
		ok, ch := e.acked >= gen, e.changed
		e.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
	}
}

func (e *edges) last() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.sets) == 0 {
		return nil
	}
	return e.sets[len(e.sets)-1]
}

func (e *edges) gen() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return uint64(len(e.sets))
}

// events keeps what the group recorded.
type events struct {
	mu  sync.Mutex
	all []api.Event
}

func (e *events) add(ev api.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, ev)
}

// find is the messages of kind ("": any) containing s.
func (e *events) find(kind, s string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, ev := range e.all {
		if (kind == "" || ev.Kind == kind) && strings.Contains(ev.Message, s) {
			out = append(out, ev.Message)
		}
	}
	return out
}

// harness is a group with fakes around it.
type harness struct {
	g      *Group
	l      *fakeLauncher
	p      *fakeProber
	edges  *edges
	events *events
	cancel context.CancelFunc
	done   chan error
}

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Scaling = Scaling{Enabled: false, Count: 2, Min: 1, Max: 6, Target: 0.6, ScaleInWindow: 10 * time.Second, MaxStep: 4}
	cfg.Children = 10
	cfg.SiteHost = "www.example.test"
	cfg.DeregistrationDelay = 10 * time.Second
	return cfg
}

func newHarness(t *testing.T, cfg Config, files func(context.Context) (uint64, error)) *harness {
	t.Helper()
	return newHarnessWith(t, cfg, files, nil)
}

// newHarnessWith runs the group over sl when it is not nil (its fake
// launcher is h.l).
func newHarnessWith(t *testing.T, cfg Config, files func(context.Context) (uint64, error), sl *slotLauncher) *harness {
	t.Helper()
	h := &harness{l: newFakeLauncher(), p: newFakeProber(), edges: newEdges(), events: &events{}}
	var l Launcher = h.l
	if sl != nil {
		h.l, l = sl.fakeLauncher, sl
	}
	hooks := Hooks{
		Node:      func(i int) Node { return Node{ID: fmt.Sprintf("node-%d", i), Addr: fmt.Sprintf("127.0.1.%d:8080", i)} },
		Publish:   h.edges.publish,
		Applied:   h.edges.applied,
		TopPaths:  func(context.Context) []string { return []string{"/", "/hello-world/"} },
		FilesHead: files,
		Event:     h.events.add,
	}
	g, err := New(cfg, l, h.p, hooks, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	h.g = g
	return h
}

// start brings up the initial group and runs the loops until stop.
func (h *harness) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	if err := h.g.Start(ctx); err != nil {
		t.Fatalf("start: %v", err)
	}
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- h.g.Run(ctx) }()
}

func (h *harness) stop(t *testing.T) {
	t.Helper()
	h.cancel()
	if err := <-h.done; err != nil {
		t.Error(err)
	}
}

// states is id=state for every node the group keeps.
func (h *harness) states() []string {
	var out []string
	for _, n := range h.g.Nodes() {
		out = append(out, n.ID+"="+n.State)
	}
	return out
}

// waitFor advances the fake clock a tick at a time until cond holds, at
// most limit of fake time.
func waitFor(t *testing.T, h *harness, what string, limit time.Duration, cond func() bool) time.Duration {
	t.Helper()
	t0 := time.Now()
	synctest.Wait()
	for !cond() {
		if time.Since(t0) > limit {
			t.Fatalf("%s: not within %s; nodes %v", what, limit, h.states())
		}
		time.Sleep(50 * time.Millisecond) // fake time: the bubble's clock
		synctest.Wait()                   // every goroutine of the group is idle
	}
	return time.Since(t0)
}

// slotLauncher stands for a scheduler that runs the group as a count of
// slots (Nomad's reconciler): the count is the highest slot held, and a
// smaller count stops the highest slots, whichever node the group named.
// Like the Nomad launcher, Stop releases the node's slot and lowers the
// count only over released slots, so a lower node drained first waits for
// the ones above it. It records every stop of a slot the group did not
// release and every launch into a slot that is taken.
type slotLauncher struct {
	*fakeLauncher
	smu        sync.Mutex
	slots      map[int]bool  // held: launched, not stopped by the scheduler
	released   map[int]bool  // Stop asked
	gone       chan struct{} // closed and renewed when slots are stopped
	failed     []string
	mismatches []string
}

var _ Slotted = (*slotLauncher)(nil)

func newSlotLauncher() *slotLauncher {
	return &slotLauncher{fakeLauncher: newFakeLauncher(), slots: map[int]bool{}, released: map[int]bool{}, gone: make(chan struct{})}
}

func slotOf(id string) int {
	var i int
	fmt.Sscanf(id, "node-%d", &i)
	return i
}

func (l *slotLauncher) Launch(ctx context.Context, n Node) (Node, error) {
	l.smu.Lock()
	i := slotOf(n.ID)
	if l.slots[i] && !l.isFailed(n.ID) {
		l.mismatches = append(l.mismatches, fmt.Sprintf("launch %s: slot %d runs a node already", n.ID, i))
	}
	l.slots[i] = true
	l.smu.Unlock()
	return l.fakeLauncher.Launch(ctx, n)
}

func (l *slotLauncher) isFailed(id string) bool {
	l.fakeLauncher.mu.Lock()
	defer l.fakeLauncher.mu.Unlock()
	in := l.nodes[id]
	return in == nil || !in.Alive()
}

func (l *slotLauncher) Stop(ctx context.Context, id string) error {
	i := slotOf(id)
	l.smu.Lock()
	l.released[i] = true
	for {
		top := 0
		for j := range l.slots {
			top = max(top, j)
		}
		if top == 0 || !l.released[top] {
			break
		}
		delete(l.slots, top) // the count goes down: the scheduler stops the top slot
		delete(l.released, top)
		// Recorded here, in the scheduler's order: the Stop calls that
		// waited for their slot return in any order.
		l.fakeLauncher.Stop(ctx, fmt.Sprintf("node-%d", top))
		close(l.gone)
		l.gone = make(chan struct{})
	}
	for l.slots[i] {
		ch := l.gone
		l.smu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		l.smu.Lock()
	}
	l.smu.Unlock()
	if !slices.Contains(l.fakeLauncher.stops(), id) {
		return l.fakeLauncher.Stop(ctx, id)
	}
	return nil
}

func (l *slotLauncher) Fail(_ context.Context, id string) error {
	l.smu.Lock()
	l.failed = append(l.failed, id)
	l.smu.Unlock()
	l.fakeLauncher.mu.Lock()
	defer l.fakeLauncher.mu.Unlock()
	if in := l.nodes[id]; in != nil {
		in.Procs[0].Alive, in.Procs[0].PID = false, 0
	}
	return nil
}

func (l *slotLauncher) report() (failed, mismatches []string) {
	l.smu.Lock()
	defer l.smu.Unlock()
	return slices.Clone(l.failed), slices.Clone(l.mismatches)
}
