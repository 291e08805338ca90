package nodegroup

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/autoscale"
)

// Member is one node as the policy sees it: its state and how it is doing,
// never its processes or address.
type Member struct {
	ID    string
	Index int    // node-Index; higher is newer
	Key   string // unique per launch: an id is reused after its node terminated
	State string // api.Node*
	Since time.Time
	// Alive: its launcher reports every process of the node running.
	Alive bool
	// Fails counts the health reports in a row that failed.
	Fails int
	// Replacing: the node failed and was ordered replaced; its stop is under way.
	Replacing bool
	// Load, for the autoscaler.
	Utilization float64
	Queue       int
	Children    int
	Done        int64 // PHP requests completed since the node started
}

// Change is one node the plan acts on, with the reason recorded in its event.
type Change struct {
	ID     string
	Reason string
}

// Plan is what one reconcile decides.
type Plan struct {
	// Fail: nodes to mark failed.
	Fail []Change
	// Replace: failed nodes to stop now; a launch takes each one's place.
	Replace []Change
	// Deferred: failed nodes whose replacement waits for the budget.
	Deferred []Change
	// Scale is the autoscaler's decision; Desired the size the group
	// converges on, ScaleChanged whether it moved (an event).
	Scale        autoscale.Decision
	Desired      int
	ScaleChanged bool
	// HostFull: the load started asking for more nodes than the host can
	// run (autoscale.HostFull); an event says why, once per episode.
	HostFull bool
	// Launch new nodes; Drain nodes in service or starting; Drop failed
	// nodes that wait for a replacement the smaller group no longer needs.
	Launch int
	Drain  []Change
	Drop   []Change
}

// policy decides; it owns the autoscaler's and the healer's history and the
// desired size. It never reads the clock and does no I/O.
type policy struct {
	failAfter int
	// slotted: the launcher's scheduler chooses by slot (Slotted).
	slotted bool
	scaling Scaling
	scaler  *autoscale.Scaler
	healer  *autoscale.Healer
	desired int
	full    bool // the last decision was autoscale.HostFull
	// hold: a rebalance runs (its spare is one node above the desired
	// size): failures are healed, the size is neither decided nor acted on.
	hold bool
}

func newPolicy(cfg Config, slotted bool) (*policy, error) {
	p := &policy{failAfter: cfg.FailAfter, desired: cfg.Scaling.Count, slotted: slotted}
	h, err := autoscale.NewHealer(autoscale.HealPolicy{MaxReplacements: cfg.MaxReplacements, Window: cfg.ReplacementWindow})
	if err != nil {
		return nil, fmt.Errorf("nodegroup: %w", err)
	}
	p.healer = h
	if err := p.setScaling(cfg.Scaling); err != nil {
		return nil, err
	}
	return p, nil
}

// setScaling changes the limits and keeps the scaler's history.
func (p *policy) setScaling(s Scaling) error {
	ap := s.policy()
	if p.scaler == nil {
		sc, err := autoscale.NewScaler(ap)
		if err != nil {
			return fmt.Errorf("nodegroup: %w", err)
		}
		p.scaler = sc
	} else if err := p.scaler.SetPolicy(ap); err != nil {
		return fmt.Errorf("nodegroup: %w", err)
	}
	p.scaling = s
	return nil
}

// starting reports whether a node is launched and not yet in service.
func starting(state string) bool { return state == api.NodePending || state == api.NodeWarming }

// active reports whether a node is in the group and not on its way out.
func active(state string) bool { return starting(state) || state == api.NodeInService }

