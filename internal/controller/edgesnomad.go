package controller

// The edges on Nomad (scheduler.roles: edge; docs/adr/0025-roles-on-nomad.md):
// a job per edge, JOB-edge-ID, on the client whose address is the edge's
// (dns publishes edges[].addr's IP, so the edge runs there) with its region
// in its node meta (scalepress_region), on edges[].addr's port. Nomad
// restarts it; the controller only submits the job and follows it. With no
// controller, an edge keeps serving with the last node set it polled.

import (
	"context"
	"net/netip"
	"time"

	"github.com/scalepress/scalepress/internal/config"
	"github.com/scalepress/scalepress/internal/nomadlaunch"
)

// edgeJob is edge id's job and Nomad service name.
func (c *Controller) edgeJob(id string) string { return c.cfg.Scheduler.Job + "-edge-" + id }

// edgeRoleJob is edge i's Nomad job: its spec is the job's variable, never
// in the job.
func (c *Controller) edgeRoleJob(i int) (nomadlaunch.RoleJob, error) {
	e := c.cfg.Edges[i]
	ap, err := netip.ParseAddrPort(e.Addr)
	if err != nil {
		return nomadlaunch.RoleJob{}, err
	}
	// The node set it applies is kept in the allocation (restarted while no
	// controller answers, it serves the nodes it knew).
	args := append(roleArgs("edge"), "--keep", "${NOMAD_ALLOC_DIR}/data/upstreams.json")
	if ap.Port() >= 1024 {
		// Started as root (raw_exec), it reads its spec and runs as the
		// role user; below 1024 it stays root to bind (ADR 0025).
		args = append(args, "--user", RoleUser)
	}
	rj := c.roleJob("edge", c.edgeJob(e.ID), args...)
	// Its region and its address place it; scheduler.role_meta is the
	// placement of the roles that move (files, redis, dns), not of an
	// edge pinned to its host.
	rj.NodeMeta = map[string]string{config.EdgeRegionMeta: e.Region}
	rj.HostIP, rj.Port = ap.Addr().Unmap().String(), int(ap.Port())
	if a := c.cfg.EdgeHTTPSAddr(i); a != "" {
		hp, err := netip.ParseAddrPort(a)
		if err != nil {
			return nomadlaunch.RoleJob{}, err
		}
		rj.HTTPSPort = int(hp.Port())
		rj.Files = c.edgeSecretFiles()
	}
	rj.KillTimeout = edgeStopTimeout
	return rj, nil
}

// edgeStopTimeout: an edge finishes its requests in flight (30 s at most).
const edgeStopTimeout = 45 * time.Second

// startEdgesNomad submits every edge's job and waits until each answers its
// health check where Nomad placed it.
func (c *Controller) startEdgesNomad(ctx context.Context) error {
	n, err := c.nomadRoleClient()
	if err != nil {
		return err
	}
	// The certificate files, read once for every edge (edgecerts.go).
	var items map[string]string
	if len(c.cfg.TLS.Certificates) > 0 {
		if items, err = c.readEdgeCerts(); err != nil {
			return err
		}
	}
	for i, e := range c.cfg.Edges {
		spec, err := c.edgeSpec(i)
		if err != nil {
			return err
		}
		rj, err := c.edgeRoleJob(i)
		if err != nil {
			return err
		}
		if err := n.submitEdge(ctx, rj, spec, items); err != nil {
			return err
		}
		err = c.waitRole(ctx, rj, func(ctx context.Context, a nomadlaunch.ServiceAddr, host string) error {
			if err := c.edgeHealth(e)(ctx); err != nil {
				return err
			}
			n.setEdgeHost(e.ID, host)
			c.edges[i].healthy.Store(true)
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func (n *nomadRoles) setEdgeHost(id, host string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.edgeHosts == nil {
		n.edgeHosts = map[string]string{}
	}
	n.edgeHosts[id] = host
}

// edgeHost is the Nomad client running edge id ("" when the controller
// runs it, or until it is found).
func (c *Controller) edgeHost(id string) (string, bool) {
	if c.roles == nil || !c.onNomad(config.RoleEdge) {
		return "", false
	}
	c.roles.mu.Lock()
	defer c.roles.mu.Unlock()
	h, ok := c.roles.edgeHosts[id]
	return h, ok
}

// edgeUp: edge i passed its last check (and, run by the controller, its
// process runs).
func (c *Controller) edgeUp(i int) bool {
	if c.onNomad(config.RoleEdge) {
		return c.edges[i].healthy.Load()
	}
	return c.edges[i].up()
}
