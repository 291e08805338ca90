package nomadlaunch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	nomad "github.com/hashicorp/nomad/api"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/nodegroup"
)

// FailSignal asks node-host to stop its processes and exit with an error:
// its allocation fails and keeps its slot for the replacement (a SIGTERM
// would end it "complete", which Nomad refills by itself).
const FailSignal = "SIGUSR1"

// Launcher runs the node group as a Nomad job.
type Launcher struct {
	cfg    Config
	nc     *nomad.Client
	logger *slog.Logger
	event  func(api.Event) // what Nomad did, for the event log; may be nil

	// scaleMu is held across a write of the job (a register: the count,
	// the spec): the last one sent is the last count wanted, and each is
	// conditioned on the index the one before it got.
	scaleMu sync.Mutex

	mu        sync.Mutex
	slots     map[int]*slot                     // held: launched and not stopped
	allocs    map[int]*nomad.AllocationListStub // newest allocation per slot
	info      map[string]*nomad.Allocation      // by alloc id, once running
	count     int                               // the job's count as last set
	changed   chan struct{}                     // closed and renewed on every update of allocs
	seenLost  map[string]bool                   // lost allocations already told
	rolling   bool                              // a rolling update adopt started runs
	rollIndex uint64                            // the job's modify index that update registered
	// keepRolling: the job as registered has the rolling update strategy
	// (from adopt's rolling update until endRoll registers the group's
	// own again; kept after a failed one).
	keepRolling bool
	// jobIndex is the job modify index at which this launcher last saw
	// the job with its owner (Config.Owner): its next write is
	// conditioned on it (ADR 31). 0: no job (a new one must not exist).
	jobIndex uint64
	hosts    []nodegroup.NodeHost // clients that may run a node (followHosts)
}

// slot is node slot+1 as the group knows it.
type slot struct {
	id       string // node-N
	alloc    string // the allocation the node runs as ("" until launched)
	released bool   // Stop asked: the count drops over it once the slots above are released
}

var _ nodegroup.Slotted = (*Launcher)(nil)

// New returns a launcher; Submit writes the spec and registers the job, Run
// follows its allocations.
func New(cfg Config, logger *slog.Logger, event func(api.Event)) (*Launcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	nc, err := cfg.client()
	if err != nil {
		return nil, err
	}
	return &Launcher{cfg: cfg, nc: nc, logger: logger, event: event, slots: map[int]*slot{}, allocs: map[int]*nomad.AllocationListStub{},
		changed: make(chan struct{}), seenLost: map[string]bool{}}, nil
}

func (l *Launcher) write(ctx context.Context) *nomad.WriteOptions {
	return (&nomad.WriteOptions{}).WithContext(ctx)
}

// fence is Config.Fence's answer: nil when this controller may change the
// job.
func (l *Launcher) fence(ctx context.Context) error {
	if l.cfg.Fence == nil {
		return nil
	}
	if err := l.cfg.Fence(ctx); err != nil {
		return fmt.Errorf("nomad: job %s left as it is: %w", l.cfg.Job, err)
	}
	return nil
}

// Submit stores the node spec in the job's variable and registers the job.
// A job of the same name that runs (the controller restarted, or a new one
// on another host) is adopted: its count and allocations stay, it is
// registered again only when its spec differs (in place, or as a rolling
// update: never a stop), and Submit returns its nodes, one per slot below
// its count, for the group to adopt (nodegroup.Group.Start). Otherwise the
// job is registered with no node (Launch sets the count).
func (l *Launcher) Submit(ctx context.Context, spec []byte) ([]nodegroup.Adopted, error) {
	if err := l.fence(ctx); err != nil {
		return nil, err
	}
	v := &nomad.Variable{Path: VariablePath(l.cfg.Job), Namespace: l.cfg.Namespace, Items: nomad.VariableItems{SpecItem: string(spec)}}
	if _, _, err := l.nc.Variables().Create(v, l.write(ctx)); err != nil {
		return nil, l.cfg.Explain("write variable "+v.Path, err)
	}
	// The job is read, and written on the index read; when another write
	// came between (the last owner's, or a controller registering the
	// job anew), it is read and decided again.
	for attempt := 1; ; attempt++ {
		adopted, err := l.submitJob(ctx)
		if !errors.Is(err, errJobMoved) || attempt == jobRetries {
			return adopted, err
		}
		l.logger.Info("nomad: the job changed while this controller took it over: reading it again", "err", err)
	}
}

