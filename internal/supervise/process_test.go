package supervise

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestStartExecError(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Spec)
		is     error
	}{
		{"absolute path missing", func(s *Spec) { s.Path = "/nonexistent/scalepress-no-such-binary" }, fs.ErrNotExist},
		{"not in PATH", func(s *Spec) { s.Path = "scalepress-no-such-binary" }, exec.ErrNotFound},
		{"not executable", func(s *Spec) { s.Path = nonExecutable(t) }, fs.ErrPermission},
		{"working dir missing", func(s *Spec) { s.Dir = "/nonexistent/dir" }, fs.ErrNotExist},
		{"log dir not creatable", func(s *Spec) { s.LogFile = "/proc/self/no/such.log" }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sv := newTestSupervisor(t)
			spec := testSpec(t, "bad", "/bin/true")
			tt.mutate(&spec)
			p, err := sv.Start(spec)
			if err == nil {
				t.Fatalf("Start() = %v, nil; want error", p)
			}
			if p != nil {
				t.Errorf("Start() returned a Process along with error %v", err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("Start() = %v, want errors.Is %v", err, tt.is)
			}
			if !strings.HasPrefix(err.Error(), "supervise: start bad: ") {
				t.Errorf("error %q lacks the op prefix", err)
			}
			// The name is free again.
			spec = testSpec(t, "bad", "/bin/true")
			spec.Restart.Never = true
			if p, err := sv.Start(spec); err != nil {
				t.Errorf("Start after failed Start: %v", err)
			} else {
				waitDone(t, p, 5*time.Second)
			}
		})
	}
}

func nonExecutable(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestStartInvalidSpec(t *testing.T) {
	sv := newTestSupervisor(t)
	_, err := sv.Start(Spec{Name: "x", Path: "/bin/true", LogFile: "rel.log"})
	if err == nil || !strings.Contains(err.Error(), "LogFile") {
		t.Fatalf("Start() = %v, want a LogFile validation error", err)
	}
}

// ignoreTERM is a shell command that ignores SIGTERM (sleep inherits the
// ignored disposition through exec) and says when it is ready.
const ignoreTERM = `trap "" TERM; echo ready; exec sleep 60`

func TestStopEscalatesToSIGKILL(t *testing.T) {
	sv := newTestSupervisor(t)
	spec := testSpec(t, "stubborn", "/bin/sh", "-c", ignoreTERM)
	spec.StopTimeout = 300 * time.Millisecond
	p, err := sv.Start(spec)
	if err != nil {
		t.Fatal(err)
	}
	pid := p.Pid()
	killOnCleanup(t, pid)
	waitLog(t, spec.LogFile, "ready")

	start := time.Now()
	if err := p.Stop(t.Context()); err != nil {
		t.Fatalf("Stop() = %v", err)
	}
	took := time.Since(start)
	if took < spec.StopTimeout || took > spec.StopTimeout+2*time.Second {
		t.Errorf("Stop took %s, want just over StopTimeout %s", took, spec.StopTimeout)
	}
	if Alive(pid) {
		t.Errorf("pid %d still alive after Stop", pid)
	}
	if p.State() != Stopped || p.Err() != nil || p.Restarts() != 0 {
		t.Errorf("after Stop: state %s err %v restarts %d", p.State(), p.Err(), p.Restarts())
	}
}

func TestStopContextEndsFirst(t *testing.T) {
	sv := newTestSupervisor(t)
	spec := testSpec(t, "stubborn", "/bin/sh", "-c", ignoreTERM)
	spec.StopTimeout = time.Hour
	p, err := sv.Start(spec)
	if err != nil {
		t.Fatal(err)
	}
	killOnCleanup(t, p.Pid())
	waitLog(t, spec.LogFile, "ready")

	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if err := p.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop() = %v, want DeadlineExceeded", err)
	}
	waitDone(t, p, 2*time.Second) // SIGKILLed, not waiting out the hour
	if p.State() != Stopped {
		t.Errorf("state = %s, want stopped", p.State())
	}
}

func TestStopResumesStoppedProcess(t *testing.T) {
	sv := newTestSupervisor(t)
	spec := testSpec(t, "frozen", "sleep", "60")
	spec.StopTimeout = time.Hour // only SIGTERM+SIGCONT can make this fast
	p, err := sv.Start(spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "process to be stopped", func() bool {
		s, _ := procState(p.Pid())
		return s == 'T'
	})
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := p.Stop(ctx); err != nil {
		t.Fatalf("Stop() = %v", err)
	}
}

