package nodegroup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/autoscale"
)

// Config tunes a Group.
type Config struct {
	Scaling Scaling
	// At most MaxReplacements failed nodes are replaced per ReplacementWindow.
	MaxReplacements   int
	ReplacementWindow time.Duration
	// Children is php-fpm's max_children per node: the autoscaler's capacity.
	Children int
	// FailAfter failed health reports in a row (one per Interval) fail a
	// node in service. Longer than the edges' fall (3 × 2 s): an edge stops
	// sending to a sick node first, the group replaces it only if it stays
	// sick.
	FailAfter int
	// Interval between probes of every node, and between reconciles.
	Interval time.Duration
	// ReadyTimeout bounds a launch until the node answers.
	ReadyTimeout time.Duration
	// FilesTimeout bounds how long a new node may take to apply every
	// change the files store held when it finished warming.
	FilesTimeout time.Duration
	// AckTimeout bounds the wait for every edge to apply a new node set.
	AckTimeout time.Duration
	// DeregistrationDelay bounds how long a draining node may finish its
	// requests.
	DeregistrationDelay time.Duration
	// StopTimeout bounds the stop of a drained node (its agent drains what
	// is left, then stops PHP); FailedStopTimeout a failed one's.
	StopTimeout       time.Duration
	FailedStopTimeout time.Duration
	// KeepTerminated is how many terminated nodes status keeps showing.
	KeepTerminated int
	// SiteHost is the Host header of the warm-up requests.
	SiteHost string
	// Host measures the host new nodes start on, once per reconcile (its
	// cores and CPU pressure, for the scaler's capacity checks); nil: not
	// measured. With nodes on several hosts this is where a launcher
	// would say which host the next node goes to.
	Host func() autoscale.Host
	// RebalanceAfter: over a launcher that spreads the nodes over several
	// hosts (Spreader), when the busiest eligible host runs at least two
	// nodes more than the least busy, the group moves nodes, one at a
	// time, once every eligible host has been ready this long (a host
	// that flaps moves nothing). 0 turns it off.
	RebalanceAfter time.Duration
}

// DefaultConfig returns the timings the group has always had; Scaling,
// Children and SiteHost are to be filled in.
func DefaultConfig() Config {
	return Config{
		MaxReplacements: 3, ReplacementWindow: time.Minute,
		FailAfter: 15, Interval: time.Second,
		ReadyTimeout: 60 * time.Second, FilesTimeout: 60 * time.Second, AckTimeout: 5 * time.Second,
		DeregistrationDelay: 30 * time.Second, StopTimeout: 60 * time.Second, FailedStopTimeout: 15 * time.Second,
		KeepTerminated: 8, RebalanceAfter: 30 * time.Second,
	}
}

// Validate names the first field that is wrong.
func (c Config) Validate() error {
	switch {
	case c.Scaling.Count < 0:
		return fmt.Errorf("nodegroup: Scaling.Count: must not be negative, got %d", c.Scaling.Count)
	case c.FailAfter < 1:
		return fmt.Errorf("nodegroup: FailAfter: must be at least 1, got %d", c.FailAfter)
	case c.Interval <= 0:
		return fmt.Errorf("nodegroup: Interval: must be positive, got %s", c.Interval)
	case c.ReadyTimeout <= 0 || c.FilesTimeout <= 0 || c.AckTimeout <= 0 || c.StopTimeout <= 0 || c.FailedStopTimeout <= 0:
		return fmt.Errorf("nodegroup: ReadyTimeout, FilesTimeout, AckTimeout, StopTimeout, FailedStopTimeout: must be positive")
	case c.DeregistrationDelay < 0:
		return fmt.Errorf("nodegroup: DeregistrationDelay: must not be negative, got %s", c.DeregistrationDelay)
	case c.RebalanceAfter < 0:
		return fmt.Errorf("nodegroup: RebalanceAfter: must not be negative (0 = off), got %s", c.RebalanceAfter)
	case c.KeepTerminated < 0:
		return fmt.Errorf("nodegroup: KeepTerminated: must not be negative, got %d", c.KeepTerminated)
	}
	return nil
}

