package controller

// The database: internal/galera decides and drives the members; database
// owns the cluster's run and the probe through the router, under its own
// lock, and answers the router's and the status document's questions.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/config"
	"github.com/scalepress/scalepress/internal/galera"
	"github.com/scalepress/scalepress/internal/local"
	"github.com/scalepress/scalepress/internal/nomadlaunch"
	"github.com/scalepress/scalepress/internal/supervise"
	"github.com/scalepress/scalepress/internal/token"
)

const (
	monitorUser = "scalepress_monitor"
	clusterName = "scalepress"
)

type database struct {
	cfg config.Config

	mu          sync.Mutex
	cluster     *galera.Cluster // nil before Start
	logger      *slog.Logger
	cancel      context.CancelFunc     // stops the galera loop
	stopped     chan struct{}          // closed when the galera loop returned
	routerProbe *sql.DB                // monitor user through the router: which member answers
	choice      string                 // member id that answered the last probe through the router
	remote      bool                   // the members run on other hosts (db.hosts), through their agents
	agentJob    *nomadlaunch.DBJobs    // the db-agents' Nomad job (db.agents nomad), nil otherwise
	routerJob   *nomadlaunch.DBRouters // the routers on the node hosts (db.router_per_host), nil otherwise

	// observed: Start returned, so the members' states are what was seen
	// of them. Before, a member reads as down or joining whether it serves
	// or not (a controller taking a site over has not asked yet), and the
	// routers must not be told so (RouterMembers).
	observed bool
}

// dbStarter runs members as supervised children, restarts disabled: every
// start is the cluster's decision with its own arguments (the bootstrap flag
// must never be in a restart).
type dbStarter struct{ c *Controller }

func (s dbStarter) StartMember(m galera.MemberConfig, path string, args []string) (galera.Proc, error) {
	return s.c.sup.Start(supervise.Spec{
		Name: m.ID, Path: path, Args: args, LogFile: s.c.layout.Log(m.ID),
		Credential: s.c.credential(s.c.mysqlUser), PIDDir: s.c.layout.PIDs(),
		Restart: supervise.RestartPolicy{Never: true}, StopTimeout: 60 * time.Second,
	})
}

func (s dbStarter) LogFile(id string) string { return s.c.layout.Log(id) }

var _ galera.Starter = dbStarter{}

func (c *Controller) memberConfigs() []galera.MemberConfig {
	n := c.cfg.DB.Members
	var peers, ids []string
	if n > 1 {
		for i := 1; i <= n; i++ {
			peers = append(peers, c.cfg.DBMemberAddr(i))
			ids = append(ids, config.DBMemberID(i))
		}
	}
	var out []galera.MemberConfig
	for i := 1; i <= n; i++ {
		dir := c.layout.DBMember(config.DBMemberID(i))
		if len(c.cfg.DB.Hosts) > 0 {
			dir = c.cfg.DB.Hosts[i-1].Dir // on the member's host, the agent's business
		}
		mc := galera.MemberConfig{
			ID: config.DBMemberID(i), Addr: c.cfg.DBMemberAddr(i),
			Dir: dir, BufferPool: c.cfg.DB.BufferPool,
			UID: -1, GID: -1,
			Peers: peers, PeerIDs: ids, ClusterName: clusterName,
			SSTMethod: c.cfg.DB.SSTMethod, GcacheSize: c.cfg.DB.GcacheSize,
		}
		if c.asRoot {
			mc.UID, mc.GID = c.mysqlUser.UID, c.mysqlUser.GID
		}
		out = append(out, mc)
	}
	return out
}

