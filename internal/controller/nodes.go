package controller

// The node group's wiring: internal/nodegroup decides and drives, the local
// launcher (internal/local) runs each node as a child process, and this file
// prepares a node's docroot and spec and connects the group's hooks to the
// edges, the files role and the event log.

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/config"
	"github.com/scalepress/scalepress/internal/nodegroup"
)

// newGroup makes the node group, with the scaling limits `scalepress scale`
// saved in the state file when they are still valid.
func (c *Controller) newGroup(saved *api.ScaleRequest) error {
	a := c.cfg.Autoscale
	if saved != nil {
		if next, err := applyScale(a, *saved, a.Max); err == nil {
			a = next
		} else {
			c.logger.Warn("saved scaling policy ignored", "err", err)
		}
	}
	site, _ := url.Parse(c.cfg.SiteURL())
	gc := nodegroup.DefaultConfig()
	gc.Scaling = scaling(c.cfg.Autoscale.Enabled, c.cfg.Nodes.Count, a)
	gc.MaxReplacements, gc.ReplacementWindow = a.MaxReplacements, a.ReplacementWindow
	gc.RebalanceAfter = c.cfg.Autoscale.RebalanceAfter
	gc.Children = c.phpChildren()
	gc.DeregistrationDelay = c.cfg.Nodes.DeregistrationDelay
	gc.SiteHost = site.Host
	gc.Host = c.hostCapacity()
	var edges []string
	for _, e := range c.cfg.Edges {
		edges = append(edges, e.ID)
	}
	hooks := nodegroup.Hooks{
		Node: func(i int) nodegroup.Node {
			if c.cfg.Scheduler.Kind == config.SchedulerNomad {
				return nodegroup.Node{ID: config.NodeID(i)} // the allocation's port
			}
			return nodegroup.Node{ID: config.NodeID(i), Addr: c.cfg.NodeAddr(i)}
		},
		Publish:  c.upstreams.Publish,
		Applied:  func(ctx context.Context, gen uint64) { c.upstreams.WaitApplied(ctx, edges, gen) },
		TopPaths: c.topPaths,
		Event:    func(e api.Event) { c.events.Add(e) },
	}
	if c.cfg.Files.Enabled {
		hooks.FilesHead = c.files.Head
	}
	var l nodegroup.Launcher
	if c.cfg.Scheduler.Kind == config.SchedulerNomad {
		n, err := c.newNomadNodes()
		if err != nil {
			return err
		}
		c.nomad, l = n, n.l
	} else {
		c.nodes = c.launcher.Nodes(c.nodeRoles)
		l = c.nodes
	}
	g, err := nodegroup.New(gc, l, nodegroup.NewHTTPProber(), hooks, c.logger.With("component", "nodegroup"))
	if err != nil {
		return err
	}
	c.group = g
	return nil
}

// scaling is the group's size policy from the configuration's limits.
func scaling(enabled bool, count int, a config.Autoscale) nodegroup.Scaling {
	return nodegroup.Scaling{Enabled: enabled, Count: count, Min: a.Min, Max: a.Max, Target: a.Target, ScaleInWindow: a.ScaleInWindow, MaxStep: a.MaxStep,
		WorkersPerCore: a.WorkersPerCore, CPUSaturated: a.CPUSaturated, CPUClear: a.CPUClear,
		StepGain: a.StepGain, StepWindow: a.StepWindow, StepCooldown: a.StepCooldown}
}

// startNodes brings the node group up. On Nomad a node job that runs is
// adopted: its nodes join the group without a restart (ADR 27).
func (c *Controller) startNodes(ctx context.Context) error {
	var adopted []nodegroup.Adopted
	if c.nomad != nil {
		var err error
		if adopted, err = c.nomad.start(ctx); err != nil {
			return err
		}
	}
	return c.group.Start(ctx, adopted...)
}

// topPaths are the URLs the first edge reports as most requested, to warm a
// new node with.
func (c *Controller) topPaths(ctx context.Context) []string {
	if len(c.cfg.Edges) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.cfg.Edges[0].Addr+api.EdgePathTop+"?"+api.ParamN+"=10", nil)
	if err != nil {
		return nil
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var top []string
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&top) != nil {
		return nil
	}
	return top
}

// nodesStatus is the nodes part of the status document.
func (c *Controller) nodesStatus() []api.NodeStatus {
	out := []api.NodeStatus{}
	for _, v := range c.group.Nodes() {
		out = append(out, api.NodeStatus{
			ID: v.ID, Addr: v.Addr, State: v.State, Docroot: c.layout.Docroot(v.ID), PIDs: v.PIDs,
			Utilization: v.Utilization, Restarts: v.Restarts, Error: v.Reason, FilesSeq: v.FilesSeq, Host: v.Host,
		})
	}
	return out
}

// cronNode is the first in-service node's address.
func (c *Controller) cronNode() string {
	if in := c.group.InService(); len(in) > 0 {
		return in[0].Addr
	}
	return ""
}