// Hooks connect the group to the rest of the environment. Every hook but
// Node may be nil.
type Hooks struct {
	// Node names node index i (node-i) and the address it is to serve on.
	Node func(i int) Node
	// Publish hands the in-service set to the edges and returns its
	// generation. It is called with the group's lock held: it must not
	// block or call back into the group.
	Publish func(inService []Node) uint64
	// Applied returns once every edge applied generation gen, or ctx ends.
	Applied func(ctx context.Context, gen uint64)
	// TopPaths are the paths a new node is warmed with.
	TopPaths func(ctx context.Context) []string
	// FilesHead is the files store's last change; nil when file sync is off.
	FilesHead func(ctx context.Context) (uint64, error)
	// Event records an event (it is also logged).
	Event func(api.Event)
}

// Group runs the node group. Its state is its own: nothing outside reads a
// node but through Nodes and Autoscaling.
type Group struct {
	cfg      Config
	launcher Launcher
	slotted  Slotted  // the launcher, when its scheduler chooses by slot
	spreader Spreader // the launcher, when it places nodes over hosts
	prober   Prober
	hooks    Hooks
	logger   *slog.Logger
	wg       sync.WaitGroup // launches, drains, stops

	mu     sync.Mutex // never held while waiting
	nodes  []*node    // by index
	policy *policy
	gen    uint64      // generation of the last published set
	serial uint64      // launches so far: a node's Key
	outbox []api.Event // recorded once mu is released
	// decisions counts the scaling decisions that moved the desired size.
	decisions map[DecisionKey]uint64
	// The rebalance (rebalance.go): one at a time, its goroutine owns the
	// spare; the policy holds the size meanwhile.
	moving        bool
	moves         uint64               // nodes moved to another host
	lastRebalance time.Time            // when the last one ended
	hostSince     map[string]time.Time // when each eligible host became ready
	waitWhy       string               // why it waits, logged once
}

// DecisionKey is a kind of scaling decision: Direction "out" or "in" (of
// the desired size against the group's size; "none" when it only came back
// to it) and Reason, the autoscaler's action (autoscale.Action). Both come
// from small fixed sets, so they suit metric labels.
type DecisionKey struct {
	Direction string
	Reason    string
}

// Decisions returns how many scaling decisions of each kind moved the
// desired size so far.
func (g *Group) Decisions() map[DecisionKey]uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return maps.Clone(g.decisions)
}

func decisionKey(d autoscale.Decision) DecisionKey {
	k := DecisionKey{Direction: "none", Reason: string(d.Action)}
	switch {
	case d.Desired > d.Current:
		k.Direction = "out"
	case d.Desired < d.Current:
		k.Direction = "in"
	}
	return k
}

// node is the group's record of one node.
type node struct {
	Node
	index     int
	key       string
	state     string
	since     time.Time // of the last state change
	reason    string    // why it failed or drains
	fails     int       // health reports in a row that failed
	replacing bool      // failed and ordered replaced: its stop is under way
	deferred  bool      // its replacement waits for the budget (recorded once)
	report    Report    // the last good one
}

// New returns a group; Start launches its first nodes.
func New(cfg Config, l Launcher, p Prober, h Hooks, logger *slog.Logger) (*Group, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if h.Node == nil {
		return nil, errors.New("nodegroup: Hooks.Node is required")
	}
	slotted, _ := l.(Slotted)
	spreader, _ := l.(Spreader)
	pol, err := newPolicy(cfg, slotted != nil)
	if err != nil {
		return nil, err
	}
	return &Group{cfg: cfg, launcher: l, slotted: slotted, spreader: spreader, prober: p, hooks: h, logger: logger, policy: pol}, nil
}