func TestStopIsIdempotentAndFinal(t *testing.T) {
	sv := newTestSupervisor(t)
	rec := record(sv)
	p, err := sv.Start(testSpec(t, "idem", "sleep", "60"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := p.Stop(t.Context()); err != nil {
			t.Fatalf("Stop #%d = %v", i, err)
		}
	}
	if err := p.Signal(syscall.SIGTERM); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Signal after Stop = %v, want ErrNotRunning", err)
	}
	if got, want := rec.kinds("idem"), []EventKind{EventStarted, EventStopped}; !slices.Equal(got, want) {
		t.Errorf("events = %v, want %v", got, want)
	}
}

func TestStopDuringBackoff(t *testing.T) {
	sv := newTestSupervisor(t)
	rec := record(sv)
	spec := testSpec(t, "flap", "/bin/sh", "-c", "exit 1")
	spec.Restart.InitialBackoff = time.Hour // Stop must not wait for this
	spec.Restart.MaxBackoff = time.Hour
	p, err := sv.Start(spec)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "backoff", func() bool { return p.State() == Backoff })
	if err := p.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if p.State() != Stopped || p.Restarts() != 0 {
		t.Errorf("state %s restarts %d, want stopped without restart", p.State(), p.Restarts())
	}
	want := []EventKind{EventStarted, EventExited, EventRestarting, EventStopped}
	if got := rec.kinds("flap"); !slices.Equal(got, want) {
		t.Errorf("events = %v, want %v", got, want)
	}
}

func TestSignalKillRestarts(t *testing.T) {
	sv := newTestSupervisor(t)
	p, err := sv.Start(testSpec(t, "victim", "sleep", "60"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		old := p.Pid()
		if err := p.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, "restart", func() bool {
			return p.State() == Running && p.Pid() != 0 && p.Pid() != old
		})
		if p.Restarts() != i {
			t.Errorf("Restarts() = %d, want %d", p.Restarts(), i)
		}
		if Alive(old) {
			t.Errorf("old pid %d still alive", old)
		}
	}
	if err := p.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestNeverRestart(t *testing.T) {
	tests := []struct {
		name      string
		script    string
		wantState State
		wantErr   string
	}{
		{"clean exit", "exit 0", Stopped, ""},
		{"failure", "exit 3", Failed, "supervise: once exited (exit status 3); restart disabled — see "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sv := newTestSupervisor(t)
			rec := record(sv)
			spec := testSpec(t, "once", "/bin/sh", "-c", tt.script)
			spec.Restart.Never = true
			p, err := sv.Start(spec)
			if err != nil {
				t.Fatal(err)
			}
			waitDone(t, p, 5*time.Second)
			if p.State() != tt.wantState || p.Restarts() != 0 {
				t.Errorf("state %s restarts %d, want %s and 0", p.State(), p.Restarts(), tt.wantState)
			}
			if tt.wantErr == "" && p.Err() != nil || tt.wantErr != "" && (p.Err() == nil || !strings.HasPrefix(p.Err().Error(), tt.wantErr)) {
				t.Errorf("Err() = %v, want prefix %q", p.Err(), tt.wantErr)
			}
			final := EventKind(tt.wantState.String())
			if got, want := rec.kinds("once"), []EventKind{EventStarted, EventExited, final}; !slices.Equal(got, want) {
				t.Errorf("events = %v, want %v", got, want)
			}
		})
	}
}

