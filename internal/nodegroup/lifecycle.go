package nodegroup

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/scalepress/scalepress/internal/api"
)

// pollInterval is how often a launch or a drain looks again.
const pollInterval = 100 * time.Millisecond

// launch adds a pending node and starts it in a goroutine the group owns:
// pending until it answers, warming while its docroot catches up and then
// its opcache is primed, then in service. The channel gets nil once it is in
// service, or why it is not.
func (g *Group) launch(ctx context.Context, reason string) <-chan error {
	g.mu.Lock()
	done := g.launchLocked(ctx, 0, reason)
	g.unlock()
	return done
}

// launchLocked adds a pending node at index i (0: the lowest free) and
// starts it.
func (g *Group) launchLocked(ctx context.Context, i int, reason string) <-chan error {
	_, done := g.launchNodeLocked(ctx, i, reason)
	return done
}

// launchNodeLocked is launchLocked, with the node it added.
func (g *Group) launchNodeLocked(ctx context.Context, i int, reason string) (*node, <-chan error) {
	n := g.addLocked(i)
	want, key := n.Node, n.key
	g.outbox = append(g.outbox, api.Event{Kind: "node", Node: want.ID, Message: fmt.Sprintf("%s: launching at %s (%s)", want.ID, want.Addr, reason)})
	done := make(chan error, 1)
	g.wg.Go(func() { done <- g.bringUp(ctx, want, key) })
	return n, done
}

func (g *Group) bringUp(ctx context.Context, want Node, key string) error {
	got, err := g.launcher.Launch(ctx, want)
	if err != nil {
		return g.launchFailed(key, want, fmt.Errorf("%s: %w", want.ID, err))
	}
	g.mu.Lock()
	if n := g.findLocked(key); n != nil {
		n.Node = got
	}
	g.mu.Unlock()
	if err := g.waitReady(ctx, got, key); err != nil {
		return g.launchFailed(key, got, err)
	}
	if !g.moveIf(key, api.NodePending, api.NodeWarming) {
		return g.gone(got)
	}
	// The docroot first: a node whose docroot its filesync agent makes
	// from the store (linked, ADR 29, or on another host) answers before
	// it has its files, and warming it then primes nothing.
	if err := g.waitFiles(ctx, got, key); err != nil {
		return g.launchFailed(key, got, err)
	}
	if g.serving() {
		g.warm(ctx, got)
		// And the changes made while it warmed.
		if err := g.waitFiles(ctx, got, key); err != nil {
			return g.launchFailed(key, got, err)
		}
	} else {
		// Nothing serves yet (up, or every node lost): a cold node now
		// beats a warm one later; its first requests warm it.
		g.logger.Info("node not warmed: no node in service", "node", got.ID)
	}
	if !g.moveIf(key, api.NodeWarming, api.NodeInService) {
		return g.gone(got)
	}
	return nil
}

// moveIf moves the node from one state to the next unless something else
// (a drain, a failure) moved it meanwhile.
func (g *Group) moveIf(key, from, to string) bool {
	g.mu.Lock()
	defer g.unlock()
	n := g.findLocked(key)
	if n == nil || n.state != from {
		return false
	}
	g.setStateLocked(n, to, "")
	return true
}

// gone is a launch that ended because the node left its course.
func (g *Group) gone(n Node) error {
	return fmt.Errorf("%s: drained or failed while starting", n.ID)
}

// launchFailed marks the node failed and stops it; its replacement is the
// policy's to order. When ctx ended (the controller stops) it does neither:
// everything is being stopped.
func (g *Group) launchFailed(key string, n Node, err error) error {
	g.mu.Lock()
	nd := g.findLocked(key)
	if nd == nil || !starting(nd.state) {
		g.mu.Unlock()
		return err
	}
	g.setStateLocked(nd, api.NodeFailed, err.Error())
	g.unlock()
	sctx, cancel := context.WithTimeout(context.Background(), g.cfg.FailedStopTimeout)
	defer cancel()
	if serr := g.stopProcs(sctx, n.ID); serr != nil {
		g.logger.Warn("stop of a node that failed to start", "node", n.ID, "err", serr)
	}
	return err
}

// stopProcs stops a failed node's processes. Over a Slotted launcher the
// node keeps its slot: its replacement refills it.
func (g *Group) stopProcs(ctx context.Context, id string) error {
	if g.slotted != nil {
		return g.slotted.Fail(ctx, id)
	}
	return g.launcher.Stop(ctx, id)
}

// waitReady polls the node until it answers, failing fast when its
// processes exit (a restart would only repeat the failure).
func (g *Group) waitReady(ctx context.Context, n Node, key string) error {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.ReadyTimeout)
	defer cancel()
	var last error
	for {
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		last = g.prober.Ready(cctx, n)
		ccancel()
		if last == nil {
			return nil
		}
		if in, ok := g.instance(n.ID); !ok || !in.Alive() {
			why := in.Exit
			if why == "" {
				why = "its processes are gone"
			}
			return fmt.Errorf("%s exited while starting: %s", n.ID, why)
		}
		if !g.still(key, api.NodePending) {
			return fmt.Errorf("%s: no longer pending", n.ID)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %s: %v", n.ID, g.cfg.ReadyTimeout, last)
		case <-time.After(pollInterval):
		}
	}
}

