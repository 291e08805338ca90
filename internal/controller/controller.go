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
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/config"
	"github.com/scalepress/scalepress/internal/logtail"
	"github.com/scalepress/scalepress/internal/phpfpm"
	"github.com/scalepress/scalepress/internal/supervise"
)

// ErrAlreadyRunning means another controller holds the state directory.
var ErrAlreadyRunning = errors.New("already running")

// Controller runs one environment.
type Controller struct {
	cfg     config.Config
	layout  Layout
	logger  *slog.Logger
	version string
	started time.Time

	bin       binaries
	sup       *supervise.Supervisor
	asRoot    bool
	mysqlUser serviceUser
	phpUser   serviceUser
	redisUser serviceUser
	roleUser  serviceUser // runs the roles that need no root (edge, files, dbrouter, dns)
	secrets   secrets
	lockFile  *os.File
	http      *http.Client

	// guarded by mu
	mu        sync.Mutex
	ready     bool
	nodes     []*nodeState
	edges     []*edgeState
	members   []*memberState
	redis     *procState
	router    *procState
	dns       *procState
	files     *filesState
	upGen     uint64
	upstreams []api.Upstream
	edgeGen   map[string]uint64 // generation each edge last reported applying
	desired   int               // node count the group converges to
	events    *eventLog
	groupWG   sync.WaitGroup // node launches and drains in flight
	scaler    *scaler
	healer    *healer
	purges    purger
}

type procState struct {
	proc    *supervise.Process
	healthy bool
}

type nodeState struct {
	n                 int // index: node-n at IPBase+n
	id, addr, docroot string
	proc              *supervise.Process
	state             string
	since             time.Time // of the last state change
	fails             int       // consecutive failed health checks
	util              float64   // PHP requests running / max_children
	queue             int       // requests waiting for a PHP worker
	children          int
	filesSeq          uint64 // files change its docroot applied last
	reason            string // why it failed or is draining
}

type edgeState struct {
	cfg     config.Edge
	proc    *supervise.Process
	healthy bool
}