// decideOn is one reconcile at now over every node the group keeps, for a
// group whose new nodes start on host.
func (p *policy) decideOn(now time.Time, nodes []Member, host autoscale.Host) Plan {
	var plan Plan
	nodes = slices.Clone(nodes)

	// Failures: a node whose processes are gone once it answered (a
	// pending one is the launch's to judge), or that kept failing its
	// health reports in service.
	for i, n := range nodes {
		var why string
		switch {
		case (n.State == api.NodeWarming || n.State == api.NodeInService) && !n.Alive:
			why = "process exited"
		case n.State == api.NodeInService && n.Fails >= p.failAfter:
			why = fmt.Sprintf("%d health checks failed in a row", n.Fails)
		default:
			continue
		}
		plan.Fail = append(plan.Fail, Change{ID: n.ID, Reason: why})
		nodes[i].State, nodes[i].Since = api.NodeFailed, now
	}

	// Replacements, rate-limited by the healer.
	var health []autoscale.NodeHealth
	byKey := map[string]*Member{}
	for i, n := range nodes {
		if n.State == api.NodeTerminated {
			continue
		}
		c := autoscale.Healthy // a node being replaced was ordered already
		if n.State == api.NodeFailed && !n.Replacing {
			c = autoscale.Failed
		}
		health = append(health, autoscale.NodeHealth{ID: n.Key, Condition: c, Since: n.Since})
		byKey[n.Key] = &nodes[i]
	}
	hd := p.healer.Decide(now, health)
	for _, r := range hd.Replace {
		n := byKey[r.ID]
		n.Replacing = true
		plan.Replace = append(plan.Replace, Change{ID: n.ID, Reason: r.Reason})
	}
	for _, r := range hd.Deferred {
		plan.Deferred = append(plan.Deferred, Change{ID: byKey[r.ID].ID, Reason: r.Reason})
	}

	if p.hold {
		plan.Scale = autoscale.Decision{At: now, Desired: p.desired, Action: autoscale.None, Reason: "a rebalance runs"}
		plan.Desired = p.desired
		return plan
	}

	// The size the group intends: nodes launched and not leaving, and
	// failed nodes that keep their place until they are replaced.
	current := 0
	draining := false
	var metrics []autoscale.NodeMetric
	var waiting, inService, startingNodes, slots []Member
	for _, n := range nodes {
		if n.State == api.NodeDraining {
			draining = true
		}
		if p.slotted && (active(n.State) || n.State == api.NodeFailed) {
			slots = append(slots, n)
		}
		switch {
		case active(n.State):
			current++
			metrics = append(metrics, autoscale.NodeMetric{
				ID: n.ID, InService: n.State == api.NodeInService, Warming: starting(n.State),
				Utilization: n.Utilization, ListenQueue: n.Queue, MaxChildren: n.Children, Done: n.Done,
			})
			if n.State == api.NodeInService {
				inService = append(inService, n)
			} else {
				startingNodes = append(startingNodes, n)
			}
		case n.State == api.NodeFailed && !n.Replacing:
			current++
			waiting = append(waiting, n)
		case n.State == api.NodeFailed && p.slotted:
			// Its replacement refills its slot: the group launches it
			// once the failed one is stopped, not here.
			current++
		}
	}
	plan.Scale = p.scale(now, current, metrics, host)
	if plan.Scale.Desired != p.desired {
		plan.ScaleChanged = true
	}
	full := plan.Scale.Action == autoscale.HostFull
	plan.HostFull = full && !p.full
	p.full = full
	p.desired = plan.Scale.Desired
	plan.Desired = p.desired

	switch {
	case current < p.desired && p.slotted && draining:
		// A node at a new index would take a slot above the draining
		// one: the scheduler would then stop it instead. Launch once
		// the drain is over.
	case current < p.desired:
		plan.Launch = p.desired - current
	case current > p.desired && p.slotted:
		// The scheduler stops the highest slots: drain those, and wait
		// while one of them is failed (it serves nothing; it is refilled,
		// then drained).
		slices.SortFunc(slots, func(a, b Member) int { return cmp.Compare(b.Index, a.Index) })
		victims := slots[:min(current-p.desired, len(slots))]
		if slices.ContainsFunc(victims, func(n Member) bool { return n.State == api.NodeFailed }) {
			break
		}
		for _, n := range victims {
			plan.Drain = append(plan.Drain, Change{ID: n.ID, Reason: fmt.Sprintf("scale-in to %d", p.desired)})
		}
	case current > p.desired:
		// Failed nodes waiting for a replacement go first (they serve
		// nothing), then the newest in service; nodes still starting are
		// left to finish (they cost a launch already) unless nothing
		// else can go.
		extra := current - p.desired
		reason := fmt.Sprintf("scale-in to %d", p.desired)
		for _, n := range waiting[:min(extra, len(waiting))] {
			plan.Drop = append(plan.Drop, Change{ID: n.ID, Reason: reason})
		}
		extra -= len(plan.Drop)
		slices.SortFunc(inService, func(a, b Member) int { return cmp.Compare(b.Index, a.Index) })
		victims := append(inService, startingNodes...)
		for _, n := range victims[:min(extra, len(victims))] {
			plan.Drain = append(plan.Drain, Change{ID: n.ID, Reason: reason})
		}
	}
	return plan
}

// scale is the autoscaler's decision, or the fixed count when autoscaling
// is off.
func (p *policy) scale(now time.Time, current int, metrics []autoscale.NodeMetric, host autoscale.Host) autoscale.Decision {
	if !p.scaling.Enabled {
		return autoscale.Decision{At: now, Current: current, Desired: p.scaling.Count, Action: autoscale.None, Reason: "autoscaling disabled"}
	}
	return p.scaler.DecideOn(now, current, metrics, host)
}
