// Package controller turns the configuration into a running environment: it
// prepares the state directory, starts and watches every role as a child
// process (MariaDB, the database router, redis, the nodes, the edges),
// provisions WordPress, serves the control API and runs wp-cron.
package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/config"
	"github.com/scalepress/scalepress/internal/console"
	"github.com/scalepress/scalepress/internal/eventlog"
	"github.com/scalepress/scalepress/internal/local"
	"github.com/scalepress/scalepress/internal/nodegroup"
	"github.com/scalepress/scalepress/internal/phpfpm"
	"github.com/scalepress/scalepress/internal/preflight"
	"github.com/scalepress/scalepress/internal/purge"
	"github.com/scalepress/scalepress/internal/statedir"
	"github.com/scalepress/scalepress/internal/supervise"
)

// ErrAlreadyRunning means another controller holds the state directory.
var ErrAlreadyRunning = errors.New("already running")

// Controller runs one environment. It wires owners that keep their own
// state: the node group (internal/nodegroup), the database (db.go), the
// upstream set (upstreams.go), purges (internal/purge), the event log
// (internal/eventlog), the files role (files.go) and the processes of the
// other roles (services.go). It holds no lock of its own.
type Controller struct {
	cfg     config.Config
	layout  statedir.Layout
	logger  *slog.Logger
	version string
	started time.Time

	bin       preflight.Binaries
	sup       *supervise.Supervisor
	launcher  *local.Launcher
	asRoot    bool
	mysqlUser preflight.User
	phpUser   preflight.User
	redisUser preflight.User
	roleUser  preflight.User // runs the roles that need no root (edge, files, dbrouter, dns)
	secrets   statedir.Secrets
	lockFile  *os.File
	http      *http.Client

	ready        atomic.Bool
	startup      startup
	events       *eventlog.Log
	console      *console.Console
	upstreams    *upstreams
	group        *nodegroup.Group
	nodes        *local.Nodes // the local launcher's nodes (scheduler local)
	nomad        *nomadNodes  // the Nomad launcher (scheduler nomad)
	roles        *nomadRoles  // the role jobs on Nomad (scheduler.roles), nil when none
	home         *home        // this controller's hold on its state in Nomad (home.go)
	db           *database
	files        *filesRole
	filesS3      *api.FilesS3Spec // the files store's bucket, nil for a local store
	seedFiles    FilesSeeder
	filesBackup  FilesBackup
	releaseFiles ReleaseFilesFunc
	relRemote    releaseRemote // the release store's copy in the files store's bucket
	rollouts     rollouts
	backups      backups
	purges       *purge.Fanout
	edges        []service // as configured
	redis        service
	router       service
	dns          service
}

// New returns a controller for the state directory dir; seed fills an empty
// files store when files is enabled.
func New(cfg config.Config, dir string, version string, logger *slog.Logger, seed FilesSeeder) (*Controller, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("controller: %w", err)
	}
	c := &Controller{
		cfg: cfg, layout: statedir.Layout{Dir: abs}, logger: logger, version: version, seedFiles: seed,
		asRoot: os.Geteuid() == 0,
		http:   &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		edges:  make([]service, len(cfg.Edges)),
	}
	c.upstreams = newUpstreams()
	c.db = &database{cfg: cfg}
	c.files = &filesRole{}
	c.home = newHome()
	return c, nil
}