// New returns a controller for the state directory dir.
func New(cfg config.Config, dir string, version string, logger *slog.Logger) (*Controller, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("controller: %w", err)
	}
	return &Controller{
		cfg: cfg, layout: Layout{Dir: abs}, logger: logger, version: version,
		asRoot: os.Geteuid() == 0,
		http:   &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
	}, nil
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

	st, err := readState(c.layout.StateFile())
	if err != nil {
		return err
	}
	if cleaned, err := supervise.CleanupStale(c.layout.PIDs(), c.logger); err != nil {
		return fmt.Errorf("clean up after the previous run: %w", err)
	} else if len(cleaned) > 0 {
		c.logger.Info("stopped processes left by a previous run", "names", cleaned)
	}
	if c.bin, err = findBinaries(c.cfg); err != nil {
		return err
	}
	if c.bin.self, err = installSelf(c.bin.self, filepath.Join(c.layout.Run(), "bin")); err != nil {
		return err
	}
	if c.asRoot {
		if c.mysqlUser, err = lookupUser("mysql"); err != nil {
			return err
		}
		if c.phpUser, err = lookupUser("www-data"); err != nil {
			return err
		}
		if c.redisUser, err = lookupUser("redis"); err != nil {
			return err
		}
		if c.roleUser, err = lookupUser(RoleUser); err != nil {
			return err
		}
		if err := checkTraversable(c.layout.Dir); err != nil {
			return err
		}
	}
	if err := checkPorts(c.cfg); err != nil {
		return err
	}
	if err := os.WriteFile(c.layout.ControllerPID(), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return fmt.Errorf("controller: %w", err)
	}
	defer os.Remove(c.layout.ControllerPID())
	st.Version = c.version
	if err := writeState(c.layout.StateFile(), st); err != nil {
		return err
	}
	if c.secrets, err = loadSecrets(c.layout); err != nil {
		return err
	}

	if c.events, err = openEventLog(filepath.Join(c.layout.Dir, "events.log")); err != nil {
		return fmt.Errorf("event log: %w", err)
	}
	defer c.events.Close()
	c.edgeGen = map[string]uint64{}
	c.healer = &healer{max: c.cfg.Autoscale.MaxReplacements, window: c.cfg.Autoscale.ReplacementWindow}
	c.scaler = newScaler(c.cfg, st.Policy)
	c.sup = supervise.New(c.logger.With("component", "supervise"))
	c.sup.OnEvent(c.onProcessEvent)
	defer c.sup.Close()
	defer c.groupWG.Wait()
	defer c.stopAll()

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

	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"database", c.startDB},
		{"database router", c.startRouter},
		{"redis", c.startRedis},
		{"wordpress", c.provisionSite},
		{"files", c.startFiles},
		{"nodes", c.startNodes},
		{"edges", c.startEdges},
		{"dns", c.startDNS},
		{"site", c.waitSite},
	}
	for _, s := range steps {
		t0 := time.Now()
		if err := s.fn(ctx); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("interrupted while starting %s", s.name)
			}
			return fmt.Errorf("start %s: %w", s.name, err)
		}
		c.logger.Info("started", "step", s.name, "took", time.Since(t0).Round(time.Millisecond))
	}
	st.Installed = true
	if err := writeState(c.layout.StateFile(), st); err != nil {
		return err
	}
	c.mu.Lock()
	c.ready = true
	c.mu.Unlock()
	c.event("config", "", "site ready at %s after %s", c.cfg.SiteURL(), time.Since(c.started).Round(time.Millisecond))
	if onReady != nil {
		onReady()
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Go(func() { c.healthLoop(lctx) })
	wg.Go(func() { c.groupLoop(lctx) })
	wg.Go(func() { c.purgeRetryLoop(lctx) })
	wg.Go(func() { c.filesLoop(lctx) })
	if c.cfg.WordPress.CronInterval > 0 {
		wg.Go(func() { c.cronLoop(lctx) })
	}
	select {
	case <-ctx.Done():
		c.logger.Info("stopping", "reason", context.Cause(ctx))
		return nil
	case err := <-apiErr:
		return fmt.Errorf("control API: %w", err)
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

// stopAll stops every child in reverse dependency order.
func (c *Controller) stopAll() {
	if c.sup == nil {
		return
	}
	c.mu.Lock()
	var edges, nodes, mid, db []string
	for _, e := range c.edges {
		edges = append(edges, e.cfg.ID)
	}
	for _, n := range c.nodes {
		nodes = append(nodes, n.id)
		n.state = api.NodeTerminated
	}
	mid = []string{"dbrouter", "redis", "files"}
	db = c.dbStopOrderLocked()
	c.ready = false
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	order := [][]string{append(edges, "dns"), nodes, mid}
	for _, m := range db { // one at a time, last joined first: the last one out is safe to bootstrap
		order = append(order, []string{m})
	}
	c.sup.StopAll(ctx, order)
	c.logger.Info("all processes stopped")
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

// restartPolicy is the configured policy for every child.
func (c *Controller) restartPolicy() supervise.RestartPolicy {
	return supervise.RestartPolicy{MaxRestarts: c.cfg.Supervise.MaxRestarts, Window: c.cfg.Supervise.Window}
}

// RoleUser is the system user the roles that need no root run as when the
// controller runs as root (scripts/install-deps.sh creates it).
const RoleUser = "scalepress"

// roleSpec is a child that is scalepress itself in another role, run as
// RoleUser when the controller is root; its spec, which holds its secrets,
// is readable by that user only.
func (c *Controller) roleSpec(name, role string, spec any) (supervise.Spec, error) {
	path := c.layout.Spec(name)
	if err := api.WriteSpec(path, spec); err != nil {
		return supervise.Spec{}, err
	}
	var cred *syscall.Credential
	if c.asRoot {
		if err := os.Chown(path, c.roleUser.UID, c.roleUser.GID); err != nil {
			return supervise.Spec{}, fmt.Errorf("spec %s: %w", name, err)
		}
		cred = c.credential(c.roleUser)
	}
	return supervise.Spec{
		Credential: cred,
		Name:       name,
		Path:       c.bin.self,
		Args:       []string{role, "--spec", path},
		LogFile:    c.layout.Log(name),
		PIDDir:     c.layout.PIDs(),
		Restart:    c.restartPolicy(),
		// A node drains in-flight requests (30 s) and stops php-fpm (10 s).
		StopTimeout: 45 * time.Second,
	}, nil
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

// waitFor polls check until it succeeds, or fails fast when the process
// exits while starting (its restarts would only repeat the failure), naming
// the last error line of its log.
func waitFor(ctx context.Context, what string, timeout time.Duration, p *supervise.Process, logPath string, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		last = check(cctx)
		ccancel()
		if last == nil {
			return nil
		}
		if p != nil && (p.Restarts() > 0 || p.State() != supervise.Running && p.State() != supervise.Starting) {
			return fmt.Errorf("%s exited while starting: %s (log: %s)", what, logtail.LastError(logPath), logPath)
		}
		select {
		case <-ctx.Done():
			if logPath != "" {
				return fmt.Errorf("%s not ready after %s: %v (log: %s)", what, timeout, last, logPath)
			}
			return fmt.Errorf("%s not ready after %s: %v", what, timeout, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (c *Controller) httpCheck(url, host string, want int) func(context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if host != "" {
			req.Host = host
		}
		resp, err := c.http.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	}
}

func tcpCheck(addr string) func(context.Context) error {
	return func(ctx context.Context) error {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return conn.Close()
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
	per := phpfpm.Size(runtime.NumCPU(), mem/uint64(max(c.cfg.Nodes.Count, 1)))
	return per
}

// edgeIPs are the addresses nodes trust X-Forwarded-* from.
func (c *Controller) edgeIPs() []string {
	var out []string
	for _, e := range c.cfg.Edges {
		host, _, _ := net.SplitHostPort(e.Addr)
		if !slices.Contains(out, host) {
			out = append(out, host)
		}
	}
	return out
}