// Start brings the group up and returns once every node is in service, or
// with the first failure: it adopts the nodes a launcher found running
// (adopted; a node that does not answer is replaced at its index), then
// launches as many new nodes as Scaling.Count wants beyond them.
func (g *Group) Start(ctx context.Context, adopted ...Adopted) error {
	var waits []<-chan error
	for _, a := range adopted {
		waits = append(waits, g.adopt(ctx, a))
	}
	for range g.cfg.Scaling.Count - len(adopted) {
		waits = append(waits, g.launch(ctx, "initial group"))
	}
	var first error
	for _, w := range waits {
		if err := <-w; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Run probes and reconciles the group every Interval until ctx ends, then
// waits for the launches and drains under way (they end with ctx).
func (g *Group) Run(ctx context.Context) error {
	defer g.wg.Wait()
	var loops sync.WaitGroup
	defer loops.Wait()
	loops.Go(func() { g.every(ctx, func() { g.probe(ctx) }) })
	loops.Go(func() { g.every(ctx, func() { g.reconcile(ctx, time.Now()) }) })
	<-ctx.Done()
	return nil
}

func (g *Group) every(ctx context.Context, fn func()) {
	t := time.NewTicker(g.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fn()
	}
}

// unlock releases mu and records the events gathered under it.
func (g *Group) unlock() {
	evs := g.outbox
	g.outbox = nil
	g.mu.Unlock()
	for _, e := range evs {
		g.record(e)
	}
}

func (g *Group) record(e api.Event) {
	g.logger.Info(e.Message, "kind", e.Kind, "node", e.Node)
	if g.hooks.Event != nil {
		g.hooks.Event(e)
	}
}

func (g *Group) event(kind, id string, inputs map[string]any, format string, args ...any) {
	g.record(api.Event{Kind: kind, Node: id, Message: fmt.Sprintf(format, args...), Inputs: inputs})
}

// setStateLocked moves n to state, republishes the in-service set when it
// changed, and records the transition.
func (g *Group) setStateLocked(n *node, state, reason string) {
	if n.state == state {
		return
	}
	prev := n.state
	n.state, n.since, n.reason = state, time.Now(), reason
	if state == api.NodeInService {
		n.fails = 0
	}
	if prev == api.NodeInService || state == api.NodeInService || g.gen == 0 {
		g.publishLocked()
	}
	msg := fmt.Sprintf("%s: %s → %s", n.ID, prev, state)
	if reason != "" {
		msg += " (" + reason + ")"
	}
	g.outbox = append(g.outbox, api.Event{Kind: "node", Node: n.ID, Message: msg})
	if state == api.NodeTerminated {
		g.pruneLocked()
	}
}

func (g *Group) publishLocked() {
	var set []Node
	for _, n := range g.nodes {
		if n.state == api.NodeInService {
			set = append(set, n.Node)
		}
	}
	if g.hooks.Publish != nil {
		g.gen = g.hooks.Publish(set)
	} else {
		g.gen++
	}
}

// pruneLocked forgets the oldest terminated nodes beyond KeepTerminated.
func (g *Group) pruneLocked() {
	var term []*node
	for _, n := range g.nodes {
		if n.state == api.NodeTerminated {
			term = append(term, n)
		}
	}
	if len(term) <= g.cfg.KeepTerminated {
		return
	}
	sort.SliceStable(term, func(i, j int) bool { return term[i].since.Before(term[j].since) })
	drop := term[:len(term)-g.cfg.KeepTerminated]
	g.nodes = slices.DeleteFunc(g.nodes, func(n *node) bool { return slices.Contains(drop, n) })
}

// addLocked records a new pending node at index i, or (i = 0) at the
// lowest index no live node uses.
func (g *Group) addLocked(i int) *node {
	if i == 0 {
		used := map[int]bool{}
		for _, n := range g.nodes {
			if n.state != api.NodeTerminated {
				used[n.index] = true
			}
		}
		i = 1
		for used[i] {
			i++
		}
	}
	g.serial++
	n := &node{Node: g.hooks.Node(i), index: i, key: strconv.FormatUint(g.serial, 10), state: api.NodePending, since: time.Now()}
	g.nodes = slices.DeleteFunc(g.nodes, func(o *node) bool { return o.index == i }) // a terminated one
	g.nodes = append(g.nodes, n)
	sort.Slice(g.nodes, func(a, b int) bool { return g.nodes[a].index < g.nodes[b].index })
	return n
}

// find is the node with key, nil once it is forgotten.
func (g *Group) findLocked(key string) *node {
	for _, n := range g.nodes {
		if n.key == key {
			return n
		}
	}
	return nil
}

// probe asks every node that may serve how it is, at once, and records
// the answers.
func (g *Group) probe(ctx context.Context) {
	g.mu.Lock()
	var targets []*node
	for _, n := range g.nodes {
		if n.state != api.NodeTerminated && n.state != api.NodeFailed {
			targets = append(targets, &node{Node: n.Node, key: n.key})
		}
	}
	g.mu.Unlock()
	var wg sync.WaitGroup
	for _, t := range targets {
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			r, err := g.prober.Report(pctx, t.Node)
			g.mu.Lock()
			defer g.unlock()
			n := g.findLocked(t.key)
			if n == nil {
				return
			}
			if err != nil || !r.PHPOK {
				n.fails++
				return
			}
			g.noteQuarantineLocked(n, r)
			n.fails, n.report = 0, r
		})
	}
	wg.Wait()
}

