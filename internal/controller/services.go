package controller

import (
	"context"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/config"
	"github.com/scalepress/scalepress/internal/local"
	"github.com/scalepress/scalepress/internal/nodehost"
	"github.com/scalepress/scalepress/internal/preflight"
	"github.com/scalepress/scalepress/internal/redisd"
	"github.com/scalepress/scalepress/internal/supervise"
	"github.com/scalepress/scalepress/internal/token"
	"github.com/scalepress/scalepress/internal/wordpress"
	"golang.org/x/sys/unix"
)

func (c *Controller) credential(u preflight.User) *syscall.Credential {
	if !c.asRoot {
		return nil
	}
	return &syscall.Credential{Uid: uint32(u.UID), Gid: uint32(u.GID)}
}

func (c *Controller) apiURL(path string) string { return "http://" + c.cfg.API.Addr + path }

// service is a role process the controller started and checks.
type service struct {
	proc    atomic.Pointer[supervise.Process]
	healthy atomic.Bool
}

func (s *service) pid() int {
	if p := s.proc.Load(); p != nil {
		return p.Pid()
	}
	return 0
}

// up: it passed its last check and its process runs.
func (s *service) up() bool {
	p := s.proc.Load()
	return s.healthy.Load() && p != nil && p.State() == supervise.Running
}

// RoleUser is the system user the roles that need no root run as when the
// controller runs as root (scripts/install-deps.sh creates it).
const RoleUser = "scalepress"

// unprivileged runs r as RoleUser when the controller is root: its spec,
// which holds its secrets, is readable by that user only, and it may bind a
// port below 1024 among addrs with the one capability that allows it.
func (c *Controller) unprivileged(r local.Role, addrs ...string) local.Role {
	if !c.asRoot {
		return r
	}
	r.Credential = c.credential(c.roleUser)
	r.SpecOwner = &[2]int{c.roleUser.UID, c.roleUser.GID}
	s := supervise.Spec{Credential: r.Credential}
	bindLow(&s, addrs...)
	r.AmbientCaps = s.AmbientCaps
	return r
}

// bindLow lets an unprivileged role bind addrs whose port is below 1024, with
// the one capability that allows it.
func bindLow(s *supervise.Spec, addrs ...string) {
	if s.Credential == nil {
		return
	}
	for _, a := range addrs {
		if ap, err := netip.ParseAddrPort(a); err == nil && ap.Port() < 1024 {
			s.AmbientCaps = []uintptr{unix.CAP_NET_BIND_SERVICE}
			return
		}
	}
}

// start runs the role-start sequence (internal/local) and records the
// process in s, healthy once it answered.
func (c *Controller) start(ctx context.Context, s *service, r local.Role) error {
	p, err := c.launcher.Start(ctx, r)
	if p != nil {
		s.proc.Store(p)
	}
	if err != nil {
		return err
	}
	s.healthy.Store(true)
	return nil
}

// redisPassword is redis's requirepass; the controller's health checks and
// WordPress (wp-config.php) authenticate with it.
func (c *Controller) redisPassword() string { return c.secrets.Key(token.Redis).Hex() }

func (c *Controller) startRedis(ctx context.Context) error {
	if c.onNomad(config.RoleRedis) {
		return c.startRedisNomad(ctx)
	}
	rc := redisd.Config{Addr: c.cfg.Redis.Addr, Dir: c.layout.Redis(), MaxMemory: c.cfg.Redis.MaxMemory, Password: c.redisPassword()}
	if err := rc.Validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(rc.Dir, 0o755); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	uid, gid := -1, -1
	if c.asRoot {
		os.Chown(rc.Dir, c.redisUser.UID, c.redisUser.GID)
		uid, gid = c.redisUser.UID, c.redisUser.GID
	}
	conf, err := redisd.WriteConfig(rc, uid, gid)
	if err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return c.start(ctx, &c.redis, local.Role{
		Name: "redis", Path: c.bin.Redis, Args: []string{conf}, Credential: c.credential(c.redisUser),
		Ready: func(ctx context.Context) error { return redisd.Ping(ctx, rc.Addr, rc.Password) }, ReadyTimeout: 15 * time.Second,
	})
}