// startDB brings every member up (a Galera cluster: bootstrap or recover,
// then join one at a time) and returns when all are synced; the database's
// Run keeps them up afterwards.
func (c *Controller) startDB(ctx context.Context) error {
	gc := galera.DefaultConfig()
	gc.Members = c.memberConfigs()
	gc.Site = galera.Grant{
		Database: c.cfg.DB.Name, User: c.cfg.DB.User, Password: c.secrets.DBPassword,
		MonitorUser: monitorUser, MonitorPassword: c.secrets.MonitorPassword,
	}
	logger := c.logger.With("component", "galera")
	if len(c.cfg.DB.Hosts) == 0 {
		return c.db.Start(ctx, gc, galera.NewLocal(dbStarter{c}, c.bin.MariaDB), logger)
	}
	// Members on other hosts: every operation through their db-agents.
	specs, err := c.writeAgentSpecs(gc.Members)
	if err != nil {
		return err
	}
	if c.cfg.DB.Agents == config.DBAgentsNomad {
		if err := c.startAgentJob(ctx, specs); err != nil {
			return err
		}
	}
	rc := galera.DefaultRemoteConfig()
	rc.Agents = map[string]galera.Agent{}
	for i, h := range c.cfg.DB.Hosts {
		key := token.AgentKey(c.secrets.RootKey, token.DB, h.ID)
		rc.Agents[config.DBMemberID(i+1)] = galera.Agent{URL: "http://" + h.Agent, Token: key.Issue(api.DBAgentCaller)}
	}
	rc.Epoch = c.ownerEpoch()
	remote, err := galera.NewRemote(rc, logger)
	if err != nil {
		return err
	}
	c.db.mu.Lock()
	c.db.remote = true
	c.db.mu.Unlock()
	if err := waitAgents(ctx, remote, gc.Members, logger); err != nil {
		remote.Close()
		return err
	}
	var host galera.Host = remote
	if c.cfg.Scheduler.Kind == config.SchedulerNomad {
		// A controller taken over changes no member (ADR 27).
		host = fencedHost{Host: remote, fence: c.fenceNomad, lost: c.standDown}
	}
	return c.db.Start(ctx, gc, host, logger)
}

// agentWait bounds how long up waits for the db-agents to answer.
const agentWait = 10 * time.Minute

// waitAgents returns once every member's agent answers (they are started by
// someone else, from the specs just written), or after agentWait.
func waitAgents(ctx context.Context, r *galera.Remote, members []galera.MemberConfig, logger *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, agentWait)
	defer cancel()
	for _, m := range members {
		logged := false
		for {
			ictx, icancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := r.Inspect(ictx, m)
			icancel()
			if err == nil {
				break
			}
			if !errors.Is(err, galera.ErrUnreachable) {
				return err // it answers, and refuses: a wrong key or member
			}
			if !logged {
				logger.Info("waiting for the member's db-agent", "member", m.ID, "err", err)
				logged = true
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("db-agent of %s: not answering after %s (start it with the spec in run/specs): %w", m.ID, agentWait, err)
			case <-time.After(time.Second):
			}
		}
	}
	return nil
}

// writeAgentSpecs writes DIR/run/specs/db-agent-ID.json for each DB host:
// what `scalepress db-agent --spec FILE` runs there (mode 0600: it holds
// that agent's key). Whoever starts the agents (the operator, a Nomad job)
// places it on its host. It returns the specs by host id.
func (c *Controller) writeAgentSpecs(members []galera.MemberConfig) (map[string]api.DBAgentSpec, error) {
	specs := map[string]api.DBAgentSpec{}
	for i, h := range c.cfg.DB.Hosts {
		m := members[i]
		spec := api.DBAgentSpec{
			ID: h.ID, Addr: h.Agent, Key: token.AgentKey(c.secrets.RootKey, token.DB, h.ID).Hex(),
			Members: []api.DBAgentMemberSpec{{
				ID: m.ID, Addr: m.Addr, Dir: m.Dir, BufferPool: m.BufferPool, Peers: m.Peers, PeerIDs: m.PeerIDs,
				ClusterName: m.ClusterName, SSTMethod: m.SSTMethod, GcacheSize: m.GcacheSize,
			}},
		}
		if err := api.WriteSpec(c.layout.Spec("db-agent-"+h.ID), spec); err != nil {
			return nil, fmt.Errorf("db-agent spec for %s: %w", h.ID, err)
		}
		specs[h.ID] = spec
	}
	return specs, nil
}

// Start makes the cluster and brings it up, then keeps the members up (the
// galera loop) in a goroutine it owns until ctx ends or Stop.
func (d *database) Start(ctx context.Context, gc galera.Config, h galera.Host, logger *slog.Logger) error {
	cl, err := galera.New(gc, h, logger)
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.cluster, d.logger, d.observed = cl, logger, false // a new cluster is not observed yet
	d.mu.Unlock()
	if err := cl.Start(ctx); err != nil {
		return err
	}
	lctx, cancel := context.WithCancel(ctx)
	stopped := make(chan struct{})
	d.mu.Lock()
	d.cancel, d.stopped, d.observed = cancel, stopped, true
	d.mu.Unlock()
	go func() {
		defer close(stopped)
		cl.Run(lctx)
	}()
	return nil
}