// reconcile takes one decision of the policy and acts on it.
func (g *Group) reconcile(ctx context.Context, now time.Time) {
	alive, hostOf := map[string]bool{}, map[string]string{}
	for _, in := range g.launcher.List() {
		alive[in.ID] = in.Alive()
		if in.Alive() {
			hostOf[in.ID] = in.Host
		}
	}
	host := autoscale.UnknownHost
	if g.cfg.Host != nil {
		host = g.cfg.Host()
	}
	g.mu.Lock()
	members := make([]Member, 0, len(g.nodes))
	for _, n := range g.nodes {
		members = append(members, Member{
			ID: n.ID, Index: n.index, Key: n.key, State: n.state, Since: n.since,
			Alive: alive[n.ID], Fails: n.fails, Replacing: n.replacing,
			Utilization: n.report.Utilization, Queue: n.report.Waiting, Children: g.cfg.Children, Done: n.report.PHPDone,
		})
	}
	g.policy.hold = g.moving
	plan := g.policy.decideOn(now, members, host)
	byID := map[string]*node{}
	for _, n := range g.nodes {
		if n.state != api.NodeTerminated {
			byID[n.ID] = n
		}
	}
	for _, c := range plan.Fail {
		g.setStateLocked(byID[c.ID], api.NodeFailed, c.Reason)
	}
	var stops, replaces []*node
	for _, c := range plan.Replace {
		n := byID[c.ID]
		n.replacing = true
		replaces = append(replaces, n)
		g.outbox = append(g.outbox, api.Event{Kind: "heal", Node: n.ID,
			Message: fmt.Sprintf("%s failed: stopping it and launching a replacement (%s)", n.ID, c.Reason)})
	}
	for _, c := range plan.Drop {
		n := byID[c.ID]
		n.replacing = true
		stops = append(stops, n)
		g.outbox = append(g.outbox, api.Event{Kind: "heal", Node: n.ID,
			Message: fmt.Sprintf("%s failed: stopping it without a replacement (%s)", n.ID, c.Reason)})
	}
	for _, c := range plan.Deferred {
		if n := byID[c.ID]; !n.deferred {
			n.deferred = true
			g.outbox = append(g.outbox, api.Event{Kind: "heal", Node: n.ID,
				Message: fmt.Sprintf("%s: replacement deferred: %s", n.ID, c.Reason)})
		}
	}
	if (plan.HostFull || plan.Scale.Verdict) && !plan.ScaleChanged {
		g.outbox = append(g.outbox, api.Event{Kind: "scale", Message: plan.Scale.Reason, Inputs: inputs(plan.Scale)})
	}
	if plan.ScaleChanged {
		if g.decisions == nil {
			g.decisions = map[DecisionKey]uint64{}
		}
		g.decisions[decisionKey(plan.Scale)]++
		g.outbox = append(g.outbox, api.Event{Kind: "scale", Message: plan.Scale.Reason, Inputs: inputs(plan.Scale)})
	}
	var drains []*node
	var gen uint64
	for _, c := range plan.Drain {
		n := byID[c.ID]
		g.setStateLocked(n, api.NodeDraining, c.Reason)
		drains = append(drains, n)
	}
	gen = g.gen
	g.unlock()

	for _, n := range replaces {
		g.wg.Go(func() { g.stopFailed(ctx, n, true) })
	}
	for _, n := range stops {
		g.wg.Go(func() { g.stopFailed(ctx, n, false) })
	}
	for _, n := range drains {
		g.wg.Go(func() { g.drain(ctx, n, gen) })
	}
	for range plan.Launch {
		g.launch(ctx, fmt.Sprintf("group below desired %d", plan.Desired))
	}
	idle := len(plan.Fail)+len(plan.Replace)+len(plan.Drop)+len(plan.Deferred)+len(plan.Drain)+plan.Launch == 0 && !plan.ScaleChanged
	g.maybeRebalance(ctx, now, idle, hostOf)
}