func (c *Controller) wpConfig() ([]byte, error) { return c.renderWPConfig(false) }

// renderWPConfig is wp-config.php; viaSocket: redis through the node's own
// socket (nodehost.RedisSocket), for nodes that follow a redis Nomad moves.
func (c *Controller) renderWPConfig(viaSocket bool) ([]byte, error) {
	redisAddr, redisSocket := c.redisAddr(), ""
	if viaSocket {
		redisAddr, redisSocket = "", nodehost.RedisSocket
	}
	return wordpress.RenderConfig(wordpress.Config{
		DBName: c.cfg.DB.Name, DBUser: c.cfg.DB.User, DBPassword: c.secrets.DBPassword,
		DBHost: c.cfg.DB.Router, SiteURL: c.cfg.SiteURL(), Salts: c.secrets.Salts,
		RedisAddr: redisAddr, RedisSocket: redisSocket, Debug: c.cfg.Site.Debug,
		RedisPassword: c.redisPassword(), ObjectCacheKey: c.secrets.Key(token.ObjectCache).Hex(),
		LockCode: c.cfg.WordPress.LockCode, BlockExternalHTTP: c.cfg.WordPress.BlockExternalHTTP,
		PurgeURL: c.apiURL(api.APIPathPurge), PurgeSecret: c.secrets.PurgeSecret,
	})
}

// writeWPConfig writes wp-config.php into a tree: readable by the PHP user only.
func (c *Controller) writeWPConfig(docroot string) error {
	b, err := c.wpConfig()
	if err != nil {
		return err
	}
	return nodehost.WriteWPConfig(docroot, b, c.asRoot, c.phpUser.GID)
}

// provisionSite makes the canonical site tree and installs WordPress once.
func (c *Controller) provisionSite(ctx context.Context) error {
	site := c.layout.Site()
	if _, err := os.Stat(site); os.IsNotExist(err) {
		if err := wordpress.CopyTree(c.cfg.WordPress.Source, site, c.logger); err != nil {
			return err
		}
	}
	if err := c.writeWPConfig(site); err != nil {
		return err
	}
	// Writes made by the install go through the object cache like any other.
	if err := wordpress.InstallDropins(site); err != nil {
		return err
	}
	// PHP runs as the PHP user, as in php-fpm, never as root.
	res, err := wordpress.Install{
		PHP: c.bin.PHP, Docroot: site, SiteURL: c.cfg.SiteURL(), Title: c.cfg.Site.Title,
		AdminUser: c.cfg.Site.AdminUser, AdminEmail: c.cfg.Site.AdminEmail,
		AdminPasswordFile: c.layout.Secret("admin-password"), Permalinks: c.cfg.WordPress.Permalinks,
		ScratchDir: c.layout.Run(), Credential: c.credential(c.phpUser),
	}.Run(ctx)
	if err != nil {
		return err
	}
	if res.Installed {
		c.logger.Info("WordPress installed", "url", c.cfg.SiteURL(), "admin", c.cfg.Site.AdminUser, "php_user", res.User)
	}
	return nil
}

func (c *Controller) startEdges(ctx context.Context) error {
	if err := c.prepareTLS(); err != nil {
		return err
	}
	if c.onNomad(config.RoleEdge) {
		return c.startEdgesNomad(ctx)
	}
	for i, e := range c.cfg.Edges {
		spec, err := c.edgeSpec(i)
		if err != nil {
			return err
		}
		err = c.start(ctx, &c.edges[i], c.unprivileged(local.Role{
			Name: e.ID, Role: "edge", Spec: spec, StopTimeout: 45 * time.Second,
			Ready: c.edgeHealth(e), ReadyTimeout: 15 * time.Second,
			// Its own autogroup: what else the stack's session runs (the
			// database, the node agents, PHP when php_nice is 0) does not
			// use up the share cache hits wake up in (ADR 24).
			OwnSession: true,
		}, e.Addr, c.cfg.EdgeHTTPSAddr(i)))
		if err != nil {
			return err
		}
	}
	return nil
}

