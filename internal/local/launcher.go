package local

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/logtail"
	"github.com/scalepress/scalepress/internal/supervise"
)

// Launcher starts roles as supervised child processes.
type Launcher struct {
	Sup *supervise.Supervisor
	// Self is the scalepress binary every role runs from.
	Self string
	// SpecDir, LogDir and PIDDir hold each process's spec (NAME.json), log
	// (NAME.log) and pid file.
	SpecDir, LogDir, PIDDir string
	// Restart is the policy of every role that does not set its own.
	Restart supervise.RestartPolicy
}

// Role is one process to start.
type Role struct {
	// Name names the process, its log and its spec file.
	Name string
	// Role is the scalepress subcommand run with --spec; empty for another
	// program (Path, Args).
	Role string
	Spec any
	Path string
	Args []string
	// Credential runs it as another user; SpecOwner (uid, gid) then owns
	// its spec, which holds its secrets; AmbientCaps are the capabilities
	// it keeps (supervise.Spec).
	Credential  *syscall.Credential
	SpecOwner   *[2]int
	AmbientCaps []uintptr
	// Restart overrides the launcher's policy.
	Restart *supervise.RestartPolicy
	// StopSignal asks it to stop; 0 is SIGTERM.
	StopSignal syscall.Signal
	// OwnSession runs it in a session, so a scheduling autogroup, of its
	// own (supervise.Spec).
	OwnSession bool
	// StopTimeout is how long a stop waits before SIGKILL; 0 is 45 s (a
	// node drains in-flight requests for 30 s and stops php-fpm in 10 s).
	StopTimeout time.Duration
	// Ready returns nil once the process serves; nil: no wait.
	Ready        func(context.Context) error
	ReadyTimeout time.Duration
}

// Log is the log file of the process name.
func (l *Launcher) Log(name string) string { return filepath.Join(l.LogDir, name+".log") }

// Start writes the role's spec, starts it and waits until it is ready,
// failing fast (naming the last error of its log) when it exits while
// starting. On a failed wait the process is left to the caller's stop.
func (l *Launcher) Start(ctx context.Context, r Role) (*supervise.Process, error) {
	s := supervise.Spec{
		Name: r.Name, Path: r.Path, Args: r.Args, LogFile: l.Log(r.Name), PIDDir: l.PIDDir,
		Credential: r.Credential, AmbientCaps: r.AmbientCaps, Restart: l.Restart, StopTimeout: r.StopTimeout,
		StopSignal: r.StopSignal, OwnSession: r.OwnSession,
	}
	if r.Role != "" {
		path := filepath.Join(l.SpecDir, r.Name+".json")
		if err := api.WriteSpec(path, r.Spec); err != nil {
			return nil, err
		}
		if o := r.SpecOwner; o != nil {
			if err := os.Chown(path, o[0], o[1]); err != nil {
				return nil, fmt.Errorf("spec %s: %w", r.Name, err)
			}
		}
		s.Path, s.Args = l.Self, []string{r.Role, "--spec", path}
	}
	if r.Restart != nil {
		s.Restart = *r.Restart
	}
	if s.StopTimeout == 0 {
		s.StopTimeout = 45 * time.Second
	}
	p, err := l.Sup.Start(s)
	if err != nil {
		return nil, err
	}
	if r.Ready != nil {
		if err := WaitFor(ctx, r.Name, r.ReadyTimeout, p, s.LogFile, r.Ready); err != nil {
			return p, err
		}
	}
	return p, nil
}

// WaitFor polls check until it succeeds, or fails fast when the process
// exits while starting (its restarts would only repeat the failure), naming
// the last error line of its log.
func WaitFor(ctx context.Context, what string, timeout time.Duration, p *supervise.Process, logPath string, check func(context.Context) error) error {
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
		if p != nil && exited(p) {
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

// exited: the process restarted or is no longer starting or running.
func exited(p *supervise.Process) bool {
	return p.Restarts() > 0 || p.State() != supervise.Running && p.State() != supervise.Starting
}

// alive: the process runs, or is being restarted in place by its policy
// (it has not given up and was not stopped).
func alive(p *supervise.Process) bool {
	st := p.State()
	return st != supervise.Failed && st != supervise.Stopped
}