// NodeView is one node for the status document.
type NodeView struct {
	ID, Addr    string
	Host        string // where its launcher runs it ("" = this machine)
	State       string
	Reason      string // why it failed or drains
	Utilization float64
	FilesSeq    uint64
	PIDs        []int
	Restarts    int
}

// Nodes is every node the group keeps, by index, with the processes its
// launcher reports.
func (g *Group) Nodes() []NodeView {
	procs := map[string][]Process{}
	hosts := map[string]string{}
	for _, in := range g.launcher.List() {
		procs[in.ID], hosts[in.ID] = in.Procs, in.Host
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]NodeView, 0, len(g.nodes))
	for _, n := range g.nodes {
		v := NodeView{ID: n.ID, Addr: n.Addr, State: n.state, Utilization: n.report.Utilization, FilesSeq: n.report.FilesSeq, PIDs: []int{}}
		if n.state == api.NodeFailed || n.state == api.NodeDraining {
			v.Reason = n.reason
		}
		if n.state != api.NodeTerminated {
			v.Host = hosts[n.ID]
			for _, p := range procs[n.ID] {
				if p.PID > 0 {
					v.PIDs = append(v.PIDs, p.PID)
				}
				v.Restarts += p.Restarts
			}
		}
		out = append(out, v)
	}
	return out
}

// InService is the nodes in service, by index.
func (g *Group) InService() []Node {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []Node
	for _, n := range g.nodes {
		if n.state == api.NodeInService {
			out = append(out, n.Node)
		}
	}
	return out
}

// Autoscaling is the size policy in force, the desired size and the mean
// utilisation of the nodes in service.
func (g *Group) Autoscaling() *api.Autoscaling {
	g.mu.Lock()
	defer g.mu.Unlock()
	var sum float64
	k := 0
	for _, n := range g.nodes {
		if n.state == api.NodeInService {
			sum += n.report.Utilization
			k++
		}
	}
	s := g.policy.scaling
	a := &api.Autoscaling{Min: s.Min, Max: s.Max, Desired: g.policy.desired, Target: s.Target}
	if k > 0 {
		a.Utilization = sum / float64(k)
	}
	return a
}

// Scaling is the size policy in force.
func (g *Group) Scaling() Scaling {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.policy.scaling
}

// SetScaling changes the limits (Count and Enabled stay); the autoscaler
// keeps its history. The caller validated them (internal/config).
func (g *Group) SetScaling(s Scaling) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	s.Enabled, s.Count = g.policy.scaling.Enabled, g.policy.scaling.Count
	return g.policy.setScaling(s)
}