// edgeSpec is what edge i is told, wherever it runs.
func (c *Controller) edgeSpec(i int) (api.EdgeSpec, error) {
	e := c.cfg.Edges[i]
	ts, err := c.edgeTLS(i)
	if err != nil {
		return api.EdgeSpec{}, err
	}
	return api.EdgeSpec{
		ID: e.ID, Region: e.Region, Addr: e.Addr, UpstreamsURL: c.apiURL(api.APIPathUpstreams), Debug: c.cfg.Site.Debug,
		AckURL: c.apiURL(api.APIPathUpstreamsAck), EventsURL: c.apiURL(api.APIPathEdgeEvents), ControlToken: c.secrets.Key(token.Control).Issue(e.ID),
		SlowStart: c.cfg.Nodes.SlowStart.String(), PurgeSecret: c.secrets.PurgeSecret,
		Files: c.edgeFilesAddr(), FilesToken: c.edgeFilesToken(e.ID),
		ForwardKey: c.secrets.Key(token.Forward).Hex(),
		HTTP: api.HTTPSpec{
			TrustedProxies: c.cfg.HTTP.TrustedProxies, ClientConcurrency: c.cfg.HTTP.ClientConcurrency,
			BodyTimeout: c.cfg.HTTP.BodyTimeout.String(), MaxBody: int64(c.cfg.HTTP.MaxBodyMB) << 20,
			NodeLimit: c.edgeNodeLimit(), QueueBacklog: c.cfg.HTTP.QueueBacklog, QueueTimeout: c.cfg.HTTP.QueueTimeout.String(),
			UpstreamHeaderTimeout: c.cfg.HTTP.UpstreamHeaderTimeout.String(),
			LoginThrottle:         c.loginThrottleSpec(),
		},
		Cache: &api.CacheSpec{
			Enabled: c.cfg.Cache.Enabled, MaxBytes: int64(c.cfg.Cache.MaxMB) << 20,
			DefaultTTL: c.cfg.Cache.DefaultTTL.String(), StaticTTL: c.cfg.Cache.StaticTTL.String(),
			SlowHits: !c.cfg.Cache.FastHits,
		},
		TLS: ts,
	}, nil
}

func (c *Controller) edgeHealth(e config.Edge) func(context.Context) error {
	return local.HTTPCheck(c.http, "http://"+e.Addr+api.EdgePathHealth, "", 200)
}

// waitSite waits until the home page answers 200 through every edge: over
// HTTPS when TLS is on (with ACME, that waits for the first certificate).
func (c *Controller) waitSite(ctx context.Context) error {
	u, _ := url.Parse(c.cfg.SiteURL())
	for i, e := range c.cfg.Edges {
		check, wait := local.HTTPCheck(c.http, "http://"+e.Addr+"/", u.Host, 200), 60*time.Second
		if a := c.cfg.EdgeHTTPSAddr(i); a != "" {
			check = local.HTTPCheck(c.httpsTo(u.Hostname()), "https://"+a+"/", u.Host, 200)
			if len(c.cfg.TLS.ACME.Names) > 0 {
				wait = 3 * time.Minute
			}
		}
		if err := local.WaitFor(ctx, "site through "+e.ID, wait, nil, "", check); err != nil {
			return err
		}
	}
	return nil
}

// loginThrottleSpec is what every edge is told of login throttling (nil: off).
func (c *Controller) loginThrottleSpec() *api.LoginThrottleSpec {
	l := c.cfg.HTTP.LoginThrottle
	if !l.Enabled {
		return nil
	}
	return &api.LoginThrottleSpec{PerAddress: l.PerAddress, PerUser: l.PerUser, Window: l.Window.String(),
		Block: l.Block.String(), TrustedFor: l.TrustedFor.String(), MaxEntries: l.MaxEntries}
}

// edgeNodeLimit is how many requests each edge lets a node have in flight:
// its PHP workers, or 0 (no admission control) with http.admission off.
func (c *Controller) edgeNodeLimit() int {
	if !c.cfg.HTTP.Admission {
		return 0
	}
	return c.phpChildren()
}
