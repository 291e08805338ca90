package controller

// Roles besides the nodes on Nomad (scheduler.roles; docs/adr/0025-roles-on-nomad.md):
// each is a Nomad service job of its own, its spec in the job's variable,
// found through its Nomad service registration. The controller submits the
// jobs and follows where they run; Nomad restarts and moves them, also
// while no controller runs.

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/local"
	"github.com/scalepress/scalepress/internal/nomadlaunch"
)

// Role jobs' reservations and timings.
const (
	roleCPU, roleMemoryMB = 200, 256
	// rolePlaceTimeout bounds a role job's start: placement, the
	// template's render, the role answering.
	rolePlaceTimeout = 2 * time.Minute
	// roleWait bounds a blocking query of a role's service.
	roleWait = 30 * time.Second
)

// nomadRoles are the role jobs this controller submitted.
type nomadRoles struct {
	r *nomadlaunch.Roles

	mu   sync.Mutex
	jobs []string // submitted, stopped at the end in reverse
}

func (c *Controller) onNomad(role string) bool { return c.cfg.Scheduler.OnNomad(role) }

// filesJob is the files role's job id and Nomad service name.
func (c *Controller) filesJob() string { return c.cfg.Scheduler.Job + "-files" }

// nomadRoleClient is the role jobs' client, made at first use.
func (c *Controller) nomadRoleClient() (*nomadRoles, error) {
	if c.roles != nil {
		return c.roles, nil
	}
	r, err := nomadlaunch.NewRoles(c.nomadConfig(), c.logger.With("component", "nomad-roles"))
	if err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	c.roles = &nomadRoles{r: r}
	return c.roles, nil
}

// roleJob is role's job: the installed binary (the same path on every
// client, as for the nodes) with args, one allocation, on the clients
// scheduler.role_meta names.
func (c *Controller) roleJob(role, job string, args ...string) nomadlaunch.RoleJob {
	return nomadlaunch.RoleJob{
		Job: job, Role: role, Count: 1, NodeMeta: c.cfg.Scheduler.RoleMeta,
		Command: c.bin.Self, Args: args, CPU: roleCPU, MemoryMB: roleMemoryMB, KillTimeout: 15 * time.Second,
	}
}

// roleArgs are the flags every role job's task runs with: its spec from the
// variable and the allocation's address.
func roleArgs(role string) []string {
	return []string{role,
		"--spec", "${NOMAD_SECRETS_DIR}/role.json",
		"--addr", "${NOMAD_IP_" + nomadlaunch.PortLabel + "}:${NOMAD_PORT_" + nomadlaunch.PortLabel + "}",
	}
}

// submit writes spec into job's variable and registers the job.
func (n *nomadRoles) submit(ctx context.Context, rj nomadlaunch.RoleJob, spec any) error {
	b, err := json.Marshal(spec)
	if err != nil {
		return fmt.Errorf("%s spec: %w", rj.Role, err)
	}
	if err := n.r.Submit(ctx, rj, b); err != nil {
		return err
	}
	n.mu.Lock()
	n.jobs = append(n.jobs, rj.Job)
	n.mu.Unlock()
	return nil
}

// stop stops every submitted job, the last submitted first.
func (n *nomadRoles) stop(ctx context.Context, logger interface{ Warn(string, ...any) }) {
	n.mu.Lock()
	jobs := n.jobs
	n.jobs = nil
	n.mu.Unlock()
	for i := len(jobs) - 1; i >= 0; i-- {
		if err := n.r.Stop(ctx, jobs[i]); err != nil {
			logger.Warn("nomad: stop role job", "job", jobs[i], "err", err)
		}
	}
}

// startFilesNomad runs the files role as a Nomad job and waits until it
// answers where Nomad placed it. The role is stateless over the bucket
// (config validation requires an s3 store): wherever it starts it reads
// the log from there. Its spec (the files key, the bucket's credentials)
// is the job's variable, never in the job.
func (c *Controller) startFilesNomad(ctx context.Context, spec api.FilesSpec) error {
	n, err := c.nomadRoleClient()
	if err != nil {
		return err
	}
	// The allocation's own address and directory (--addr, --dir).
	spec.Addr, spec.Dir = "", ""
	rj := c.roleJob("files", c.filesJob(), append(roleArgs("files"), "--dir", "${NOMAD_ALLOC_DIR}/files")...)
	if err := n.submit(ctx, rj, spec); err != nil {
		return err
	}
	c.files.nomad = true
	tok := c.filesToken(api.FilesControllerID)
	wctx, cancel := context.WithTimeout(ctx, rolePlaceTimeout)
	defer cancel()
	var last error
	for {
		if addrs, _, err := n.r.Addrs(wctx, rj.Job, 0, 0); err != nil {
			last = err
		} else if len(addrs) == 0 {
			last = fmt.Errorf("no registration of service %s yet", rj.Job)
		} else {
			a := addrs[0]
			c.files.setAddr(a.Addr, tok)
			if last = local.HTTPCheck(c.http, c.filesURL()+api.FilesPathHealth, "", 200)(wctx); last == nil {
				host := n.r.NodeName(wctx, a.Node)
				c.files.host.Store(&host)
				c.files.healthy.Store(true)
				c.event("nomad", "", "files role runs on %s at %s (job %s)", host, a.Addr, rj.Job)
				return nil
			}
		}
		select {
		case <-wctx.Done():
			return fmt.Errorf("files on Nomad: not answering after %s: %v", rolePlaceTimeout, last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// followRoles keeps the controller's view of where Nomad runs its roles
// current until ctx ends: the files role's address (the controller's
// client, its health checks and status follow it).
func (c *Controller) followRoles(ctx context.Context) {
	if c.roles == nil || !c.files.nomad {
		return
	}
	tok := c.filesToken(api.FilesControllerID)
	var index uint64
	for ctx.Err() == nil {
		addrs, next, err := c.roles.r.Addrs(ctx, c.filesJob(), index, roleWait)
		if err != nil {
			if ctx.Err() == nil {
				c.logger.Warn("nomad: follow the files role", "err", err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		if next < index {
			next = 0 // a new server: start over
		}
		index = next
		if len(addrs) == 0 {
			continue
		}
		a := addrs[0]
		if c.filesURL() == "http://"+a.Addr {
			continue
		}
		c.files.setAddr(a.Addr, tok)
		host := c.roles.r.NodeName(ctx, a.Node)
		c.files.host.Store(&host)
		c.event("nomad", "", "files role moved: now on %s at %s", host, a.Addr)
	}
}

// stopNomadRoles stops the role jobs (at down; the node job is stopped
// before).
func (c *Controller) stopNomadRoles(ctx context.Context) {
	if c.roles != nil {
		c.roles.stop(ctx, c.logger)
	}
}
