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
	"net/netip"
	"sync"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/config"
	"github.com/scalepress/scalepress/internal/local"
	"github.com/scalepress/scalepress/internal/nomadlaunch"
	"github.com/scalepress/scalepress/internal/redisd"
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
	// redis and dns are where they run now (on Nomad), with their hosts.
	redis, redisHost string
	dns, dnsHost     string
	// edgeHosts are the clients running the edges, by edge id (an edge
	// is pinned to its address's host: it never moves).
	edgeHosts map[string]string
	// edgeTLS is what the edges' variables were last given: each edge's
	// spec (as submitted, by job) and the certificate items every edge
	// shares (edgecerts.go).
	edgeTLS edgeTLSState
}

func (c *Controller) onNomad(role string) bool { return c.cfg.Scheduler.OnNomad(role) }

// filesJob is the files role's job id and Nomad service name.
func (c *Controller) filesJob() string { return c.cfg.Scheduler.Job + "-files" }

// redisJob is redis's.
func (c *Controller) redisJob() string { return c.cfg.Scheduler.Job + "-redis" }

// redisAddr is where redis answers now: its allocation's address when Nomad
// runs it (once found), else redis.addr.
func (c *Controller) redisAddr() string {
	if c.roles != nil {
		c.roles.mu.Lock()
		defer c.roles.mu.Unlock()
		if c.roles.redis != "" {
			return c.roles.redis
		}
	}
	return c.cfg.Redis.Addr
}

// redisHost is the Nomad client running redis ("" when the controller does).
func (c *Controller) redisHost() string {
	if c.roles == nil {
		return ""
	}
	c.roles.mu.Lock()
	defer c.roles.mu.Unlock()
	return c.roles.redisHost
}

// dnsJob is the dns role's.
func (c *Controller) dnsJob() string { return c.cfg.Scheduler.Job + "-dns" }

// dnsOnNomad is where Nomad runs the dns role and its host ("" until found).
func (c *Controller) dnsOnNomad() (addr, host string) {
	if c.roles == nil {
		return "", ""
	}
	c.roles.mu.Lock()
	defer c.roles.mu.Unlock()
	return c.roles.dns, c.roles.dnsHost
}

func (n *nomadRoles) setDNS(addr, host string) {
	n.mu.Lock()
	n.dns, n.dnsHost = addr, host
	n.mu.Unlock()
}

// startDNSNomad runs the dns role as a Nomad job on dns.addr's port (a
// static port: resolvers ask the zone's name servers on it) of the host
// Nomad places it on; list every host scheduler.role_meta allows as a name
// server. It checks its own edges' health, as on one machine.
// spec is the role's geodns configuration (its address is replaced by the
// allocation's, --addr), addr and zone dns.addr and dns.zone.
func (c *Controller) startDNSNomad(ctx context.Context, spec any, addr, zone string) error {
	n, err := c.nomadRoleClient()
	if err != nil {
		return err
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return fmt.Errorf("dns.addr: %w", err)
	}
	rj := c.roleJob("dns", c.dnsJob(), roleArgs("dns")...)
	rj.Port = int(ap.Port())
	if err := n.submit(ctx, rj, spec); err != nil {
		return err
	}
	return c.waitRole(ctx, rj, func(ctx context.Context, a nomadlaunch.ServiceAddr, host string) error {
		if err := dnsCheck(a.Addr, zone)(ctx); err != nil {
			return err
		}
		n.setDNS(a.Addr, host)
		c.dns.healthy.Store(true)
		return nil
	})
}

func (n *nomadRoles) setRedis(addr, host string) {
	n.mu.Lock()
	n.redis, n.redisHost = addr, host
	n.mu.Unlock()
}

// newNomadRoles makes the role jobs' client when Nomad runs any role; set
// before anything reads c.roles (the API, the health checks).
func (c *Controller) newNomadRoles() error {
	if c.cfg.Scheduler.Kind != config.SchedulerNomad || len(c.cfg.Scheduler.Roles) == 0 {
		return nil
	}
	r, err := nomadlaunch.NewRoles(c.nomadConfig(), c.logger.With("component", "nomad-roles"))
	if err != nil {
		return fmt.Errorf("scheduler: %w", err)
	}
	c.roles = &nomadRoles{r: r}
	c.files.nomad = c.onNomad(config.RoleFiles)
	return nil
}

