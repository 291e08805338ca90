package controller

// Everything about the database: members, the router, their health and
// status. The Galera issue grows this file and internal/galera.

import (
	"context"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/config"
	"github.com/scalepress/scalepress/internal/galera"
	"github.com/scalepress/scalepress/internal/supervise"
)

const monitorUser = "scalepress_monitor"

type memberState struct {
	cfg    galera.MemberConfig
	proc   *supervise.Process
	prober *galera.Prober
	state  string
}

func (c *Controller) startDB(ctx context.Context) error {
	for n := 1; n <= c.cfg.DB.Members; n++ {
		mc := galera.MemberConfig{
			ID: config.DBMemberID(n), Addr: c.cfg.DBMemberAddr(n),
			Dir: c.layout.DBMember(config.DBMemberID(n)), BufferPool: c.cfg.DB.BufferPool,
			UID: -1, GID: -1,
		}
		if c.asRoot {
			mc.UID, mc.GID = c.mysqlUser.UID, c.mysqlUser.GID
		}
		if err := galera.Prepare(ctx, mc, c.bin.mariadb); err != nil {
			return err
		}
		path, args := galera.Command(mc, c.bin.mariadb)
		p, err := c.sup.Start(supervise.Spec{
			Name: mc.ID, Path: path, Args: args, LogFile: c.layout.Log(mc.ID),
			Credential: c.credential(c.mysqlUser), PIDDir: c.layout.PIDs(),
			Restart: c.restartPolicy(), StopTimeout: 60 * time.Second,
		})
		if err != nil {
			return err
		}
		m := &memberState{cfg: mc, proc: p, state: api.DBJoining}
		c.mu.Lock()
		c.members = append(c.members, m)
		c.mu.Unlock()
		if err := waitFor(ctx, mc.ID, 60*time.Second, p, c.layout.Log(mc.ID), func(ctx context.Context) error {
			return galera.Ping(ctx, mc, c.bin.mariadb)
		}); err != nil {
			return err
		}
		if err := galera.EnsureSite(ctx, mc, c.bin.mariadb, galera.Grant{
			Database: c.cfg.DB.Name, User: c.cfg.DB.User, Password: c.secrets.DBPassword,
			MonitorUser: monitorUser, MonitorPassword: c.secrets.MonitorPassword,
		}); err != nil {
			return err
		}
		if m.prober, err = galera.NewProber(mc.Addr, monitorUser, c.secrets.MonitorPassword); err != nil {
			return err
		}
		if err := waitFor(ctx, mc.ID, 30*time.Second, p, c.layout.Log(mc.ID), m.prober.Probe); err != nil {
			return err
		}
		c.mu.Lock()
		m.state = api.DBSynced
		c.mu.Unlock()
	}
	return nil
}

func (c *Controller) startRouter(ctx context.Context) error {
	spec := api.RouterSpec{Addr: c.cfg.DB.Router, MembersURL: c.apiURL("/v1/db/members")}
	for n := 1; n <= c.cfg.DB.Members; n++ {
		spec.Members = append(spec.Members, c.cfg.DBMemberAddr(n))
	}
	s, err := c.roleSpec("dbrouter", "dbrouter", spec)
	if err != nil {
		return err
	}
	s.StopTimeout = 10 * time.Second
	p, err := c.sup.Start(s)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.router = &procState{proc: p}
	c.mu.Unlock()
	return waitFor(ctx, "dbrouter", 15*time.Second, p, c.layout.Log("dbrouter"), tcpCheck(c.cfg.DB.Router))
}

// checkDB probes every member once and records its state.
func (c *Controller) checkDB(ctx context.Context) {
	c.mu.Lock()
	members := append([]*memberState(nil), c.members...)
	c.mu.Unlock()
	for _, m := range members {
		if m.prober == nil {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := m.prober.Probe(pctx)
		cancel()
		c.mu.Lock()
		if err == nil {
			m.state = api.DBSynced
		} else {
			m.state = api.DBDown
		}
		c.mu.Unlock()
	}
}

// routerMembers is what the router may use, in preference order.
func (c *Controller) routerMembers() api.DBMembers {
	c.mu.Lock()
	defer c.mu.Unlock()
	var m api.DBMembers
	for _, mem := range c.members {
		if mem.state == api.DBSynced {
			m.Members = append(m.Members, mem.cfg.Addr)
		}
	}
	return m
}

// dbStatusLocked is the db part of the status document.
func (c *Controller) dbStatusLocked() *api.DBStatus {
	db := &api.DBStatus{Router: c.cfg.DB.Router, Name: c.cfg.DB.Name, Members: []api.DBMemberStatus{}}
	for _, m := range c.members {
		db.Members = append(db.Members, api.DBMemberStatus{ID: m.cfg.ID, Addr: m.cfg.Addr, State: m.state, PID: m.proc.Pid()})
		if db.Writer == "" && m.state == api.DBSynced {
			db.Writer = m.cfg.ID
		}
	}
	if c.router != nil {
		db.RouterPID = c.router.proc.Pid()
	}
	return db
}

// dbStopOrderLocked names the members in the order they stop, and closes probers.
func (c *Controller) dbStopOrderLocked() []string {
	var names []string
	for _, m := range c.members {
		names = append(names, m.cfg.ID)
		if m.prober != nil {
			m.prober.Close()
		}
	}
	return names
}
