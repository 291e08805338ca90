package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/atomicfile"
	"github.com/scalepress/scalepress/internal/config"
	"github.com/scalepress/scalepress/internal/controller"
	"github.com/scalepress/scalepress/internal/local"
	"github.com/scalepress/scalepress/internal/nodehost"
	"github.com/scalepress/scalepress/internal/preflight"
	"github.com/scalepress/scalepress/internal/statedir"
	"github.com/scalepress/scalepress/internal/supervise"
)

// runNodeHost runs one node's processes for a scheduler (a Nomad task):
// php-fpm, the filesync agent and the node agent, started in order with
// the same users as the controller gives them. SIGTERM stops them in the
// reverse order (the agent drains first) and exits 0; SIGUSR1 (the group
// failed the node) does the same and exits 1, as does the exit of a
// process that may not restart: the allocation then fails and keeps its
// slot for the group's replacement.
func runNodeHost(args []string) error {
	fs := newFlags("node-host")
	specPath := fs.String("spec", "", "node host spec (JSON), rendered from the job's variable")
	slot := fs.Int("slot", -1, "the node's slot (NOMAD_ALLOC_INDEX): node-N runs in slot N-1")
	addr := fs.String("addr", "", "IP:port the node agent serves on (the allocation's port)")
	dir := fs.String("dir", "", "this host's state directory for its nodes (node meta scalepress_dir); unset: $NOMAD_ALLOC_DIR/scalepress")
	redisFrom := fs.String("redis-from", "", "file rendered by Nomad with redis's address (a redis job): PHP reaches it through the node's socket")
	filesFrom := fs.String("files-from", "", "file rendered by Nomad with the files role's base URLs (a files role job); unset: the spec's files address")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *specPath == "" || *slot < 0 || *addr == "" {
		return errUsagef("--spec, --slot and --addr are required")
	}
	var spec api.NodeHostSpec
	if err := api.ReadSpec(*specPath, &spec); err != nil {
		return err
	}
	id := config.NodeID(*slot + 1)
	logger := newLogger(os.Stderr, id+"-host")
	// The spec's state directory is the controller's, on another host:
	// a node keeps its own under this host's directory and bootstraps its
	// docroot from the files store.
	stateDir, err := nodeHostDir(*dir, os.Getenv("NOMAD_ALLOC_DIR"))
	if err != nil {
		return err
	}
	spec.StateDir = stateDir
	h := nodehost.Host{Spec: spec, AsRoot: os.Geteuid() == 0, FromStore: true, Logger: logger}
	if h.AsRoot {
		var err error
		if h.PHPUser, err = preflight.LookupUser("www-data"); err != nil {
			return err
		}
		if h.RoleUser, err = preflight.LookupUser(controller.RoleUser); err != nil {
			return err
		}
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("node-host: %w", err)
	}
	lay := statedir.Layout{Dir: spec.StateDir}
	// Its own pid directory: the controller's cleanup of stale processes
	// never touches a node a scheduler runs.
	pids := filepath.Join(lay.NodeRun(id), "pids")
	// The host's directory may be new: the controller's prepares none of
	// it (each spec file is its reader's alone, as the controller writes
	// them).
	for _, d := range []string{pids, lay.Logs(), lay.Specs()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("node-host: %w", err)
		}
	}
	sup := supervise.New(logger.With("component", "supervise"))
	defer sup.Close()
	l := &local.Launcher{Sup: sup, Self: self, SpecDir: lay.Specs(), LogDir: lay.Logs(), PIDDir: pids,
		Restart: supervise.RestartPolicy{MaxRestarts: 5, Window: time.Minute}}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, os.Interrupt, syscall.SIGUSR1)
	defer signal.Stop(sigs)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	if *filesFrom != "" {
		// The filesync agent (another user) reads the files role's address
		// from the node's run directory, copied from Nomad's rendering
		// whenever it changes: the role may move to another host.
		h.FilesServerFile = filepath.Join(lay.NodeRun(id), "files-server")
		f := fileFollower{from: *filesFrom, to: h.FilesServerFile, logger: logger}
		f.copy()
		done := make(chan struct{})
		defer func() { cancel(); <-done }()
		go func() { defer close(done); f.run(ctx) }()
	}
	if *redisFrom != "" {
		// PHP reaches redis through the node's own socket (wp-config names
		// it next to the docroot); each connection goes where Nomad runs
		// redis now.
		gid := -1
		if h.AsRoot {
			gid = h.PHPUser.GID
		}
		f := nodehost.RedisForwarder{Socket: filepath.Join(lay.NodeRun(id), "redis.sock"), From: *redisFrom, GID: gid, Logger: logger}
		ln, err := f.Listen()
		if err != nil {
			return fmt.Errorf("node-host: %w", err)
		}
		done := make(chan struct{})
		defer func() { cancel(); <-done }()
		go func() { defer close(done); f.Serve(ctx, ln) }()
	}
	roles, err := h.Roles(ctx, id, *addr)
	if err != nil {
		return err
	}
	var procs []*supervise.Process
	stop := func() {
		sctx, scancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer scancel()
		for _, p := range slices.Backward(procs) {
			if err := p.Stop(sctx); err != nil {
				logger.Warn("stop", "name", p.Name(), "err", err)
			}
		}
	}
	for _, r := range roles {
		p, err := l.Start(ctx, r)
		if p != nil {
			procs = append(procs, p)
		}
		if err != nil {
			stop()
			return err
		}
	}
	logger.Info("node up", "id", id, "addr", *addr, "processes", len(procs))
	gone := make(chan *supervise.Process, len(procs))
	for _, p := range procs {
		go func() { <-p.Done(); gone <- p }() // ends with the process; stop() waits for each
	}
	select {
	case s := <-sigs:
		stop()
		if s == syscall.SIGUSR1 {
			return errors.New("node-host: failed on the node group's order")
		}
		logger.Info("node stopped", "id", id)
		return nil
	case p := <-gone:
		stop()
		return fmt.Errorf("node-host: %s exited: %v", p.Name(), p.Err())
	}
}

