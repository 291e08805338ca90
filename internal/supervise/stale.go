package supervise

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/scalepress/scalepress/internal/atomicfile"
)

const (
	staleGrace = 5 * time.Second       // SIGTERM → SIGKILL
	staleKill  = 2 * time.Second       // how long to wait for SIGKILL to take effect
	stalePoll  = 20 * time.Millisecond // liveness polling interval
)

// CleanupStale terminates processes left over from a previous run of the
// supervisor (for example after it was killed with SIGKILL and a child
// ignored or outlived its Pdeathsig). Call it with the PIDDir used in Specs
// before starting anything.
//
// For every pidDir/*.pid file whose process is still alive and still runs
// the recorded executable (a guard against pid reuse), it sends SIGTERM to
// the process group, waits up to 5s, then sends SIGKILL. All pid files are
// removed, except those of processes that could not be killed. It returns
// the names of the processes it terminated, sorted. A missing pidDir is not
// an error.
func CleanupStale(pidDir string, logger *slog.Logger) ([]string, error) {
	return cleanupStale(pidDir, logger, staleGrace)
}

type staleProc struct {
	name, path string
	pid        int
	group      bool // pid leads its own process group
}

func (p staleProc) signal(sig syscall.Signal) error {
	if p.group {
		return killGroup(p.pid, sig)
	}
	return syscall.Kill(p.pid, sig)
}

func cleanupStale(pidDir string, logger *slog.Logger, grace time.Duration) ([]string, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	entries, err := os.ReadDir(pidDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("supervise: cleanup stale: %w", err)
	}
	var errs []error
	var victims []staleProc
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		path := filepath.Join(pidDir, e.Name())
		// Left by an interrupted writePIDFile (older binaries named it "x.pid.tmp").
		if atomicfile.IsTemp(e.Name()) || strings.HasSuffix(e.Name(), ".pid.tmp") {
			_ = os.Remove(path)
			continue
		}
		name, ok := strings.CutSuffix(e.Name(), ".pid")
		if !ok {
			continue
		}
		log := logger.With("process", name, "pid_file", path)
		pid, exe, err := readPIDFile(path)
		switch {
		case err != nil:
			log.Warn("supervise: removing unreadable pid file", "err", err)
		case !Alive(pid):
			log.Info("supervise: removing stale pid file; process is gone", "pid", pid)
		case !exeMatches(pid, exe):
			log.Warn("supervise: pid was reused by another program; leaving it alone", "pid", pid, "exe", exe)
		default:
			p := staleProc{name: name, path: path, pid: pid}
			pgid, err := syscall.Getpgid(pid)
			p.group = err == nil && pgid == pid
			log.Warn("supervise: terminating process left over from a previous run", "pid", pid, "exe", exe)
			if err := p.signal(syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
				errs = append(errs, fmt.Errorf("supervise: cleanup stale %s: %w", name, err))
			}
			_ = p.signal(syscall.SIGCONT) // let a stopped process act on SIGTERM
			victims = append(victims, p)
			continue
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("supervise: cleanup stale: %w", err))
		}
	}

	survivors := waitGone(victims, grace)
	for _, p := range victims {
		// SIGKILL the group even when the leader obeyed SIGTERM, to take
		// members that ignored it along; the pgid cannot have been reused
		// while any member is alive.
		if p.group || slices.Contains(survivors, p) {
			if err := p.signal(syscall.SIGKILL); err == nil && slices.Contains(survivors, p) {
				logger.Warn("supervise: leftover process ignored SIGTERM; killed", "process", p.name, "pid", p.pid)
			}
		}
	}
	survivors = waitGone(survivors, staleKill)

	var names []string
	for _, p := range victims {
		if slices.Contains(survivors, p) {
			errs = append(errs, fmt.Errorf("supervise: cleanup stale %s: pid %d still alive after SIGKILL", p.name, p.pid))
			continue
		}
		names = append(names, p.name)
		if err := os.Remove(p.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("supervise: cleanup stale: %w", err))
		}
	}
	slices.Sort(names)
	return names, errors.Join(errs...)
}

// waitGone polls until every process in procs is gone or timeout passes, and
// returns those still alive.
func waitGone(procs []staleProc, timeout time.Duration) []staleProc {
	deadline := time.Now().Add(timeout)
	for {
		procs = slices.DeleteFunc(slices.Clone(procs), func(p staleProc) bool { return !Alive(p.pid) })
		if len(procs) == 0 || !time.Now().Before(deadline) {
			return procs
		}
		time.Sleep(stalePoll)
	}
}

// Alive reports whether pid names a live process. Zombies (exited but not
// yet reaped) count as gone.
func Alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	state, err := procState(pid)
	if err != nil {
		// kill(2) saw it; /proc may have lost the race with its exit.
		return !errors.Is(err, fs.ErrNotExist)
	}
	return state != 'Z' && state != 'X'
}

// procState returns the state letter from /proc/PID/stat.
func procState(pid int) (byte, error) {
	b, err := os.ReadFile(procPath(pid, "stat"))
	if err != nil {
		return 0, err
	}
	// "pid (comm) S ...": comm may contain spaces and parentheses, so look
	// for the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0, fmt.Errorf("malformed %s", procPath(pid, "stat"))
	}
	return b[i+2], nil
}

// exeMatches reports whether pid still runs the executable recorded in its
// pid file. /proc/PID/exe is authoritative; when it cannot be read (another
// user's process without CAP_SYS_PTRACE) argv[0] is compared instead.
func exeMatches(pid int, recorded string) bool {
	if exe, err := os.Readlink(procPath(pid, "exe")); err == nil {
		return trimDeleted(exe) == recorded
	}
	cmdline, err := os.ReadFile(procPath(pid, "cmdline"))
	if err != nil {
		return false
	}
	arg0, _, _ := bytes.Cut(cmdline, []byte{0})
	if len(arg0) == 0 {
		return false
	}
	a := string(arg0)
	if a == recorded {
		return true
	}
	if filepath.IsAbs(a) {
		if r, err := filepath.EvalSymlinks(a); err == nil && r == recorded {
			return true
		}
	}
	return filepath.Base(a) == filepath.Base(recorded)
}