// Run brings the environment up, calls onReady once the site answers through
// the edge, keeps it healthy until ctx ends, then stops everything in reverse
// dependency order. If bringing up fails, everything started is stopped and
// the error says what failed.
func (c *Controller) Run(ctx context.Context, onReady func()) (err error) {
	c.started = time.Now()
	if err := c.prepareDir(); err != nil {
		return err
	}
	if err := c.lock(); err != nil {
		return err
	}
	defer c.unlock()
	os.Remove(c.layout.ControllerErr())
	defer func() {
		if err != nil {
			os.WriteFile(c.layout.ControllerErr(), []byte(err.Error()+"\n"), 0o644)
		}
	}()

	// Nomad is asked first whether this config can work with it (TLS,
	// the token's policy): a refusal stops `up` before anything starts
	// or is written there.
	if err := c.checkNomad(ctx); err != nil {
		return err
	}
	// An empty directory over a site that runs on Nomad takes its state
	// from the last controller's home variable (ADR 27).
	restored, err := c.restoreHome(ctx)
	if err != nil {
		return err
	}
	st, err := statedir.ReadState(c.layout.StateFile())
	if err != nil {
		return err
	}
	if cleaned, err := supervise.CleanupStale(c.layout.PIDs(), c.logger); err != nil {
		return fmt.Errorf("clean up after the previous run: %w", err)
	} else if len(cleaned) > 0 {
		c.logger.Info("stopped processes left by a previous run", "names", cleaned)
	}
	if c.bin, err = preflight.FindBinaries(c.cfg); err != nil {
		return err
	}
	if c.bin.Self, err = local.InstallSelf(c.bin.Self, filepath.Join(c.layout.Run(), "bin")); err != nil {
		return err
	}
	if c.asRoot {
		if c.mysqlUser, err = preflight.LookupUser("mysql"); err != nil {
			return err
		}
		if c.phpUser, err = preflight.LookupUser("www-data"); err != nil {
			return err
		}
		if c.redisUser, err = preflight.LookupUser("redis"); err != nil {
			return err
		}
		if c.roleUser, err = preflight.LookupUser(RoleUser); err != nil {
			return err
		}
		if err := preflight.CheckTraversable(c.layout.Dir); err != nil {
			return err
		}
	}
	if err := preflight.CheckPorts(c.cfg); err != nil {
		return err
	}
	if c.filesS3, err = FilesStore(ctx, c.cfg, c.logger); err != nil {
		return err
	}
	if err := os.WriteFile(c.layout.ControllerPID(), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return fmt.Errorf("controller: %w", err)
	}
	defer os.Remove(c.layout.ControllerPID())
	st.Version = c.version
	if err := statedir.WriteState(c.layout.StateFile(), st); err != nil {
		return err
	}
	if c.secrets, err = statedir.LoadSecrets(c.layout); err != nil {
		return err
	}
	if err := c.saveHome(ctx); err != nil {
		return err
	}

	if c.events, err = eventlog.Open(filepath.Join(c.layout.Dir, "events.log")); err != nil {
		return fmt.Errorf("event log: %w", err)
	}
	defer c.events.Close()
	if restored != "" {
		c.event("config", "", "state directory %s restored from Nomad (secrets and state file of %s)", c.layout.Dir, restored)
	}
	if err := c.newPurges(); err != nil {
		return err
	}
	c.sup = supervise.New(c.logger.With("component", "supervise"))
	c.sup.OnEvent(c.onProcessEvent)
	defer c.sup.Close()
	c.launcher = &local.Launcher{
		Sup: c.sup, Self: c.bin.Self, SpecDir: c.layout.Specs(), LogDir: c.layout.Logs(), PIDDir: c.layout.PIDs(),
		Restart: supervise.RestartPolicy{MaxRestarts: c.cfg.Supervise.MaxRestarts, Window: c.cfg.Supervise.Window},
	}
	if err := c.newGroup(st.Policy); err != nil {
		return err
	}
	if err := c.newNomadRoles(); err != nil {
		return err
	}
	defer c.stopAll()

	if err := c.newConsole(); err != nil {
		return err
	}
	apiErr := make(chan error, 1)
	apiSrv, err := c.startAPI(apiErr)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		apiSrv.Shutdown(sctx)
		cancel()
	}()
	// The dashboards follow the start too; they are disconnected before the
	// API shuts down, which waits for open requests.
	var consoleWG sync.WaitGroup
	cctx, stopConsole := context.WithCancel(ctx)
	consoleWG.Go(func() { c.console.Run(cctx) })
	defer func() {
		stopConsole()
		consoleWG.Wait()
	}()
	c.startup.done("checks", time.Since(c.started))

	steps := []struct {
		name string
		fn   func(context.Context) error
		off  bool // not configured: nothing to start or report
	}{
		{"database", c.startDB, false},
		{"database router", c.startRouter, false},
		{"redis", c.startRedis, false},
		{"wordpress", c.provisionSite, false},
		{"files", c.startFiles, !c.cfg.Files.Enabled},
		{"nodes", c.startNodes, false},
		{"edges", c.startEdges, false},
		{"dns", c.startDNS, !c.cfg.DNS.Enabled},
		{"site", c.waitSite, false},
	}
	for _, s := range steps {
		if s.off {
			continue
		}
		t0 := time.Now()
		if err := s.fn(ctx); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("interrupted while starting %s", s.name)
			}
			return fmt.Errorf("start %s: %w", s.name, err)
		}
		c.logger.Info("started", "step", s.name, "took", time.Since(t0).Round(time.Millisecond))
		c.startup.done(s.name, time.Since(t0))
	}
	st.Installed = true
	if err := statedir.WriteState(c.layout.StateFile(), st); err != nil {
		return err
	}
	c.saveHomeLater(ctx)
	c.ready.Store(true)
	c.event("config", "", "site ready at %s after %s", c.cfg.SiteURL(), time.Since(c.started).Round(time.Millisecond))
	if onReady != nil {
		onReady()
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Go(func() { c.healthLoop(lctx) })
	wg.Go(func() { c.group.Run(lctx) })
	wg.Go(func() { c.purges.Run(lctx) })
	if c.cfg.Files.Enabled {
		wg.Go(func() { c.files.Run(lctx) })
	}
	wg.Go(func() { c.followRoles(lctx) })
	if c.onNomad(config.RoleEdge) && len(c.cfg.TLS.Certificates) > 0 {
		wg.Go(func() { c.watchEdgeCerts(lctx) })
	}
	wg.Go(func() { c.watchHome(lctx) })
	if c.cfg.WordPress.CronInterval > 0 {
		wg.Go(func() { c.cronLoop(lctx) })
	}
	if c.cfg.Backup.Every > 0 {
		wg.Go(func() { c.backupLoop(lctx) })
	}
	if c.cfg.Backup.BinlogInterval > 0 {
		wg.Go(func() { c.binlogLoop(lctx) })
	}
	if c.cfg.Releases.SourceDir != "" && c.cfg.Files.Enabled && c.releaseFiles != nil {
		wg.Go(func() { c.sourceLoop(lctx) })
	}
	select {
	case <-ctx.Done():
		c.logger.Info("stopping", "reason", context.Cause(ctx))
		return nil
	case err := <-apiErr:
		return fmt.Errorf("control API: %w", err)
	case why := <-c.home.taken:
		return fmt.Errorf("stood down: %s (what runs on Nomad and the db-agents' members were left running)", why)
	}
}