// submitJob adopts the job that runs, or registers a new one on the
// condition that none exists.
func (l *Launcher) submitJob(ctx context.Context) ([]nodegroup.Adopted, error) {
	cur, err := l.runningJob(ctx)
	if err != nil {
		return nil, err
	}
	if cur != nil {
		return l.adopt(ctx, cur)
	}
	l.scaleMu.Lock()
	defer l.scaleMu.Unlock()
	// A stopped job is registered again on its index; none on 0.
	old, err := l.readJob(ctx)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.jobIndex, l.keepRolling = 0, false
	if old != nil {
		l.jobIndex = *old.JobModifyIndex
	}
	l.mu.Unlock()
	if _, err := l.register(ctx, Job(l.cfg, 0), true); err != nil {
		if !errors.Is(err, errJobMoved) {
			// No job runs to read the spec: its secrets do not stay in Nomad.
			path := VariablePath(l.cfg.Job)
			if _, derr := l.nc.Variables().Delete(path, l.write(ctx)); derr != nil {
				err = fmt.Errorf("%w; and its variable stays: %w", err, l.cfg.Explain("delete variable "+path, derr))
			}
		}
		return nil, err
	}
	l.note("", "job %s registered at %s (count 0; the group scales it)", l.cfg.Job, l.cfg.Address)
	return nil, nil
}

// Close stops the job, waits (Run following) until its allocations ended
// or ctx ends, and deletes its variable (the spec's secrets).
func (l *Launcher) Close(ctx context.Context) error {
	if err := l.fence(ctx); err != nil {
		return err
	}
	// The stop is a register of the job stopped, conditioned on the index
	// this owner last saw (ADR 31): Nomad's deregister takes no index.
	l.scaleMu.Lock()
	l.mu.Lock()
	count := l.count
	l.mu.Unlock()
	stopped := l.wanted(count)
	stopped.Stop = ptr(true)
	_, err := l.register(ctx, stopped, false)
	l.scaleMu.Unlock()
	if err != nil {
		// Not stopped (taken over, or Nomad refused it): the spec stays
		// for the nodes that run.
		return fmt.Errorf("stop job %s: %w", l.cfg.Job, err)
	}
	for err == nil {
		l.mu.Lock()
		n := 0
		for _, a := range l.allocs {
			if !ended(a) {
				n++
			}
		}
		l.mu.Unlock()
		if n == 0 {
			break
		}
		if werr := l.wait(ctx); werr != nil {
			err = fmt.Errorf("nomad: %d allocations of %s still run: %w", n, l.cfg.Job, werr)
		}
	}
	if _, verr := l.nc.Variables().Delete(VariablePath(l.cfg.Job), l.write(ctx)); verr != nil && err == nil {
		err = l.cfg.Explain("delete variable", verr)
	}
	return err
}

