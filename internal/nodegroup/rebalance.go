package nodegroup

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/scalepress/scalepress/internal/api"
)

// Layout is how many nodes in service each eligible host runs.
type Layout map[string]int

func (l Layout) String() string {
	var b strings.Builder
	for i, h := range slices.Sorted(maps.Keys(l)) {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s:%d", h, l[h])
	}
	return b.String()
}

// uneven returns the busiest and the least busy host when the busiest
// runs at least two nodes more (ties go to the first name), else ok is
// false.
func (l Layout) uneven() (busiest, least string, ok bool) {
	for _, h := range slices.Sorted(maps.Keys(l)) {
		if busiest == "" || l[h] > l[busiest] {
			busiest = h
		}
		if least == "" || l[h] < l[least] {
			least = h
		}
	}
	return busiest, least, busiest != "" && l[busiest]-l[least] >= 2
}

// layoutOf counts the nodes in service on each eligible host, leaving out
// the node except (the rebalance's spare).
func layoutOf(hosts []NodeHost, nodes []*node, hostOf map[string]string, except string) Layout {
	l := Layout{}
	for _, h := range hosts {
		l[h.Name] = 0
	}
	for _, n := range nodes {
		if n.state != api.NodeInService || n.ID == except {
			continue
		}
		if h, ok := l[hostOf[n.ID]]; ok {
			l[hostOf[n.ID]] = h + 1
		}
	}
	return l
}

// settleLocked records when each eligible host became ready (the later of
// the scheduler's word and the group's first sight of it since it was last
// missing) and returns the first host still settling, with how long it has
// been ready.
func (g *Group) settleLocked(now time.Time, hosts []NodeHost) (string, time.Duration) {
	first := g.hostSince == nil
	if first {
		g.hostSince = map[string]time.Time{}
	}
	seen := map[string]bool{}
	for _, h := range hosts {
		seen[h.Name] = true
		since, ok := g.hostSince[h.Name]
		switch {
		case !ok && first && !h.ReadySince.IsZero():
			since = h.ReadySince // ready before the group started
		case !ok:
			since = now // came (back) while the group watched
		}
		if h.ReadySince.After(since) {
			since = h.ReadySince // it flapped between two looks
		}
		g.hostSince[h.Name] = since
	}
	for h := range g.hostSince {
		if !seen[h] {
			delete(g.hostSince, h)
		}
	}
	for _, h := range slices.Sorted(maps.Keys(g.hostSince)) {
		if d := now.Sub(g.hostSince[h]); d < g.cfg.RebalanceAfter {
			return h, d
		}
	}
	return "", 0
}

// maybeRebalance starts a rebalance when the eligible hosts are unevenly
// used and nothing else changes the group: idle is a reconcile that
// decided nothing, hostOf where each node runs.
func (g *Group) maybeRebalance(ctx context.Context, now time.Time, idle bool, hostOf map[string]string) {
	if g.spreader == nil || g.cfg.RebalanceAfter <= 0 || ctx.Err() != nil {
		return
	}
	hosts, busy := g.spreader.Hosts()
	g.mu.Lock()
	defer g.unlock()
	settling, ready := g.settleLocked(now, hosts)
	if g.moving {
		return
	}
	layout := layoutOf(hosts, g.nodes, hostOf, "")
	from, to, uneven := layout.uneven()
	why := ""
	switch {
	case !uneven:
		g.waitWhy = ""
		return
	case !idle:
		why = "the group is scaling or healing"
	case busy != "":
		why = busy
	case settling != "":
		why = fmt.Sprintf("%s is ready for %s of %s", settling, ready.Round(time.Second), g.cfg.RebalanceAfter)
	case now.Sub(g.lastRebalance) < g.cfg.RebalanceAfter:
		why = fmt.Sprintf("the last rebalance ended %s ago (less than %s)", now.Sub(g.lastRebalance).Round(time.Second), g.cfg.RebalanceAfter)
	}
	if why == "" {
		why = g.unsteadyLocked()
	}
	if why != "" {
		if why != g.waitWhy {
			g.waitWhy = why
			g.logger.Info("rebalance waits", "layout", layout.String(), "why", why)
		}
		return
	}
	g.waitWhy = ""
	g.moving = true
	g.outbox = append(g.outbox, api.Event{Kind: "rebalance", Inputs: map[string]any{"layout": layout.String(), "desired": g.policy.desired},
		Message: fmt.Sprintf("rebalance: %s runs %d nodes and %s %d (%s): launching a spare node so that no fewer than %d serve while nodes move",
			from, layout[from], to, layout[to], layout, g.policy.desired)})
	g.wg.Go(func() { g.rebalance(ctx, hosts) })
}

