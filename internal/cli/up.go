package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/config"
	"github.com/scalepress/scalepress/internal/controller"
	"github.com/scalepress/scalepress/internal/statedir"
	"github.com/scalepress/scalepress/internal/supervise"
)

// detachTimeout bounds how long `up --detach` waits for the site.
const detachTimeout = 10 * time.Minute

func runUp(args []string) error {
	fs := newFlags("up")
	var d dirFlags
	d.register(fs, true)
	detach := fs.Bool("detach", false, "run in the background; return once the site answers through the edge")
	verbose := fs.Bool("verbose", false, "print the controller's log instead of one line per step (the log is always in DIR/logs/controller.log)")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := d.load()
	if err != nil {
		return err
	}
	if *detach {
		// What the controller would refuse as bad config, refused here
		// with the exit status that says so (2).
		if _, err := controller.FilesStore(context.Background(), cfg, nil); err != nil {
			return err
		}
		return upDetached(d, cfg.API.Addr)
	}
	if *verbose {
		logger := newLogger(os.Stderr, "controller")
		ctrl, err := newController(cfg, d.dir, logger)
		if err != nil {
			return err
		}
		ctx, cancel := signalContext()
		defer cancel()
		return ctrl.Run(ctx, func() {
			st := ctrl.Status()
			fmt.Fprintf(os.Stderr, "scalepress: site ready at %s (admin %s, password in %s)\n", st.SiteURL, st.Admin.User, st.Admin.PasswordFile)
		})
	}
	return upForeground(d, cfg)
}

// upForeground runs the environment in this process and prints a line per
// step; the controller's log goes to DIR/logs/controller.log.
func upForeground(d dirFlags, cfg config.Config) error {
	l := d.layout()
	if err := os.MkdirAll(l.Logs(), 0o755); err != nil {
		return err
	}
	logf, err := os.OpenFile(l.ControllerLog(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	defer logf.Close()
	ctrl, err := newController(cfg, d.dir, newLogger(logf, "controller"))
	if err != nil {
		return err
	}
	p := &progress{w: os.Stdout, password: isTerminal(os.Stdout)}
	fmt.Printf("starting %s (log: scalepress logs -f --dir %s)\n", l.Dir, d.dir)
	ctrl.OnStep(p.step)
	ctx, cancel := signalContext()
	defer cancel()
	t0 := time.Now()
	err = ctrl.Run(ctx, func() {
		st := ctrl.Status()
		p.ready(&st, time.Since(t0))
	})
	if err == nil {
		fmt.Println("stopped")
	}
	return err
}

// upDetached starts the controller in its own session and waits until the
// site answers through the edge, or the controller gives up (it then stops
// everything it started, so nothing is left running).
func upDetached(d dirFlags, apiAddr string) error {
	l := d.layout()
	if pid := controllerPID(l); pid > 0 {
		return fmt.Errorf("%w: a controller (pid %d) already runs %s", controller.ErrAlreadyRunning, pid, l.Dir)
	}
	if err := os.MkdirAll(l.Logs(), 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(l.Run(), 0o755); err != nil {
		return err
	}
	os.Remove(l.ControllerErr())
	logf, err := os.OpenFile(l.ControllerLog(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	defer logf.Close()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	args := []string{"up", "--verbose", "--dir", l.Dir}
	if d.config != "" {
		abs, _ := filepath.Abs(d.config)
		args = append(args, "--config", abs)
	}
	cmd := exec.Command(self, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start controller: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	p := &progress{w: os.Stdout, password: isTerminal(os.Stdout)}
	fmt.Printf("starting %s in the background (controller pid %d, log: scalepress logs -f --dir %s)\n", l.Dir, cmd.Process.Pid, d.dir)
	t0 := time.Now()
	client := api.NewClient("http://" + apiAddr)
	client.HTTP.Timeout = 2 * time.Second
	deadline := time.After(detachTimeout)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-exited:
			msg, _ := os.ReadFile(l.ControllerErr())
			if len(msg) == 0 {
				return fmt.Errorf("controller exited (%v) before the site was ready; see %s", err, l.ControllerLog())
			}
			return errors.New(strings.TrimSpace(string(msg)))
		case <-deadline:
			cmd.Process.Signal(syscall.SIGTERM)
			<-exited
			return fmt.Errorf("site not ready after %s; see %s", detachTimeout, l.ControllerLog())
		case <-tick.C:
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			st, err := client.Status(ctx)
			cancel()
			if err != nil || st.Dir != l.Dir {
				continue
			}
			p.steps(st.Startup)
			if st.Ready {
				p.ready(st, time.Since(t0))
				return nil
			}
		}
	}
}

// controllerPID is the pid of a live controller for l, or 0.
func controllerPID(l statedir.Layout) int {
	b, err := os.ReadFile(l.ControllerPID())
	if err != nil {
		return 0
	}
	var pid int
	fmt.Sscanf(string(b), "%d", &pid)
	if pid > 0 && supervise.Alive(pid) {
		return pid
	}
	return 0
}

// newController is the controller of dir with what the cli gives it: the
// files store's seeder and its reader for backups.
func newController(cfg config.Config, dir string, logger *slog.Logger) (*controller.Controller, error) {
	ctrl, err := controller.New(cfg, dir, Version, logger, seedFiles)
	if err != nil {
		return nil, err
	}
	ctrl.SetFilesBackup(filesBackup)
	ctrl.SetReleaseFiles(releaseFiles)
	return ctrl, nil
}