// nomadRoleClient is the role jobs' client.
func (c *Controller) nomadRoleClient() (*nomadRoles, error) {
	if c.roles == nil {
		return nil, fmt.Errorf("scheduler: no role runs on Nomad")
	}
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

// submit writes spec into job's variable (as JSON, or as it is when it is
// []byte) and registers the job.
func (n *nomadRoles) submit(ctx context.Context, rj nomadlaunch.RoleJob, spec any) error {
	_, err := n.submitFiles(ctx, rj, spec, nil)
	return err
}

// submitFiles submits rj with the items of rj.Files in its variable beside
// the spec, and returns the spec as written.
func (n *nomadRoles) submitFiles(ctx context.Context, rj nomadlaunch.RoleJob, spec any, files map[string]string) ([]byte, error) {
	b, ok := spec.([]byte)
	if !ok {
		var err error
		if b, err = json.Marshal(spec); err != nil {
			return nil, fmt.Errorf("%s spec: %w", rj.Role, err)
		}
	}
	if err := n.r.Submit(ctx, rj, b, files); err != nil {
		return nil, err
	}
	n.mu.Lock()
	n.jobs = append(n.jobs, rj.Job)
	n.mu.Unlock()
	return b, nil
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
	// Started as root (raw_exec as the client's user), it reads its spec
	// and then runs as the role user (--user).
	rj := c.roleJob("files", c.filesJob(), append(roleArgs("files"), "--dir", "${NOMAD_ALLOC_DIR}/files", "--user", RoleUser)...)
	if err := n.submit(ctx, rj, spec); err != nil {
		return err
	}
	tok := c.filesToken(api.FilesControllerID)
	return c.waitRole(ctx, rj, func(ctx context.Context, a nomadlaunch.ServiceAddr, host string) error {
		c.files.setAddr(a.Addr, tok)
		if err := local.HTTPCheck(c.http, c.filesURL()+api.FilesPathHealth, "", 200)(ctx); err != nil {
			return err
		}
		c.files.host.Store(&host)
		c.files.healthy.Store(true)
		return nil
	})
}

// waitRole waits until the newest registration of rj's service answers
// ready (its check), at most rolePlaceTimeout.
func (c *Controller) waitRole(ctx context.Context, rj nomadlaunch.RoleJob, ready func(context.Context, nomadlaunch.ServiceAddr, string) error) error {
	wctx, cancel := context.WithTimeout(ctx, rolePlaceTimeout)
	defer cancel()
	var last error
	for {
		if addrs, _, err := c.roles.r.Addrs(wctx, rj.Job, 0, 0); err != nil {
			last = err
		} else if len(addrs) == 0 {
			last = fmt.Errorf("no registration of service %s yet", rj.Job)
		} else {
			a := addrs[0]
			host := c.roles.r.NodeName(wctx, a.Node)
			if last = ready(wctx, a, host); last == nil {
				c.event("nomad", "", "%s runs on %s at %s (job %s)", rj.Role, host, a.Addr, rj.Job)
				return nil
			}
		}
		select {
		case <-wctx.Done():
			return fmt.Errorf("%s on Nomad: not ready after %s: %v", rj.Role, rolePlaceTimeout, last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// startRedisNomad runs redis as a Nomad job: its redis.conf (with the
// password) is the job's variable, rendered into secrets/; bind, port and
// dir are the allocation's. Redis keeps nothing (save "", no AOF): moved,
// it starts empty and the object cache refills.
func (c *Controller) startRedisNomad(ctx context.Context) error {
	n, err := c.nomadRoleClient()
	if err != nil {
		return err
	}
	conf := redisd.Render(redisd.Config{Addr: c.cfg.Redis.Addr, Dir: ".", MaxMemory: c.cfg.Redis.MaxMemory, Password: c.redisPassword()})
	rj := c.roleJob("redis", c.redisJob(), "${NOMAD_SECRETS_DIR}/role.json",
		"--bind", "${NOMAD_IP_"+nomadlaunch.PortLabel+"}", "--port", "${NOMAD_PORT_"+nomadlaunch.PortLabel+"}",
		"--dir", "${NOMAD_TASK_DIR}")
	rj.Command = c.bin.Redis
	if err := n.submit(ctx, rj, conf); err != nil {
		return err
	}
	return c.waitRole(ctx, rj, func(ctx context.Context, a nomadlaunch.ServiceAddr, host string) error {
		if err := redisd.Ping(ctx, a.Addr, c.redisPassword()); err != nil {
			return err
		}
		n.setRedis(a.Addr, host)
		c.redis.healthy.Store(true)
		return nil
	})
}

// followRoles keeps the controller's view of where Nomad runs its roles
// current until ctx ends: the files role's address (the controller's
// client, its health checks and status follow it) and redis's.
func (c *Controller) followRoles(ctx context.Context) {
	if c.roles == nil {
		return
	}
	var wg sync.WaitGroup
	if c.files.nomad {
		tok := c.filesToken(api.FilesControllerID)
		wg.Go(func() {
			c.followService(ctx, c.filesJob(), c.filesURL, func(a nomadlaunch.ServiceAddr, host string) {
				c.files.setAddr(a.Addr, tok)
				c.files.host.Store(&host)
			})
		})
	}
	if c.onNomad(config.RoleRedis) {
		wg.Go(func() {
			c.followService(ctx, c.redisJob(), func() string { return "http://" + c.redisAddr() }, func(a nomadlaunch.ServiceAddr, host string) {
				c.roles.setRedis(a.Addr, host)
			})
		})
	}
	if c.onNomad(config.RoleDNS) {
		wg.Go(func() {
			c.followService(ctx, c.dnsJob(), func() string { a, _ := c.dnsOnNomad(); return "http://" + a }, func(a nomadlaunch.ServiceAddr, host string) {
				c.roles.setDNS(a.Addr, host)
			})
		})
	}
	wg.Wait()
}

// followService calls moved with the newest registration of job's service
// whenever it is not cur() (a base URL) any more, until ctx ends.
func (c *Controller) followService(ctx context.Context, job string, cur func() string, moved func(nomadlaunch.ServiceAddr, string)) {
	var index uint64
	for ctx.Err() == nil {
		addrs, next, err := c.roles.r.Addrs(ctx, job, index, roleWait)
		if err != nil {
			if ctx.Err() == nil {
				c.logger.Warn("nomad: follow a role", "job", job, "err", err)
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
		if cur() == "http://"+a.Addr {
			continue
		}
		host := c.roles.r.NodeName(ctx, a.Node)
		moved(a, host)
		c.event("nomad", "", "%s moved: now on %s at %s", job, host, a.Addr)
	}
}

// stopNomadRoles stops the role jobs (at down; the node job is stopped
// before).
func (c *Controller) stopNomadRoles(ctx context.Context) {
	if c.roles != nil {
		c.roles.stop(ctx, c.logger)
	}
}