func (c *Controller) prepareDir() error {
	for _, d := range []string{c.layout.Dir, c.layout.Logs(), c.layout.Run(), c.layout.PIDs(), c.layout.Specs()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("state dir: %w", err)
		}
	}
	// Service users (mysql, www-data) must reach their directories below.
	if err := os.Chmod(c.layout.Dir, 0o755); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	return nil
}

func (c *Controller) lock() error {
	f, err := os.OpenFile(c.layout.Lock(), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("lock state dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		pid, _ := os.ReadFile(c.layout.ControllerPID())
		return fmt.Errorf("%w: another scalepress controller (pid %s) runs %s: use `scalepress down --dir %s` first", ErrAlreadyRunning, trimNL(pid), c.layout.Dir, c.layout.Dir)
	}
	c.lockFile = f
	return nil
}

func (c *Controller) unlock() {
	if c.lockFile != nil {
		c.lockFile.Close()
	}
}

func trimNL(b []byte) string {
	s := string(b)
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == '\r') {
		s = s[:len(s)-1]
	}
	return s
}

// stopAll stops every child in reverse dependency order. The database loop
// stops first (nothing restarts a member being stopped), then the members
// one at a time, last joined first: the last one out is safe to bootstrap.
func (c *Controller) stopAll() {
	c.ready.Store(false)
	var edges []string
	for _, e := range c.cfg.Edges {
		edges = append(edges, e.ID)
	}
	db := c.db.Stop(15 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if c.home.fenced.Load() {
		// Another controller took the site over: what runs on Nomad and
		// through the db-agents is its own now. Only this one's children stop.
		c.stopOwnChildren(ctx, edges, db)
		return
	}
	order := [][]string{append(edges, "dns")}
	if c.nomad != nil {
		c.sup.StopAll(ctx, order)
		c.nomad.stop(ctx)
		order = nil
	}
	c.stopNomadRoles(ctx)
	if c.nodes != nil {
		order = append(order, c.nodes.StopOrder()...)
	}
	order = append(order, []string{"dbrouter", "redis", "files"})
	for _, m := range db {
		order = append(order, []string{m})
	}
	c.sup.StopAll(ctx, order)
	c.db.StopMembers(ctx)
	c.db.StopAgents(ctx)
	c.logger.Info("all processes stopped")
}

// stopOwnChildren is stopAll for a controller that stood down: its own
// children stop; the node job, the role jobs, the db-agents' members and
// their jobs are left running, and its following of them ends.
func (c *Controller) stopOwnChildren(ctx context.Context, edges, db []string) {
	if c.nomad != nil && c.nomad.done != nil {
		c.nomad.cancel()
		<-c.nomad.done
	}
	order := [][]string{append(edges, "dns"), {"dbrouter", "redis", "files"}}
	for _, m := range db {
		order = append(order, []string{m})
	}
	c.sup.StopAll(ctx, order)
	c.logger.Info("stood down: this controller's processes stopped, what runs on Nomad left running")
}

func (c *Controller) onProcessEvent(ev supervise.Event) {
	switch ev.Kind {
	case supervise.EventExited:
		c.logger.Warn("process exited", "name", ev.Name, "pid", ev.Pid, "err", ev.Err)
	case supervise.EventFailed:
		c.logger.Error("process given up", "name", ev.Name, "err", ev.Err)
	case supervise.EventStarted:
		c.logger.Info("process started", "name", ev.Name, "pid", ev.Pid)
	}
}

// phpChildren is pm.max_children per node.
func (c *Controller) phpChildren() int {
	if c.cfg.Nodes.PHPChildren > 0 {
		return c.cfg.Nodes.PHPChildren
	}
	mem, err := phpfpm.MemTotal()
	if err != nil {
		mem = 1 << 30
	}
	// Every node on this machine shares its CPUs and memory.
	return phpfpm.Size(runtime.NumCPU(), mem/uint64(max(c.cfg.Nodes.Count, 1)))
}
