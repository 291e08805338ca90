package supervise

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Process is a supervised program, across all of its restarts.
type Process struct {
	sv     *Supervisor
	spec   Spec // defaults applied
	logger *slog.Logger

	state    atomic.Int32 // State
	restarts atomic.Int64

	stopOnce sync.Once
	stopReq  chan struct{} // closed by Stop: no more restarts
	killOnce sync.Once
	killReq  chan struct{} // closed by Stop when its ctx ends: SIGKILL now
	done     chan struct{} // closed when final (Stopped or Failed)

	// mu orders signalling the process group against reaping its leader, so
	// a signal can never reach a recycled pid: the pid is cleared under mu
	// while the leader is still an unreaped zombie.
	mu  sync.Mutex
	pid atomic.Int64 // current leader pid, 0 when none; written under mu
	err error        // why it Failed
}

// run is one launch of the program.
type run struct {
	cmd     *exec.Cmd
	pid     int
	started time.Time
	exited  chan error // waitExited result; always received by supervise
}

func newProcess(sv *Supervisor, spec Spec) *Process {
	p := &Process{
		sv:      sv,
		spec:    spec,
		logger:  sv.logger.With("process", spec.Name),
		stopReq: make(chan struct{}),
		killReq: make(chan struct{}),
		done:    make(chan struct{}),
	}
	p.state.Store(int32(Starting))
	return p
}

// Name returns Spec.Name.
func (p *Process) Name() string { return p.spec.Name }

// Pid returns the pid of the running child, 0 when none is running.
func (p *Process) Pid() int { return int(p.pid.Load()) }

// State returns the current lifecycle state.
func (p *Process) State() State { return State(p.state.Load()) }

// Restarts returns how many restarts have been attempted.
func (p *Process) Restarts() int { return int(p.restarts.Load()) }

// Err returns why the process Failed, nil otherwise.
func (p *Process) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Done is closed when the process is final: Stopped or Failed, with no more
// restarts.
func (p *Process) Done() <-chan struct{} { return p.done }

// Stop ends supervision: no restart happens afterwards, even if the child
// was about to exit on its own. It sends StopSignal (then SIGCONT, so that a
// stopped child can act on it) to the process group and waits; after
// StopTimeout the group gets SIGKILL. If ctx ends first, the group gets
// SIGKILL at once and Stop returns ctx's error without waiting further;
// Done reports the final exit. Stop is idempotent and returns nil for a
// process that is already final.
func (p *Process) Stop(ctx context.Context) error {
	p.stopOnce.Do(func() { close(p.stopReq) })
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
	}
	select {
	case <-p.done:
		return nil
	default:
	}
	p.killOnce.Do(func() { close(p.killReq) })
	if err := p.signalGroup(syscall.SIGKILL); err == nil {
		p.logger.Warn("supervise: stop interrupted; killed process group", "err", ctx.Err())
	}
	return fmt.Errorf("supervise: stop %s: %w", p.spec.Name, ctx.Err())
}

// Signal sends sig to the process group of the running child. It returns an
// error wrapping ErrNotRunning when no child is running. Killing the child
// this way counts as a crash and is followed by a restart.
func (p *Process) Signal(sig syscall.Signal) error {
	if err := p.signalGroup(sig); err != nil {
		return fmt.Errorf("supervise: signal %s: %w", p.spec.Name, err)
	}
	return nil
}

func (p *Process) signalGroup(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	pid := int(p.pid.Load())
	if pid == 0 {
		return ErrNotRunning
	}
	return killGroup(pid, sig)
}

func (p *Process) setState(s State) { p.state.Store(int32(s)) }

func (p *Process) stopRequested() bool {
	select {
	case <-p.stopReq:
		return true
	default:
		return false
	}
}

// launch starts one run of the program. The fork happens on the spawner
// thread.
func (p *Process) launch() (*run, error) {
	p.setState(Starting)
	logf, err := openLog(p.spec.LogFile)
	if err != nil {
		return nil, fmt.Errorf("supervise: start %s: log file: %w", p.spec.Name, err)
	}
	defer logf.Close() // the child has its own copy
	cmd := exec.Command(p.spec.Path, p.spec.Args...)
	cmd.Env = p.spec.Env
	cmd.Dir = p.spec.Dir
	cmd.Stdout = logf // an *os.File is handed to the child as is: no copying goroutine
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:     true,
		Pdeathsig:   syscall.SIGTERM,
		Credential:  p.spec.Credential,
		AmbientCaps: p.spec.AmbientCaps,
	}
	if p.spec.OwnSession {
		// A new session is a new process group too (pgid = pid), so the
		// group signals below reach the same processes; setpgid after
		// setsid would fail (EPERM).
		cmd.SysProcAttr.Setpgid, cmd.SysProcAttr.Setsid = false, true
	}
	if err := p.sv.spawner.start(cmd); err != nil {
		return nil, fmt.Errorf("supervise: start %s: %w", p.spec.Name, err)
	}
	r := &run{cmd: cmd, pid: cmd.Process.Pid, started: time.Now(), exited: make(chan error, 1)}
	p.mu.Lock()
	p.pid.Store(int64(r.pid))
	p.mu.Unlock()
	go func() { r.exited <- waitExited(r.pid) }() // owner: supervise, via reap
	if p.spec.PIDDir != "" {
		if err := writePIDFile(p.spec.PIDDir, p.spec.Name, r.pid, exePath(r.pid, cmd.Path)); err != nil {
			// Not fatal: Pdeathsig still guards against orphans.
			p.logger.Error("supervise: write pid file", "err", err)
		}
	}
	p.setState(Running)
	p.logger.Info("supervise: started", "pid", r.pid, "path", cmd.Path)
	p.sv.emit(p.spec.Name, EventStarted, r.pid, nil)
	return r, nil
}

