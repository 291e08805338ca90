// Package node is the node agent: one "instance" of the PHP group. It writes
// and runs its php-fpm pool, serves static files from its own docroot, sends
// everything else to PHP over FastCGI with WordPress front-controller
// semantics, and reports health and utilisation.
package node

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/fastcgi"
	"github.com/scalepress/scalepress/internal/forward"
	"github.com/scalepress/scalepress/internal/token"
)

// Agent is a running node.
type Agent struct {
	spec   api.NodeSpec
	logger *slog.Logger
	root   *os.Root
	// fcgi carries the pages and the health ping alike. Its kept-alive
	// connections pin one php-fpm child each, up to all of them, so a ping
	// on a connection of its own would wait in php-fpm's accept backlog
	// until an idle one is reaped (docs/operations.md, "Node health").
	fcgi   *fastcgi.Client
	socket string
	// edges checks the signature of forwarded headers (api.HeaderEdge).
	edges *forward.Verifier
	// realDocroot is the docroot with symlinks resolved: scripts run only
	// when their resolved path is inside it and outside its uploads.
	realDocroot string
	// gate is passed before a route that rests on a missing path is
	// decided (gate.go); nil in tests that do without.
	gate gatePasser

	maxQueue int // requests that may wait for a PHP worker before the node refuses more

	load    loadMeter
	metrics *nodeMetrics

	inflight atomic.Int64
	served   atomic.Int64
	phpDone  atomic.Int64 // PHP responses relayed whole (api.NodeReport.PHPDone)
	// gateWaits counts requests whose route waited for the request gate.
	gateWaits atomic.Int64
}

// Run waits for the node's php-fpm to answer, serves HTTP on spec.Addr until
// ctx ends, then drains in-flight requests.
func Run(ctx context.Context, spec api.NodeSpec, logger *slog.Logger) error {
	a, err := newAgent(spec, logger)
	if err != nil {
		return err
	}
	defer a.root.Close()

	ln, err := net.Listen("tcp", spec.Addr)
	if err != nil {
		return fmt.Errorf("node %s: %w", spec.ID, err)
	}
	// php-fpm and the filesync agent are the node's other processes,
	// started beside this one by the launcher; PHP answering is the
	// health check.
	if err := a.waitPHP(ctx); err != nil {
		ln.Close()
		return err
	}

	srv := &http.Server{
		Handler:           a,
		ReadHeaderTimeout: 10 * time.Second,
		// Longer than the edge's idle timeout, so the edge closes idle
		// connections first and never reuses one the node is closing.
		IdleTimeout: 75 * time.Second,
		ErrorLog:    slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	var wg sync.WaitGroup
	mctx, stopMeter := context.WithCancel(context.Background())
	defer stopMeter()
	wg.Go(func() {
		a.load.run(mctx, func() (int, int) { st := a.fcgi.Stats(); return st.Busy, st.Waiting })
	})
	serveErr := make(chan error, 1)
	wg.Go(func() { serveErr <- srv.Serve(ln) })
	logger.Info("node in service", "addr", spec.Addr, "docroot", spec.Docroot, "php_children", spec.PHPChildren)

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		runErr = fmt.Errorf("node %s: serve: %w", spec.ID, err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	srv.Shutdown(sctx) // drain in-flight requests
	cancel()
	stopMeter()
	wg.Wait()
	a.fcgi.Close()
	return runErr
}

func newAgent(spec api.NodeSpec, logger *slog.Logger) (*Agent, error) {
	if spec.ID == "" || spec.Addr == "" || !filepath.IsAbs(spec.Docroot) || !filepath.IsAbs(spec.RunDir) {
		return nil, fmt.Errorf("node: spec needs id, addr and absolute docroot and run_dir")
	}
	if spec.PHPChildren < 1 {
		return nil, fmt.Errorf("node %s: php_children must be >= 1", spec.ID)
	}
	root, err := os.OpenRoot(spec.Docroot)
	if err != nil {
		return nil, fmt.Errorf("node %s: docroot: %w", spec.ID, err)
	}
	a := &Agent{spec: spec, logger: logger, root: root, socket: filepath.Join(spec.RunDir, "php-fpm.sock"), maxQueue: max(16*spec.PHPChildren, 64)}
	fail := func(err error) (*Agent, error) {
		root.Close()
		return nil, fmt.Errorf("node %s: %w", spec.ID, err)
	}
	if a.realDocroot, err = filepath.EvalSymlinks(spec.Docroot); err != nil {
		return fail(fmt.Errorf("docroot: %w", err))
	}
	key, err := token.ParseKey(spec.ForwardKey)
	if err != nil {
		return fail(fmt.Errorf("forward_key: %w", err))
	}
	if a.edges, err = forward.NewVerifier(key); err != nil {
		return fail(err)
	}
	cfg := fastcgi.DefaultConfig()
	cfg.Network, cfg.Address = "unix", a.socket
	cfg.MaxConns = spec.PHPChildren
	cfg.MaxIdle = spec.PHPChildren
	if spec.MaxBody > 0 {
		cfg.MaxBody = spec.MaxBody
	}
	if spec.BodyTimeout != "" {
		if cfg.BodyTimeout, err = time.ParseDuration(spec.BodyTimeout); err != nil || cfg.BodyTimeout <= 0 {
			return fail(fmt.Errorf("body_timeout %q: must be a positive duration", spec.BodyTimeout))
		}
	}
	// Bodies larger than fit in memory wait here (unlinked at once) until
	// complete; request bodies hold passwords, so the directory is private.
	cfg.BodyDir = spec.BodyDir
	if cfg.BodyDir == "" {
		cfg.BodyDir = filepath.Join(spec.RunDir, "bodies")
	}
	if err := os.MkdirAll(cfg.BodyDir, 0o700); err != nil {
		return fail(err)
	}
	if err := os.Chmod(cfg.BodyDir, 0o700); err != nil {
		return fail(err)
	}
	a.gate = &flockGate{root: root, wait: gateWait, poll: gatePoll}
	a.metrics = newNodeMetrics(a)
	cfg.OnTiming = func(wait, run time.Duration) {
		a.phpDone.Add(1)
		a.metrics.observe(wait, run)
	}
	if a.fcgi, err = fastcgi.New(cfg); err != nil {
		return fail(err)
	}
	return a, nil
}

// waitPHP polls php-fpm's ping until it answers (50–130 ms after exec here).
func (a *Agent) waitPHP(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		last = a.ping(pctx)
		cancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("node %s: php-fpm did not answer its ping within 30s: %v", a.spec.ID, last)
}

// ping asks php-fpm's ping path through FastCGI: proof that PHP answers.
// It takes a connection of the pool like a page does (an idle one when the
// node is idle, so the child it pins answers); php-fpm answers the ping in
// C, without running a script. A busy node is judged by its progress
// instead (phpAlive), so pings do not queue behind pages.
func (a *Agent) ping(ctx context.Context) error {
	resp, err := a.fcgi.Do(ctx, map[string]string{
		"SCRIPT_NAME": "/fpm-ping", "SCRIPT_FILENAME": "/fpm-ping",
		"REQUEST_METHOD": "GET", "QUERY_STRING": "", "GATEWAY_INTERFACE": "CGI/1.1",
	}, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	buf := make([]byte, 16)
	n, _ := resp.Body.Read(buf)
	if resp.Status != http.StatusOK || string(buf[:n]) != "pong" {
		return fmt.Errorf("php-fpm ping: status %d, body %q", resp.Status, buf[:n])
	}
	return nil
}
