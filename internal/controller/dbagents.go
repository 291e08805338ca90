package controller

// The db-agents as a Nomad job (db.agents: nomad, ADR 18 "Agents on
// Nomad"): the controller submits the job with each agent's spec in a
// variable only that agent's task reads, then waits for the agents and
// drives the members through them as when the operator starts them.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/nomadlaunch"
)

// Each agent's reservation on its Nomad client (the agent and its
// mariadbd; raw_exec does not enforce it, placement counts it).
const (
	dbAgentCPU      = 500
	dbAgentMemoryMB = 1024
)

// dbAgentsJob is the agent job's id: the node job's + "-db".
func (c *Controller) dbAgentsJob() string { return c.cfg.Scheduler.Job + "-db" }

// startAgentJob submits the db-agent job with specs (by host id). The same
// job submitted again (a new controller) changes nothing that runs.
func (c *Controller) startAgentJob(ctx context.Context, specs map[string]api.DBAgentSpec) error {
	d := nomadlaunch.DBAgents{Job: c.dbAgentsJob(), CPU: dbAgentCPU, MemoryMB: dbAgentMemoryMB}
	raw := map[string][]byte{}
	for _, h := range c.cfg.DB.Hosts {
		d.Hosts = append(d.Hosts, h.ID)
		b, err := json.Marshal(specs[h.ID])
		if err != nil {
			return fmt.Errorf("db-agent spec for %s: %w", h.ID, err)
		}
		raw[h.ID] = b
	}
	j, err := nomadlaunch.NewDBJobs(c.nomadConfig(), d)
	if err != nil {
		return fmt.Errorf("db agents: %w", err)
	}
	t0 := time.Now()
	if err := j.Submit(ctx, raw); err != nil {
		return fmt.Errorf("db agents: %w", err)
	}
	c.db.mu.Lock()
	c.db.agentJob = j
	c.db.mu.Unlock()
	c.logger.Info("nomad: db-agent job submitted", "job", d.Job, "hosts", d.Hosts, "took", time.Since(t0).Round(time.Millisecond))
	return nil
}

// StopAgents stops the routers on the node hosts and the db-agent job
// (after StopMembers stopped every member through its agent), and deletes
// the agents' variables.
func (d *database) StopAgents(ctx context.Context) {
	d.mu.Lock()
	j, r := d.agentJob, d.routerJob
	d.agentJob, d.routerJob = nil, nil
	d.mu.Unlock()
	if r != nil {
		if err := r.Close(ctx); err != nil {
			d.logger.Warn("nomad: stop the router job", "err", err)
		}
	}
	if j != nil {
		if err := j.Close(ctx); err != nil {
			d.logger.Warn("nomad: stop the db-agent job", "err", err)
		}
	}
}

// hostRoutersWait bounds the wait for the routers on the node hosts.
const hostRoutersWait = 2 * time.Minute

// startHostRouters runs a router on every Nomad client that may run nodes
// (db.router_per_host), with the spec of the controller's own router (at
// the same loopback address, following the same members URL), and waits
// until each placed one runs: WordPress on those hosts needs it.
func (c *Controller) startHostRouters(ctx context.Context, spec api.RouterSpec) error {
	spec.MetricsAddr = "" // one per host at the same address: the controller's alone
	b, err := json.Marshal(spec)
	if err != nil {
		return fmt.Errorf("router spec: %w", err)
	}
	job := c.cfg.Scheduler.Job + "-dbrouter"
	r, err := nomadlaunch.NewDBRouters(c.nomadConfig(), job)
	if err != nil {
		return fmt.Errorf("db routers: %w", err)
	}
	c.db.mu.Lock()
	c.db.routerJob = r
	c.db.mu.Unlock()
	wctx, cancel := context.WithTimeout(ctx, hostRoutersWait)
	defer cancel()
	// A controller taking the site over finds the routers running: when
	// their spec differs only in the initial member list (the synced set
	// it saw at its own start), it keeps theirs. A new list would restart
	// every router (the spec is a template with change_mode restart) and
	// cut every connection for nothing: they follow the list by polling.
	if old, err := r.Spec(wctx); err != nil {
		c.logger.Warn("nomad: cannot read the running routers' spec; registering ours", "job", job, "err", err)
	} else if kept, ok := keepRouterMembers(old, spec); ok {
		if b, err = json.Marshal(kept); err != nil {
			return fmt.Errorf("router spec: %w", err)
		}
	}
	t0 := time.Now()
	n, err := r.Submit(wctx, b)
	if err != nil {
		return fmt.Errorf("db routers: %w", err)
	}
	c.logger.Info("nomad: a db router on every node host", "job", job, "hosts", n, "took", time.Since(t0).Round(time.Millisecond))
	return nil
}

// keepRouterMembers: when old (the running routers' spec, nil if none) is
// spec but for its initial member list, spec with old's list, and true.
func keepRouterMembers(old []byte, spec api.RouterSpec) (api.RouterSpec, bool) {
	if old == nil {
		return spec, false
	}
	var o api.RouterSpec
	if err := json.Unmarshal(old, &o); err != nil {
		return spec, false
	}
	o.MetricsAddr = "" // as startHostRouters clears it
	mine := spec
	mine.Members = o.Members
	a, err1 := json.Marshal(o)
	b, err2 := json.Marshal(mine)
	if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
		return spec, false
	}
	return mine, true
}