// nodeHostDir is the state directory of a scheduler's nodes on this host:
// dir (the node meta scalepress_dir) when Nomad resolved it, else the
// allocation's directory. Never the controller's: it is on another host.
func nodeHostDir(dir, allocDir string) (string, error) {
	switch {
	case dir != "" && !strings.Contains(dir, "${"):
		if !filepath.IsAbs(dir) {
			return "", errUsagef("--dir: want an absolute path, got %q", dir)
		}
		return dir, nil
	case allocDir != "":
		return filepath.Join(allocDir, "scalepress"), nil
	}
	return "", errUsagef("--dir: unset (no node meta scalepress_dir) and no NOMAD_ALLOC_DIR")
}

// fileFollower copies a file Nomad renders (and renders again) to where a
// process of another user reads it, each time it changes.
type fileFollower struct {
	from, to string
	last     string
	logger   *slog.Logger
}

// followEvery is how often the rendered file is read.
const followEvery = 250 * time.Millisecond

func (f *fileFollower) run(ctx context.Context) {
	t := time.NewTicker(followEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f.copy()
		}
	}
}

// copy writes the rendered file's content to f.to when it changed (an
// absent file is empty: no files role registered yet).
func (f *fileFollower) copy() {
	b, err := os.ReadFile(f.from)
	if err != nil && !os.IsNotExist(err) {
		f.logger.Warn("files role address", "err", err)
		return
	}
	if string(b) == f.last {
		return
	}
	if err := atomicfile.Write(f.to, b, 0o644); err != nil {
		f.logger.Warn("files role address", "err", err)
		return
	}
	f.last = string(b)
	f.logger.Info("files role address", "servers", strings.Fields(string(b)))
}