// unsteadyLocked says why the group is not steady ("" when it is): every
// node it keeps is in service (or terminated) and they are as many as
// desired.
func (g *Group) unsteadyLocked() string {
	k := 0
	for _, n := range g.nodes {
		switch n.state {
		case api.NodeTerminated:
		case api.NodeInService:
			k++
		default:
			return fmt.Sprintf("%s is %s", n.ID, n.state)
		}
	}
	if k != g.policy.desired {
		return fmt.Sprintf("%d nodes in service, %d desired", k, g.policy.desired)
	}
	return ""
}

// rebalance launches a spare node (the group stays at its desired size in
// service meanwhile), moves nodes off the busiest host, one at a time, each through the edges' drain, then drains
// the spare. It stops moving when the layout without the spare is even,
// when the group is no longer steady (a node failed) or ctx ends.
func (g *Group) rebalance(ctx context.Context, hosts []NodeHost) {
	defer func() {
		g.mu.Lock()
		g.moving, g.lastRebalance = false, time.Now()
		g.mu.Unlock()
	}()
	g.mu.Lock()
	spare, done := g.launchNodeLocked(ctx, 0, "rebalance: spare")
	spareID := spare.ID
	g.unlock()
	if err := <-done; err != nil {
		// The spare failed: the policy replaces and then drains it as
		// any node above the desired size.
		g.event("rebalance", spareID, nil, "rebalance abandoned: the spare %s did not come into service: %v", spareID, err)
		return
	}
	// The scheduler places each moved node itself: among hosts equally
	// used (the spare's counts) it may choose one that leaves the layout as
	// uneven as it was. The node moved last is then moved again when it
	// sits on the busiest host: Nomad avoids every host its slot was
	// rescheduled from, so with H hosts it lands right within H-1 tries.
	// At most one move per host, then the spare leaves; a rebalance after
	// the settle time goes on (docs/adr/0030-rebalance-after-heal.md).
	last, stopped := "", false
	for range len(hosts) {
		hostOf := g.hostsOf()
		g.mu.Lock()
		layout := layoutOf(hosts, g.nodes, hostOf, spareID)
		from, _, uneven := layout.uneven()
		why := g.unsteadyExceptLocked(spareID)
		var victim *node
		for _, n := range g.nodes {
			if n.state != api.NodeInService || n.ID == spareID || hostOf[n.ID] != from {
				continue
			}
			if n.ID == last {
				victim = n
				break
			}
			if victim == nil || n.index > victim.index {
				victim = n
			}
		}
		victimID := ""
		if victim != nil {
			victimID = victim.ID
		}
		g.mu.Unlock()
		if !uneven || victim == nil {
			break
		}
		if why != "" {
			g.event("rebalance", "", nil, "rebalance stops: %s", why)
			stopped = true
			break
		}
		if err := g.move(ctx, victim, from, layout); err != nil {
			g.event("rebalance", victimID, nil, "rebalance stops: %v", err)
			stopped = true
			break
		}
		last = victimID
	}
	if stopped {
		// A node failed (a moved one that did not come back, or another):
		// the spare serves until the group heals it, so that the group
		// does not run short twice.
		g.waitSteady(ctx, spareID)
	}
	if ctx.Err() != nil {
		return
	}
	g.mu.Lock()
	if spare.state != api.NodeInService {
		g.mu.Unlock()
		return // it failed meanwhile: the policy replaces and drains it
	}
	g.setStateLocked(spare, api.NodeDraining, "rebalance: the spare leaves")
	gen := g.gen
	g.unlock()
	g.drain(ctx, spare, gen)
	hostOf := g.hostsOf()
	g.mu.Lock()
	layout := layoutOf(hosts, g.nodes, hostOf, "")
	g.mu.Unlock()
	g.event("rebalance", "", map[string]any{"layout": layout.String()}, "rebalance done: %s", layout)
}