// Run follows the job's allocations, and the clients that may run a node,
// with blocking queries until ctx ends.
func (l *Launcher) Run(ctx context.Context) error {
	var hosts sync.WaitGroup
	defer hosts.Wait()
	hosts.Go(func() { l.followHosts(ctx) })
	var index uint64
	for ctx.Err() == nil {
		q := (&nomad.QueryOptions{WaitIndex: index, WaitTime: l.cfg.Poll}).WithContext(ctx)
		allocs, meta, err := l.nc.Jobs().Allocations(l.cfg.Job, true, q)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			l.logger.Warn("nomad: list allocations", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		if meta.LastIndex < index {
			index = 0 // the index went back (a new server): start over
		} else {
			index = meta.LastIndex
		}
		l.update(allocs)
		l.endRoll(ctx)
	}
	return nil
}

// update records the job's allocations and wakes whoever waits for them.
func (l *Launcher) update(allocs []*nomad.AllocationListStub) {
	cur := newest(allocs)
	l.mu.Lock()
	l.allocs = cur
	byID := make(map[string]*nomad.AllocationListStub, len(allocs))
	for _, a := range allocs {
		byID[a.ID] = a
	}
	var lost []string
	for _, s := range l.slots {
		if a := byID[s.alloc]; a != nil && a.ClientStatus == nomad.AllocClientStatusLost && !l.seenLost[a.ID] {
			l.seenLost[a.ID] = true
			lost = append(lost, fmt.Sprintf("%s: nomad lost allocation %s on %s (%s)", s.id, short(a.ID), a.NodeName, why(a)))
		}
	}
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
	for _, m := range lost {
		l.note("", "%s", m)
	}
}

// wait returns when the allocations change, or ctx ends.
func (l *Launcher) wait(ctx context.Context) error {
	l.mu.Lock()
	ch := l.changed
	l.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *Launcher) note(node, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.logger.Info(msg, "node", node)
	if l.event != nil {
		l.event(api.Event{Kind: "nomad", Node: node, Message: msg})
	}
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// slotIndex is node-N's slot, N-1.
func slotIndex(id string) (int, error) {
	var n int
	if _, err := fmt.Sscanf(id, "node-%d", &n); err != nil || n < 1 || "node-"+strconv.Itoa(n) != id {
		return 0, fmt.Errorf("nomad: node id %q is not node-N", id)
	}
	return n - 1, nil
}

// Launch implements nodegroup.Launcher. A new slot raises the count; a
// failed node's slot is refilled by Nomad's own replacement of a lost
// allocation when there is one, else by a forced reschedule. It returns
// once the allocation runs, with the node's address from it.
func (l *Launcher) Launch(ctx context.Context, n nodegroup.Node) (nodegroup.Node, error) {
	i, err := slotIndex(n.ID)
	if err != nil {
		return n, err
	}
	l.mu.Lock()
	s := l.slots[i]
	prev := ""
	if s != nil {
		prev = s.alloc
	}
	act := launchAction(s, l.allocs[i])
	if act == actScale {
		l.slots[i] = &slot{id: n.ID}
	}
	l.mu.Unlock()

	switch act {
	case actScale:
		if err := l.scale(ctx, fmt.Sprintf("scalepress: launch %s", n.ID)); err != nil {
			return n, err
		}
	case actReschedule:
		// waitRunning forces the reschedule of the failed allocation.
	}
	wctx, cancel := context.WithTimeout(ctx, l.cfg.PlaceTimeout)
	a, err := l.waitRunning(wctx, i, prev)
	cancel()
	if err != nil {
		return n, fmt.Errorf("%s: %w", n.ID, err)
	}
	l.mu.Lock()
	if s := l.slots[i]; s != nil {
		s.alloc = a.ID
	}
	verb := "placed"
	switch {
	case act == actReschedule:
		verb = "rescheduled"
	case prev != "" && l.seenLost[prev]:
		verb = "replaced the lost allocation"
	case prev != "":
		verb = "replaced allocation " + short(prev) + " with"
	}
	l.mu.Unlock()
	got := nodegroup.Node{ID: n.ID, Addr: a.addr}
	l.note(n.ID, "%s: nomad %s: allocation %s on %s at %s", n.ID, verb, short(a.ID), a.host, a.addr)
	return got, nil
}

// launchAct is what a Launch asks of Nomad.
type launchAct int

const (
	actScale      launchAct = iota // a new slot: raise the count
	actAdopt                       // Nomad replaced the node's lost allocation already: take it
	actReschedule                  // the node's allocation failed in its slot: force a reschedule
	actWait                        // its replacement is being placed: wait for it
	// actRunning: the node's allocation still runs as far as Nomad knows
	// (Fail could not reach its client): wait until Nomad decides (lost:
	// its replacement is adopted; failed: it is rescheduled).
	actRunning
)

// launchAction decides a Launch from the slot as held (nil: new) and the
// newest allocation in it.
func launchAction(s *slot, cur *nomad.AllocationListStub) launchAct {
	switch {
	case s == nil:
		return actScale
	case cur != nil && cur.ID != s.alloc && live(cur):
		return actAdopt
	case cur != nil && failedInPlace(cur):
		return actReschedule
	case cur != nil && cur.ID == s.alloc && live(cur):
		return actRunning
	}
	return actWait
}

// placed is an allocation that runs, with where.
type placed struct {
	ID, host, addr string
}

// reforce is how often waitRunning forces the reschedule of a failed
// allocation again while nothing replaced it.
const reforce = 5 * time.Second

// waitRunning waits for an allocation in slot i other than prev to run
// and reads its address, failing when it ends first. While prev is failed
// in its slot (a late Fail) it forces its reschedule, and again every
// reforce: the force can be lost when Nomad's own evaluation of the
// failure (which defers the reschedule by a year) writes the allocation
// back after it, which left a moved node unplaced for a minute.
func (l *Launcher) waitRunning(ctx context.Context, i int, prev string) (placed, error) {
	var forcedAt time.Time
	for {
		l.mu.Lock()
		a := l.allocs[i]
		l.mu.Unlock()
		if a != nil && a.ID == prev && prev != "" && failedInPlace(a) && time.Since(forcedAt) >= reforce {
			if !forcedAt.IsZero() {
				l.logger.Info("nomad: the failed allocation is not rescheduled yet: forcing again", "slot", i, "alloc", short(a.ID))
			}
			forcedAt = time.Now()
			if _, _, err := l.nc.Jobs().EvaluateWithOpts(l.cfg.Job, nomad.EvalOptions{ForceReschedule: true}, l.write(ctx)); err != nil {
				return placed{}, l.cfg.Explain(fmt.Sprintf("reschedule slot %d", i), err)
			}
		}
		if a != nil && a.ID != prev {
			switch {
			case running(a):
				addr, err := l.address(ctx, a.ID)
				if err != nil {
					return placed{}, err
				}
				return placed{ID: a.ID, host: a.NodeName, addr: addr}, nil
			case !live(a) && a.DesiredStatus == nomad.AllocDesiredStatusRun:
				return placed{}, fmt.Errorf("allocation %s exited while starting: %s", short(a.ID), why(a))
			}
		}
		wctx, cancel := ctx, context.CancelFunc(func() {})
		if !forcedAt.IsZero() {
			wctx, cancel = context.WithTimeout(ctx, reforce)
		}
		err := l.wait(wctx)
		cancel()
		if err != nil && ctx.Err() != nil {
			last := "none placed"
			if a != nil && a.ID != prev {
				last = "allocation " + short(a.ID) + " " + a.ClientStatus
			}
			return placed{}, fmt.Errorf("no allocation running in slot %d (%s): %w", i, last, ctx.Err())
		}
	}
}

// address is the node agent's address: the allocation's port PortLabel.
func (l *Launcher) address(ctx context.Context, id string) (string, error) {
	a, _, err := l.nc.Allocations().Info(id, (&nomad.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return "", l.cfg.Explain(fmt.Sprintf("allocation %s", short(id)), err)
	}
	if a.AllocatedResources != nil {
		for _, p := range a.AllocatedResources.Shared.Ports {
			if p.Label == PortLabel {
				return net.JoinHostPort(p.HostIP, strconv.Itoa(p.Value)), nil
			}
		}
	}
	return "", fmt.Errorf("nomad: allocation %s has no port %q", short(id), PortLabel)
}

// wantCountLocked is the count that keeps every held slot not released
// and every slot below it.
func (l *Launcher) wantCountLocked() int {
	top := -1
	for i, s := range l.slots {
		if !s.released {
			top = max(top, i)
		}
	}
	return top + 1
}

// scale sets the job's count to what the held slots want now. Requests
// are sent one at a time, each with the count wanted when it is sent, so
// concurrent launches and stops never leave an older count last.
func (l *Launcher) scale(ctx context.Context, why string) error {
	l.scaleMu.Lock()
	defer l.scaleMu.Unlock()
	l.mu.Lock()
	count, same := l.wantCountLocked(), l.wantCountLocked() == l.count
	l.mu.Unlock()
	if same {
		return nil
	}
	if err := l.fence(ctx); err != nil {
		return err
	}
	// A register of the job with the new count, conditioned on the index
	// this owner last saw (Nomad's scale request cannot be conditioned).
	if _, err := l.register(ctx, l.wanted(count), false); err != nil {
		return fmt.Errorf("scale %s to %d (%s): %w", l.cfg.Job, count, why, err)
	}
	l.mu.Lock()
	l.count = count
	l.mu.Unlock()
	return nil
}

// Stop implements nodegroup.Launcher: it releases the node's slot and
// lowers the count over the released slots at the top, then waits until
// Nomad stopped the node's allocation. A node below one still draining
// waits for it: Nomad stops the highest slots.
func (l *Launcher) Stop(ctx context.Context, id string) error {
	i, err := slotIndex(id)
	if err != nil {
		return err
	}
	l.mu.Lock()
	s := l.slots[i]
	if s == nil {
		l.mu.Unlock()
		return nil
	}
	s.released = true
	want := l.wantCountLocked()
	for j := range l.slots {
		if j >= want {
			delete(l.slots, j) // Nomad stops them now
		}
	}
	alloc := s.alloc
	var failed []int
	for j, a := range l.allocs {
		if j >= want && failedInPlace(a) {
			failed = append(failed, j)
		}
	}
	l.mu.Unlock()
	if len(failed) > 0 {
		// Nomad counts a failed allocation that holds its slot, yet
		// stops only live ones: lowering the count over it would stop
		// another node. Refill it first, then lower the count.
		if err := l.refill(ctx, failed); err != nil {
			return fmt.Errorf("stop %s: %w", id, err)
		}
	}
	if err := l.scale(ctx, fmt.Sprintf("scalepress: %s drained", id)); err != nil {
		return err
	}
	for {
		l.mu.Lock()
		a := l.allocs[i]
		l.mu.Unlock()
		if a == nil || a.ID != alloc || ended(a) {
			return nil
		}
		if err := l.wait(ctx); err != nil {
			return fmt.Errorf("stop %s: allocation %s still runs: %w", id, short(alloc), err)
		}
	}
}

// refill force-reschedules the failed allocations of slots and waits until
// none of them is failed in place.
func (l *Launcher) refill(ctx context.Context, slots []int) error {
	if err := l.fence(ctx); err != nil {
		return err
	}
	if _, _, err := l.nc.Jobs().EvaluateWithOpts(l.cfg.Job, nomad.EvalOptions{ForceReschedule: true}, l.write(ctx)); err != nil {
		return l.cfg.Explain("reschedule", err)
	}
	for {
		l.mu.Lock()
		pending := slices.ContainsFunc(slots, func(j int) bool { a := l.allocs[j]; return a != nil && failedInPlace(a) })
		l.mu.Unlock()
		if !pending {
			return nil
		}
		if err := l.wait(ctx); err != nil {
			return fmt.Errorf("failed allocations not refilled: %w", err)
		}
	}
}

// Fail implements nodegroup.Slotted: FailSignal to the node's task (it
// stops its processes and exits with an error), then it waits until the
// allocation ended. The slot stays.
func (l *Launcher) Fail(ctx context.Context, id string) error {
	i, err := slotIndex(id)
	if err != nil {
		return err
	}
	l.mu.Lock()
	s, a := l.slots[i], l.allocs[i]
	l.mu.Unlock()
	if s == nil || a == nil || a.ID != s.alloc || !live(a) {
		return nil
	}
	if err := l.fence(ctx); err != nil {
		return err
	}
	if err := l.nc.Allocations().Signal(&nomad.Allocation{ID: a.ID, NodeID: a.NodeID}, (&nomad.QueryOptions{}).WithContext(ctx), Task, FailSignal); err != nil {
		return l.cfg.Explain(fmt.Sprintf("fail %s", id), err)
	}
	for {
		l.mu.Lock()
		cur := l.allocs[i]
		l.mu.Unlock()
		if cur == nil || cur.ID != a.ID || ended(cur) {
			l.note(id, "%s: nomad allocation %s failed on the group's order", id, short(a.ID))
			return nil
		}
		if err := l.wait(ctx); err != nil {
			return fmt.Errorf("fail %s: allocation %s still runs: %w", id, short(a.ID), err)
		}
	}
}

// List implements nodegroup.Launcher: every held slot's node with its
// allocation. A node is alive while the allocation it was launched as
// runs: Nomad's replacement of it is a new node, which Launch adopts.
func (l *Launcher) List() []nodegroup.Instance {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]nodegroup.Instance, 0, len(l.slots))
	for i, s := range l.slots {
		if s.alloc == "" {
			continue
		}
		in := nodegroup.Instance{Node: nodegroup.Node{ID: s.id}}
		p := nodegroup.Process{Name: s.id + "-alloc-" + short(s.alloc)}
		cur := l.allocs[i]
		if cur != nil && cur.ID != s.alloc {
			cur = nil
		}
		switch {
		case cur == nil:
			in.Exit = "allocation " + short(s.alloc) + " replaced or gone"
		case live(cur):
			in.Host, p.Alive = cur.NodeName, true
			if ts := cur.TaskStates[Task]; ts != nil {
				p.Restarts = int(ts.Restarts)
			}
		default:
			in.Host, in.Exit = cur.NodeName, "allocation "+short(cur.ID)+" "+why(cur)
		}
		in.Procs = []nodegroup.Process{p}
		out = append(out, in)
	}
	return out
}