// Stop waits (at most timeout) for Run to return, closes the probe and the
// cluster, and names the members in the order they are to stop: the last
// to join first, so that the last one out is marked safe_to_bootstrap.
func (d *database) Stop(timeout time.Duration) []string {
	d.mu.Lock()
	cl, cancel, stopped, probe := d.cluster, d.cancel, d.stopped, d.routerProbe
	d.routerProbe = nil
	d.mu.Unlock()
	if cancel != nil {
		cancel()
		select {
		case <-stopped:
		case <-time.After(timeout):
			d.logger.Warn("database loop did not stop in time")
		}
	}
	if probe != nil {
		probe.Close()
	}
	d.mu.Lock()
	remote := d.remote
	d.mu.Unlock()
	if remote {
		return nil // no local process: StopMembers stops them through their agents
	}
	if cl == nil {
		var names []string
		for i := d.cfg.DB.Members; i >= 1; i-- {
			names = append(names, config.DBMemberID(i))
		}
		return names
	}
	names := cl.StopOrder()
	cl.Close()
	return names
}

func (c *Controller) startRouter(ctx context.Context) error {
	spec := api.RouterSpec{Addr: c.cfg.DB.Router, MembersURL: c.apiURL(api.APIPathDBMembers),
		Mode: c.cfg.DB.RouterMode, MetricsAddr: c.cfg.DB.RouterMetrics}
	rm, _ := c.db.RouterMembers() // after startDB: observed
	spec.Members = rm.Members
	if len(spec.Members) == 0 {
		for n := 1; n <= c.cfg.DB.Members; n++ {
			spec.Members = append(spec.Members, c.cfg.DBMemberAddr(n))
		}
	}
	err := c.start(ctx, &c.router, c.unprivileged(local.Role{
		Name: "dbrouter", Role: "dbrouter", Spec: spec, StopTimeout: 10 * time.Second,
		Ready: local.TCPCheck(c.cfg.DB.Router), ReadyTimeout: 15 * time.Second,
	}, spec.Addr, spec.MetricsAddr))
	if err != nil {
		return err
	}
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = monitorUser, c.secrets.MonitorPassword, "tcp", c.cfg.DB.Router
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = time.Second, 2*time.Second, 2*time.Second
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return fmt.Errorf("dbrouter probe: %w", err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxIdleConns(0) // a new connection every time: the router's choice for new connections
	c.db.mu.Lock()
	c.db.routerProbe = db
	c.db.mu.Unlock()
	c.db.CheckRouter(ctx)
	if c.cfg.DB.RouterPerHost {
		return c.startHostRouters(ctx, spec)
	}
	return nil
}

// CheckRouter records which member answers a new connection through the
// router. The members themselves are watched by the galera loop.
func (d *database) CheckRouter(ctx context.Context) {
	d.mu.Lock()
	probe := d.routerProbe
	d.mu.Unlock()
	if probe == nil {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var name string
	// A Galera member names itself (wsrep_node_name = its id); a standalone
	// one is told by its bind address.
	err := probe.QueryRowContext(pctx, "SELECT IF(@@wsrep_on, @@wsrep_node_name, @@bind_address)").Scan(&name)
	if err != nil {
		name = ""
	} else if !strings.HasPrefix(name, "db-") {
		name = d.memberByHost(name)
	}
	d.mu.Lock()
	d.choice = name
	d.mu.Unlock()
}

// hostOf is the db.hosts id of member id's host, "" for a member on the
// controller's machine.
func (d *database) hostOf(id string) string {
	for i, h := range d.cfg.DB.Hosts {
		if config.DBMemberID(i+1) == id {
			return h.ID
		}
	}
	return ""
}

func (d *database) memberByHost(host string) string {
	for n := 1; n <= d.cfg.DB.Members; n++ {
		if h, _, _ := net.SplitHostPort(d.cfg.DBMemberAddr(n)); h == host {
			return config.DBMemberID(n)
		}
	}
	return host
}

// StopMembers stops remote members through their agents, one at a time,
// the last to join first (see Stop), and closes the cluster. Local members
// are the supervisor's to stop.
func (d *database) StopMembers(ctx context.Context) {
	d.mu.Lock()
	cl, remote := d.cluster, d.remote
	d.mu.Unlock()
	if cl == nil || !remote {
		return
	}
	for _, id := range cl.StopOrder() {
		if err := cl.StopMember(ctx, id); err != nil {
			d.logger.Warn("stop member", "member", id, "err", err)
		}
	}
	cl.Close()
}

// RouterMembers is what the router may use: the synced members, by id; when
// none is synced, the donors (routerMembers says why). ok is false until
// the database's Start returned: until then no member has been observed,
// and an empty list would be a guess, not a finding. A router applies the
// list it is given, an empty one too (no new connection, every relayed one
// closed), so a controller that takes a site over, or starts again beside
// routers that outlived its predecessor, must not answer before it knows
// (issue 12: the routers on the node hosts polled the new controller
// during its first 0.1 s and refused every connection for a poll interval).
func (d *database) RouterMembers() (m api.DBMembers, ok bool) {
	d.mu.Lock()
	ok = d.observed
	d.mu.Unlock()
	m = api.DBMembers{Members: []string{}, IDs: []string{}, Mode: d.cfg.DB.RouterMode}
	m.Members, m.IDs = routerMembers(d.views(), true)
	return m, ok
}

// SyncedIDs are the members in state Synced, by id.
func (d *database) SyncedIDs() []string {
	_, ids := routerMembers(d.views(), false)
	return ids
}

func (d *database) views() []galera.MemberView {
	d.mu.Lock()
	cl := d.cluster
	d.mu.Unlock()
	if cl == nil {
		return nil
	}
	return cl.Members()
}

// routerMembers picks the members a router may send statements to: the
// synced ones. When none is synced but some are donors (withDonors), those:
// a cluster whose only synced member is giving a joiner a full copy
// (at start-up, or after the others failed) keeps serving from the donor
// instead of refusing every connection. Reads go on; with rsync SST the
// donor's writes wait for the copy (a pause of seconds, not errors). This is
// what clustercheck's "available when donor" does, applied only when there is
// nothing better.
func routerMembers(views []galera.MemberView, withDonors bool) (addrs, ids []string) {
	addrs, ids = []string{}, []string{}
	for _, want := range []string{galera.StateSynced, galera.StateDonor} {
		for _, v := range views {
			if v.State == want {
				addrs = append(addrs, v.Addr)
				ids = append(ids, v.ID)
			}
		}
		if len(ids) > 0 || !withDonors {
			break
		}
	}
	return addrs, ids
}

// Status is the db part of the status document.
func (d *database) Status(routerPID int) *api.DBStatus {
	cfg := d.cfg.DB
	db := &api.DBStatus{Router: cfg.Router, Name: cfg.Name, Members: []api.DBMemberStatus{}, RouterMode: cfg.RouterMode, RouterPID: routerPID}
	d.mu.Lock()
	cl, choice := d.cluster, d.choice
	d.mu.Unlock()
	if cl == nil {
		for n := 1; n <= cfg.Members; n++ {
			db.Members = append(db.Members, api.DBMemberStatus{ID: config.DBMemberID(n), Addr: d.cfg.DBMemberAddr(n), Host: d.hostOf(config.DBMemberID(n)), State: api.DBDown})
		}
		return db
	}
	db.RouterChoice = choice
	for _, v := range cl.Members() {
		ms := api.DBMemberStatus{ID: v.ID, Addr: v.Addr, Host: d.hostOf(v.ID), State: v.State, PID: v.PID, Starts: v.Starts, Error: v.Error}
		if s := v.Status; s != nil && cfg.Members > 1 {
			ms.WsrepState, ms.ClusterStatus, ms.ClusterSize = s.LocalStateComment, s.ClusterStatus, s.ClusterSize
			ms.StateUUID, ms.LastCommitted, ms.FlowControlPaused, ms.RecvQueue = s.StateUUID, s.LastCommitted, s.FlowControlPaused, s.RecvQueue
			if s.Primary() {
				db.ClusterSize = max(db.ClusterSize, s.ClusterSize)
			}
		}
		if cfg.Members == 1 && v.State == galera.StateSynced {
			db.ClusterSize = 1
		}
		db.Members = append(db.Members, ms)
	}
	if cfg.RouterMode == "single" {
		db.Writer = db.RouterChoice
	}
	return db
}