func TestLogFile(t *testing.T) {
	sv := newTestSupervisor(t)
	spec := testSpec(t, "chatty", "/bin/sh", "-c", `echo "to stdout $FOO"; echo "to stderr" >&2`)
	spec.LogFile = filepath.Join(t.TempDir(), "deep", "er", "chatty.log") // parents are created
	spec.Env = []string{"FOO=bar"}
	spec.Restart.Never = true

	for range 2 {
		p, err := sv.Start(spec)
		if err != nil {
			t.Fatal(err)
		}
		waitDone(t, p, 5*time.Second)
		if p.State() != Stopped {
			t.Fatalf("state %s err %v", p.State(), p.Err())
		}
	}
	b, err := os.ReadFile(spec.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Repeat("to stdout bar\nto stderr\n", 2) // appended, not truncated
	if string(b) != want {
		t.Errorf("log = %q, want %q", b, want)
	}
	fi, err := os.Stat(spec.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm&^0o640 != 0 {
		t.Errorf("log mode = %v, want at most 0640", perm)
	}
}

func TestEnvInherited(t *testing.T) {
	t.Setenv("SUPERVISE_TEST_INHERIT", "yes")
	sv := newTestSupervisor(t)
	spec := testSpec(t, "env", "/bin/sh", "-c", `echo "inherit=$SUPERVISE_TEST_INHERIT"`)
	spec.Restart.Never = true
	p, err := sv.Start(spec)
	if err != nil {
		t.Fatal(err)
	}
	waitDone(t, p, 5*time.Second)
	waitLog(t, spec.LogFile, "inherit=yes")
}

func TestPIDFile(t *testing.T) {
	sv := newTestSupervisor(t)
	spec := testSpec(t, "web-1", "sleep", "60")
	spec.PIDDir = filepath.Join(t.TempDir(), "run")
	p, err := sv.Start(spec)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(spec.PIDDir, "web-1.pid")
	pid, exe, err := readPIDFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if pid != p.Pid() {
		t.Errorf("pid file says %d, Pid() = %d", pid, p.Pid())
	}
	if !exeMatches(pid, exe) {
		t.Errorf("recorded exe %q does not match the running process", exe)
	}
	if err := p.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("pid file still there after Stop: %v", err)
	}
}

// TestGroupMembersDoNotOutliveLeader checks that what a child forks is
// killed with it, whether it is stopped or exits on its own.
func TestGroupMembersDoNotOutliveLeader(t *testing.T) {
	tests := []struct {
		name   string
		script string
		stop   bool
	}{
		{"stopped", `sleep 60 & echo "grandchild=$!"; wait`, true},
		{"leader exits", `sleep 60 & echo "grandchild=$!"; exit 1`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sv := newTestSupervisor(t)
			spec := testSpec(t, "parent", "/bin/sh", "-c", tt.script)
			spec.Restart.Never = true
			p, err := sv.Start(spec)
			if err != nil {
				t.Fatal(err)
			}
			log := waitLog(t, spec.LogFile, "\n")
			grandchild, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(log, "grandchild=")))
			if err != nil {
				t.Fatalf("log %q: %v", log, err)
			}
			killOnCleanup(t, grandchild)
			if tt.stop {
				if err := p.Stop(t.Context()); err != nil {
					t.Fatal(err)
				}
			} else {
				waitDone(t, p, 5*time.Second)
			}
			eventually(t, 2*time.Second, fmt.Sprintf("grandchild %d to die", grandchild), func() bool { return !Alive(grandchild) })
		})
	}
}

func TestCredential(t *testing.T) {
	needRoot(t)
	sv := newTestSupervisor(t)
	spec := testSpec(t, "as-nobody", "sleep", "60")
	spec.Dir = "/"
	spec.Credential = &syscall.Credential{Uid: 65534, Gid: 65534}
	p, err := sv.Start(spec)
	if err != nil {
		t.Fatal(err)
	}
	status, err := os.ReadFile(procPath(p.Pid(), "status"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(status), "\nUid:\t65534\t65534\t65534\t65534\n") {
		t.Errorf("child does not run as nobody:\n%s", status)
	}
	if err := p.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// TestAmbientCaps: an unprivileged child keeps exactly the capability it was
// given (here the one that binds ports below 1024) and no other.
func TestAmbientCaps(t *testing.T) {
	needRoot(t)
	sv := newTestSupervisor(t)
	const capNetBindService = 10
	spec := testSpec(t, "bind-low", "sleep", "60")
	spec.Dir = "/"
	spec.Credential = &syscall.Credential{Uid: 65534, Gid: 65534}
	spec.AmbientCaps = []uintptr{capNetBindService}
	p, err := sv.Start(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(t.Context())
	status, err := os.ReadFile(procPath(p.Pid(), "status"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"\nCapEff:\t0000000000000400\n", "\nCapAmb:\t0000000000000400\n", "\nUid:\t65534\t65534\t65534\t65534\n"} {
		if !strings.Contains(string(status), line) {
			t.Errorf("child status lacks %q:\n%s", strings.TrimSpace(line), status)
		}
	}
	bad := testSpec(t, "caps-as-root", "sleep", "1")
	bad.AmbientCaps = []uintptr{capNetBindService}
	if _, err := sv.Start(bad); err == nil || !strings.Contains(err.Error(), "AmbientCaps") {
		t.Errorf("AmbientCaps without Credential: %v, want a validation error naming it", err)
	}
}
