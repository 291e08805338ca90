package controller

// Everything about the database: members, the router, their health and
// status. internal/galera decides and drives the members; this file wires it
// to the supervisor, the router and the status document.

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/config"
	"github.com/scalepress/scalepress/internal/galera"
	"github.com/scalepress/scalepress/internal/supervise"
)

const (
	monitorUser = "scalepress_monitor"
	clusterName = "scalepress"
)

// memberState is one configured member; its live state is in the cluster,
// which every member's state points to (the controller keeps only members).
type memberState struct {
	cfg galera.MemberConfig
	run *dbRun
}

// dbLocked is the database's run, nil before startDB.
func (c *Controller) dbLocked() *dbRun {
	if len(c.members) == 0 {
		return nil
	}
	return c.members[0].run
}

// dbRun is the database's own loop, started by startDB and stopped by
// dbStopOrderLocked (the controller's Run stops it there, before the members).
type dbRun struct {
	cluster *galera.Cluster
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	routerProbe *sql.DB // monitor user through the router: which member answers

	mu     sync.Mutex
	choice string // member id that answered the last probe through the router
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
		mc := galera.MemberConfig{
			ID: config.DBMemberID(i), Addr: c.cfg.DBMemberAddr(i),
			Dir: c.layout.DBMember(config.DBMemberID(i)), BufferPool: c.cfg.DB.BufferPool,
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
// then join one at a time) and returns when all are synced. It then keeps
// them up in a goroutine that lives until ctx ends or the controller stops.
func (c *Controller) startDB(ctx context.Context) error {
	gc := galera.DefaultConfig()
	gc.Members = c.memberConfigs()
	gc.Bin = c.bin.mariadb
	gc.Site = galera.Grant{
		Database: c.cfg.DB.Name, User: c.cfg.DB.User, Password: c.secrets.DBPassword,
		MonitorUser: monitorUser, MonitorPassword: c.secrets.MonitorPassword,
	}
	cl, err := galera.New(gc, dbStarter{c}, c.logger.With("component", "galera"))
	if err != nil {
		return err
	}
	run := &dbRun{cluster: cl}
	c.mu.Lock()
	c.members = nil
	for _, mc := range gc.Members {
		c.members = append(c.members, &memberState{cfg: mc, run: run})
	}
	c.mu.Unlock()
	if err := cl.Start(ctx); err != nil {
		return err
	}
	lctx, cancel := context.WithCancel(ctx)
	run.cancel = cancel
	run.wg.Go(func() { cl.Run(lctx) })
	return nil
}

func (c *Controller) startRouter(ctx context.Context) error {
	spec := api.RouterSpec{Addr: c.cfg.DB.Router, MembersURL: c.apiURL("/v1/db/members"),
		Mode: c.cfg.DB.RouterMode, MetricsAddr: c.cfg.DB.RouterMetrics}
	spec.Members = c.routerMembers().Members
	if len(spec.Members) == 0 {
		for n := 1; n <= c.cfg.DB.Members; n++ {
			spec.Members = append(spec.Members, c.cfg.DBMemberAddr(n))
		}
	}
	s, err := c.roleSpec("dbrouter", "dbrouter", spec)
	if err != nil {
		return err
	}
	bindLow(&s, spec.Addr, spec.MetricsAddr)
	s.StopTimeout = 10 * time.Second
	p, err := c.sup.Start(s)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.router = &procState{proc: p}
	c.mu.Unlock()
	if err := waitFor(ctx, "dbrouter", 15*time.Second, p, c.layout.Log("dbrouter"), tcpCheck(c.cfg.DB.Router)); err != nil {
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
	c.mu.Lock()
	if run := c.dbLocked(); run != nil {
		run.mu.Lock()
		run.routerProbe = db
		run.mu.Unlock()
	}
	c.mu.Unlock()
	c.checkRouter(ctx)
	return nil
}

// checkDB records which member answers a new connection through the router.
// The members themselves are watched by the galera loop (every 500 ms, and
// at once when a process exits).
func (c *Controller) checkDB(ctx context.Context) {
	c.checkRouter(ctx)
}

func (c *Controller) checkRouter(ctx context.Context) {
	c.mu.Lock()
	run := c.dbLocked()
	c.mu.Unlock()
	if run == nil {
		return
	}
	run.mu.Lock()
	probe := run.routerProbe
	run.mu.Unlock()
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
		name = c.memberByHost(name)
	}
	run.mu.Lock()
	run.choice = name
	run.mu.Unlock()
}

func (c *Controller) memberByHost(host string) string {
	for _, mc := range c.memberConfigs() {
		if h, _, _ := net.SplitHostPort(mc.Addr); h == host {
			return mc.ID
		}
	}
	return host
}

// routerMembers is what the router may use: the synced members, by id.
func (c *Controller) routerMembers() api.DBMembers {
	c.mu.Lock()
	run := c.dbLocked()
	c.mu.Unlock()
	m := api.DBMembers{Members: []string{}, IDs: []string{}, Mode: c.cfg.DB.RouterMode}
	if run == nil {
		return m
	}
	for _, v := range run.cluster.Members() {
		if v.State == galera.StateSynced {
			m.Members = append(m.Members, v.Addr)
			m.IDs = append(m.IDs, v.ID)
		}
	}
	return m
}

// dbStatusLocked is the db part of the status document.
func (c *Controller) dbStatusLocked() *api.DBStatus {
	db := &api.DBStatus{Router: c.cfg.DB.Router, Name: c.cfg.DB.Name, Members: []api.DBMemberStatus{}, RouterMode: c.cfg.DB.RouterMode}
	if c.router != nil {
		db.RouterPID = c.router.proc.Pid()
	}
	run := c.dbLocked()
	if run == nil {
		for _, m := range c.members {
			db.Members = append(db.Members, api.DBMemberStatus{ID: m.cfg.ID, Addr: m.cfg.Addr, State: api.DBDown})
		}
		return db
	}
	run.mu.Lock()
	db.RouterChoice = run.choice
	run.mu.Unlock()
	for _, v := range run.cluster.Members() {
		ms := api.DBMemberStatus{ID: v.ID, Addr: v.Addr, State: v.State, PID: v.PID, Starts: v.Starts, Error: v.Error}
		if s := v.Status; s != nil && c.cfg.DB.Members > 1 {
			ms.WsrepState, ms.ClusterStatus, ms.ClusterSize = s.LocalStateComment, s.ClusterStatus, s.ClusterSize
			ms.StateUUID, ms.LastCommitted, ms.FlowControlPaused, ms.RecvQueue = s.StateUUID, s.LastCommitted, s.FlowControlPaused, s.RecvQueue
			if s.Primary() {
				db.ClusterSize = max(db.ClusterSize, s.ClusterSize)
			}
		}
		if c.cfg.DB.Members == 1 && v.State == galera.StateSynced {
			db.ClusterSize = 1
		}
		db.Members = append(db.Members, ms)
	}
	if c.cfg.DB.RouterMode == "single" {
		db.Writer = db.RouterChoice
	}
	return db
}

// dbStopOrderLocked stops the database loop (so that nothing restarts a
// member being stopped), closes the probes and names the members in the
// order they stop: the last to join first, so that the last one out is
// marked safe_to_bootstrap and the next up starts from it.
func (c *Controller) dbStopOrderLocked() []string {
	run := c.dbLocked()
	if run == nil {
		var names []string
		for i := len(c.members) - 1; i >= 0; i-- {
			names = append(names, c.members[i].cfg.ID)
		}
		return names
	}
	if run.cancel != nil {
		run.cancel()
	}
	done := make(chan struct{})
	go func() { run.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		c.logger.Warn("database loop did not stop in time")
	}
	run.mu.Lock()
	if run.routerProbe != nil {
		run.routerProbe.Close()
		run.routerProbe = nil
	}
	run.mu.Unlock()
	names := run.cluster.StopOrder()
	run.cluster.Close()
	return names
}
