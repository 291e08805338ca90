package controller

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/supervise"
)

// startNodes launches the initial group and waits until it is in service.
func (c *Controller) startNodes(ctx context.Context) error {
	children := c.phpChildren()
	c.mu.Lock()
	c.desired = c.cfg.Nodes.Count
	c.mu.Unlock()
	var waits []<-chan error
	for range c.cfg.Nodes.Count {
		_, done, err := c.launchNode(ctx, children, "initial group")
		if err != nil {
			return err
		}
		waits = append(waits, done)
	}
	for _, w := range waits {
		if err := <-w; err != nil {
			return err
		}
	}
	return nil
}

// groupLoop reconciles the node group every second: it replaces failed
// nodes (rate-limited), asks the autoscaler for the desired count, and
// launches or drains nodes to reach it.
func (c *Controller) groupLoop(ctx context.Context) {
	children := c.phpChildren()
	t := time.NewTicker(groupInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.reconcile(ctx, children, time.Now())
	}
}

func (c *Controller) reconcile(ctx context.Context, children int, now time.Time) {
	c.mu.Lock()
	// Self-healing: a node whose process is gone, or that kept failing its
	// health checks, is failed; failed nodes are stopped and replaced.
	for _, n := range c.nodes {
		if n.proc == nil {
			continue
		}
		gone := n.proc.State() == supervise.Failed || n.proc.State() == supervise.Stopped
		switch {
		case active(n) && n.state != api.NodePending && gone:
			c.setStateLocked(n, api.NodeFailed, "process exited")
		case n.state == api.NodeInService && n.fails >= nodeFailAfter:
			c.setStateLocked(n, api.NodeFailed, fmt.Sprintf("%d health checks failed in a row", n.fails))
		}
	}
	var failed []*nodeState
	for _, n := range c.nodes {
		if n.state == api.NodeFailed && n.reason != "replaced" {
			failed = append(failed, n)
		}
	}
	c.mu.Unlock()
	for _, n := range failed {
		if !c.healer.allow(now) {
			c.event("heal", n.id, "%s: replacement deferred: more than %d replacements in %s", n.id, c.cfg.Autoscale.MaxReplacements, c.cfg.Autoscale.ReplacementWindow)
			break
		}
		c.mu.Lock()
		n.reason = "replaced"
		c.mu.Unlock()
		c.event("heal", n.id, "%s failed: stopping it and launching a replacement", n.id)
		if n.proc != nil {
			c.groupWG.Go(func() {
				sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				n.proc.Stop(sctx)
				cancel()
				c.mu.Lock()
				c.setStateLocked(n, api.NodeTerminated, "")
				c.pruneTerminatedLocked()
				c.mu.Unlock()
			})
		}
	}

	// Desired count.
	c.mu.Lock()
	metrics := c.nodeMetricsLocked()
	current := 0
	for _, n := range c.nodes {
		if active(n) {
			current++
		}
	}
	c.mu.Unlock()
	d := c.scaler.decide(now, metrics, current)
	c.mu.Lock()
	if d.Desired != c.desired || d.Action != "none" && d.Action != "" {
		if d.Desired != c.desired {
			c.mu.Unlock()
			c.eventWith("scale", "", d.Inputs, "%s", d.Reason)
			c.mu.Lock()
		}
		c.desired = d.Desired
	}
	desired := c.desired
	var pendingOrWarming, inService []*nodeState
	for _, n := range c.nodes {
		switch n.state {
		case api.NodePending, api.NodeWarming:
			pendingOrWarming = append(pendingOrWarming, n)
		case api.NodeInService:
			inService = append(inService, n)
		}
	}
	c.mu.Unlock()

	switch {
	case current < desired:
		for range desired - current {
			if _, _, err := c.launchNode(ctx, children, fmt.Sprintf("group below desired %d", desired)); err != nil {
				c.event("node", "", "launch failed: %v", err)
			}
		}
	case current > desired:
		// Remove the newest in-service nodes first; nodes still starting
		// are left to finish (they cost a launch already) unless nothing
		// else can go.
		sort.Slice(inService, func(i, j int) bool { return inService[i].n > inService[j].n })
		victims := append(inService, pendingOrWarming...)
		for _, n := range victims[:current-desired] {
			c.drainNode(n, fmt.Sprintf("scale-in to %d", desired))
		}
	}
}

// nodeMetricsLocked is the autoscaler's view of the group.
func (c *Controller) nodeMetricsLocked() []nodeMetric {
	var out []nodeMetric
	for _, n := range c.nodes {
		if !active(n) {
			continue
		}
		out = append(out, nodeMetric{
			ID: n.id, InService: n.state == api.NodeInService, Warming: n.state != api.NodeInService,
			Utilization: n.util, Queue: n.queue, Children: n.children,
		})
	}
	return out
}

// nodeMetric is one node's load as the autoscaler sees it.
type nodeMetric struct {
	ID          string
	InService   bool
	Warming     bool
	Utilization float64
	Queue       int
	Children    int
}

// decision is what the scaler decided on one tick.
type decision struct {
	Desired int
	Action  string
	Reason  string
	Inputs  map[string]any
}