// supervise owns the process from its first run until it is final.
func (p *Process) supervise(r *run) {
	tracker := newRestartTracker(p.spec.Restart)
	var launchErr error
	for {
		var exitErr error
		var ranFor time.Duration
		pid := 0
		if r != nil {
			var stopped bool
			pid = r.pid
			exitErr, stopped = p.wait(r)
			if stopped {
				p.finish(Stopped, pid, nil)
				return
			}
			ranFor = time.Since(r.started)
		} else {
			exitErr = launchErr
		}
		if p.stopRequested() {
			p.finish(Stopped, pid, nil)
			return
		}
		p.logger.Warn("supervise: exited", "pid", pid, "ran_for", ranFor, "err", exitErr)
		p.sv.emit(p.spec.Name, EventExited, pid, exitErr)

		if p.spec.Restart.Never {
			if exitErr == nil {
				p.finish(Stopped, pid, nil)
			} else {
				p.finish(Failed, pid, fmt.Errorf("supervise: %s exited (%w); restart disabled — see %s", p.spec.Name, exitErr, p.spec.LogFile))
			}
			return
		}
		delay, exits, giveUp := tracker.exited(time.Now(), ranFor)
		if giveUp {
			p.finish(Failed, pid, fmt.Errorf("supervise: %s exited %d times in %s (last: %w); giving up — see %s",
				p.spec.Name, exits, p.spec.Restart.Window, describeExit(exitErr), p.spec.LogFile))
			return
		}
		p.setState(Backoff)
		p.logger.Info("supervise: restarting", "in", delay)
		p.sv.emit(p.spec.Name, EventRestarting, 0, exitErr)
		if !p.sleep(delay) {
			p.finish(Stopped, 0, nil) // stopped during backoff: no child
			return
		}
		p.restarts.Add(1)
		r, launchErr = p.launch()
		if launchErr != nil {
			p.logger.Error("supervise: restart failed", "err", launchErr)
		}
	}
}

// describeExit makes a clean exit readable in the give-up message.
func describeExit(err error) error {
	if err == nil {
		return errors.New("exit status 0")
	}
	return err
}

// wait waits for run r to end, or for Stop. It returns the exit error and
// whether the run ended because of Stop.
func (p *Process) wait(r *run) (exitErr error, stopped bool) {
	var werr error
	select {
	case werr = <-r.exited:
		return p.reap(r, werr), false
	case <-p.stopReq:
	}

	p.setState(Stopping)
	p.logger.Info("supervise: stopping", "pid", r.pid, "signal", p.spec.StopSignal)
	sig := p.spec.StopSignal
	select {
	case <-p.killReq:
		sig = syscall.SIGKILL
	default:
	}
	_ = p.signalGroup(sig)
	_ = p.signalGroup(syscall.SIGCONT)
	timer := time.NewTimer(p.spec.StopTimeout)
	defer timer.Stop()
	select {
	case werr = <-r.exited:
	case <-timer.C:
		p.logger.Warn("supervise: did not exit within StopTimeout; killing process group", "pid", r.pid, "stop_timeout", p.spec.StopTimeout)
		_ = p.signalGroup(syscall.SIGKILL)
		werr = <-r.exited
	case <-p.killReq:
		_ = p.signalGroup(syscall.SIGKILL)
		werr = <-r.exited
	}
	return p.reap(r, werr), true
}

// reap finishes a run whose leader has exited (werr is the WNOWAIT wait
// result) and returns its exit status as an error.
func (p *Process) reap(r *run, werr error) error {
	if werr != nil {
		p.logger.Error("supervise: waitid", "pid", r.pid, "err", werr)
	}
	p.mu.Lock()
	// The leader is an unreaped zombie, so its pgid cannot have been reused:
	// kill whatever it left behind in its group before letting go of it.
	_ = killGroup(r.pid, syscall.SIGKILL)
	p.pid.Store(0)
	p.mu.Unlock()
	if p.spec.PIDDir != "" {
		if err := os.Remove(pidFilePath(p.spec.PIDDir, p.spec.Name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			p.logger.Error("supervise: remove pid file", "err", err)
		}
	}
	return r.cmd.Wait()
}

// sleep waits d, or returns false early if Stop is called.
func (p *Process) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return !p.stopRequested() // Stop may have raced with the timer
	case <-p.stopReq:
		return false
	}
}

// finish makes the process final; pid is the last child's, if any.
func (p *Process) finish(s State, pid int, err error) {
	p.mu.Lock()
	p.err = err
	p.mu.Unlock()
	p.setState(s)
	kind := EventStopped
	if s == Failed {
		kind = EventFailed
		p.logger.Error("supervise: failed", "err", err)
	} else {
		p.logger.Info("supervise: stopped")
	}
	p.sv.emit(p.spec.Name, kind, pid, err)
	p.sv.forget(p)
	close(p.done)
}

// abort makes a process whose first launch failed final, without events:
// Start returns the error to the caller instead.
func (p *Process) abort(err error) {
	p.mu.Lock()
	p.err = err
	p.mu.Unlock()
	p.setState(Failed)
	p.sv.forget(p)
	close(p.done)
}