func (g *Group) instance(id string) (Instance, bool) {
	for _, in := range g.launcher.List() {
		if in.ID == id {
			return in, true
		}
	}
	return Instance{}, false
}

func (g *Group) still(key, state string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := g.findLocked(key)
	return n != nil && n.state == state
}

// serving reports whether any node is in service.
func (g *Group) serving() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, n := range g.nodes {
		if n.state == api.NodeInService {
			return true
		}
	}
	return false
}

// warm primes a new node's opcache with the site's most requested paths
// before it takes traffic: the first PHP request on a cold opcache costs
// 0.4–0.7 s, a warm one ~0.1 s.
func (g *Group) warm(ctx context.Context, n Node) {
	paths := []string{"/", "/wp-login.php"}
	if g.hooks.TopPaths != nil {
		for _, p := range g.hooks.TopPaths(ctx) {
			if !slices.Contains(paths, p) {
				paths = append(paths, p)
			}
		}
	}
	t0 := time.Now()
	g.prober.Warm(ctx, n, g.cfg.SiteHost, paths)
	g.logger.Info("node warmed", "node", n.ID, "urls", len(paths), "took", time.Since(t0).Round(time.Millisecond))
}

// waitFiles waits until the node's docroot holds every change the files
// store had when the wait began: a node goes in service with every file.
func (g *Group) waitFiles(ctx context.Context, n Node, key string) error {
	if g.hooks.FilesHead == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, g.cfg.FilesTimeout)
	defer cancel()
	var head uint64
	haveHead := false
	var last error
	for {
		if !haveHead {
			if h, err := g.hooks.FilesHead(ctx); err == nil {
				head, haveHead = h, true
			} else {
				last = fmt.Errorf("files: %w", err)
			}
		}
		if haveHead {
			rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
			r, err := g.prober.Report(rctx, n)
			rcancel()
			switch {
			case err != nil:
				last = err
			case !r.FilesReady:
				last = fmt.Errorf("docroot not bootstrapped yet")
			case r.FilesSeq >= head:
				return nil
			default:
				last = fmt.Errorf("docroot at files seq %d of %d", r.FilesSeq, head)
			}
		}
		if !g.still(key, api.NodeWarming) {
			return fmt.Errorf("%s: no longer warming", n.ID)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: files not in sync after %s: %v", n.ID, g.cfg.FilesTimeout, last)
		case <-time.After(pollInterval):
		}
	}
}

// drain waits until every edge applied generation gen (the set without the
// node) and the node's requests finished, bounded by DeregistrationDelay,
// then stops it. When ctx ends it stops waiting: the controller stops
// everything.
func (g *Group) drain(ctx context.Context, n *node, gen uint64) {
	g.mu.Lock()
	nd := n.Node
	g.mu.Unlock()
	t0 := time.Now()
	if !g.deregister(ctx, nd, gen) {
		return
	}
	sctx, cancel := context.WithTimeout(context.Background(), g.cfg.StopTimeout)
	err := g.launcher.Stop(sctx, nd.ID) // the agent drains what is left, then stops PHP
	cancel()
	if err != nil {
		g.logger.Warn("stop of a drained node", "node", nd.ID, "err", err)
	}
	g.mu.Lock()
	g.setStateLocked(n, api.NodeTerminated, "")
	g.unlock()
	g.event("node", nd.ID, nil, "%s: drained and stopped in %s", nd.ID, time.Since(t0).Round(time.Millisecond))
}

// deregister waits until every edge applied generation gen (a set without
// the node) and the node's requests finished, bounded by
// DeregistrationDelay. It reports false when ctx ended first.
func (g *Group) deregister(ctx context.Context, nd Node, gen uint64) bool {
	if g.hooks.Applied != nil {
		actx, cancel := context.WithTimeout(ctx, g.cfg.AckTimeout)
		g.hooks.Applied(actx, gen)
		cancel()
	}
	deadline := time.After(g.cfg.DeregistrationDelay)
wait:
	for ctx.Err() == nil {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		r, err := g.prober.Report(rctx, nd)
		cancel()
		if err != nil || r.InFlight == 0 {
			break
		}
		select {
		case <-deadline:
			break wait
		case <-ctx.Done():
		case <-time.After(pollInterval):
		}
	}
	return ctx.Err() == nil
}

// stopFailed stops a failed node ordered replaced or dropped. Over a
// Slotted launcher a replaced node's slot is refilled at once, by a node
// at the same index (the policy launched none for it).
func (g *Group) stopFailed(ctx context.Context, n *node, replace bool) {
	g.mu.Lock()
	id, index := n.ID, n.index
	g.mu.Unlock()
	sctx, cancel := context.WithTimeout(context.Background(), g.cfg.FailedStopTimeout)
	var err error
	if replace {
		err = g.stopProcs(sctx, id)
	} else {
		err = g.launcher.Stop(sctx, id)
	}
	cancel()
	if err != nil {
		g.logger.Warn("stop of a failed node", "node", id, "err", err)
	}
	g.mu.Lock()
	g.setStateLocked(n, api.NodeTerminated, "")
	if replace && g.slotted != nil && ctx.Err() == nil {
		g.launchLocked(ctx, index, "replacing the failed node in its slot")
	}
	g.unlock()
}