// waitSteady waits until the group besides the spare is steady, for at
// most the time a replacement takes to start (ReadyTimeout plus
// FilesTimeout plus FailedStopTimeout), or ctx ends.
func (g *Group) waitSteady(ctx context.Context, spare string) {
	deadline := time.After(g.cfg.ReadyTimeout + g.cfg.FilesTimeout + g.cfg.FailedStopTimeout)
	for {
		g.mu.Lock()
		why := g.unsteadyExceptLocked(spare)
		g.mu.Unlock()
		if why == "" {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-deadline:
			g.logger.Warn("rebalance: the spare leaves with the group not steady", "why", why)
			return
		case <-time.After(pollInterval):
		}
	}
}

// unsteadyExceptLocked is unsteadyLocked during a rebalance: its spare is
// one node above the desired size.
func (g *Group) unsteadyExceptLocked(spare string) string {
	k := 0
	for _, n := range g.nodes {
		switch {
		case n.state == api.NodeTerminated:
		case n.state == api.NodeInService:
			if n.ID != spare {
				k++
			}
		default:
			return fmt.Sprintf("%s is %s", n.ID, n.state)
		}
	}
	if k != g.policy.desired {
		return fmt.Sprintf("%d nodes in service besides the spare, %d desired", k, g.policy.desired)
	}
	return ""
}

// move takes victim out of the edges' set, waits for its requests, stops
// its processes in its slot and launches it again there: the scheduler
// places it, spreading the nodes. It returns once the node is back in
// service.
func (g *Group) move(ctx context.Context, victim *node, from string, before Layout) error {
	g.mu.Lock()
	if victim.state != api.NodeInService {
		g.mu.Unlock()
		return fmt.Errorf("%s is %s", victim.ID, victim.state)
	}
	g.setStateLocked(victim, api.NodeDraining, "rebalance: moving off "+from)
	id, index, gen := victim.ID, victim.index, g.gen
	nd := victim.Node
	g.unlock()
	t0 := time.Now()
	if !g.deregister(ctx, nd, gen) {
		return ctx.Err()
	}
	sctx, cancel := context.WithTimeout(context.Background(), g.cfg.StopTimeout)
	err := g.stopProcs(sctx, id)
	cancel()
	if err != nil {
		g.logger.Warn("stop of a node being moved", "node", id, "err", err)
	}
	g.mu.Lock()
	g.setStateLocked(victim, api.NodeTerminated, "")
	_, done := g.launchNodeLocked(ctx, index, "rebalance: moved off "+from)
	g.unlock()
	if err := <-done; err != nil {
		return fmt.Errorf("%s did not come back into service: %w", id, err)
	}
	to := g.hostsOf()[id]
	g.mu.Lock()
	if to != from {
		g.moves++
	}
	g.mu.Unlock()
	g.event("rebalance", id, map[string]any{"from": from, "to": to, "before": before.String()},
		"rebalance: %s moved from %s to %s in %s (before: %s)", id, from, to, time.Since(t0).Round(time.Millisecond), before)
	return nil
}

// hostsOf is where the launcher runs each node.
func (g *Group) hostsOf() map[string]string {
	out := map[string]string{}
	for _, in := range g.launcher.List() {
		if in.Alive() {
			out[in.ID] = in.Host
		}
	}
	return out
}

// Moves is how many nodes rebalances moved to another host so far.
func (g *Group) Moves() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.moves
}
