package supervise

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func newTestSupervisor(t *testing.T) *Supervisor {
	t.Helper()
	sv := New(slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(sv.Close)
	return sv
}

// testSpec returns a Spec with a log file in a fresh temp dir and fast
// restarts.
func testSpec(t *testing.T, name, path string, args ...string) Spec {
	t.Helper()
	return Spec{
		Name:        name,
		Path:        path,
		Args:        args,
		LogFile:     filepath.Join(t.TempDir(), "log", name+".log"),
		StopTimeout: 5 * time.Second,
		Restart: RestartPolicy{
			InitialBackoff: time.Millisecond,
			MaxBackoff:     5 * time.Millisecond,
		},
	}
}

// eventually polls cond until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitDone(t *testing.T, p *Process, timeout time.Duration) {
	t.Helper()
	select {
	case <-p.Done():
	case <-time.After(timeout):
		t.Fatalf("%s not done after %s (state %s)", p.Name(), timeout, p.State())
	}
}

func waitLog(t *testing.T, path, substr string) string {
	t.Helper()
	var content string
	eventually(t, 5*time.Second, "log to contain "+substr, func() bool {
		b, _ := os.ReadFile(path)
		content = string(b)
		return strings.Contains(content, substr)
	})
	return content
}

// killOnCleanup makes sure a test never leaks a process, or its group if
// it leads one.
func killOnCleanup(t *testing.T, pid int) {
	t.Cleanup(func() {
		if Alive(pid) {
			_ = killGroup(pid, syscall.SIGKILL)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
}

type recorder struct {
	mu     sync.Mutex
	events []Event
}

func record(sv *Supervisor) *recorder {
	r := &recorder{}
	sv.OnEvent(func(e Event) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.events = append(r.events, e)
	})
	return r
}

// kinds returns the event kinds for name, in order.
func (r *recorder) kinds(name string) []EventKind {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ks []EventKind
	for _, e := range r.events {
		if e.Name == name {
			ks = append(ks, e.Kind)
		}
	}
	return ks
}

// names returns the names of events of kind, in order.
func (r *recorder) names(kind EventKind) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ns []string
	for _, e := range r.events {
		if e.Kind == kind {
			ns = append(ns, e.Name)
		}
	}
	return ns
}

func repeatKinds(n int, ks ...EventKind) []EventKind {
	var out []EventKind
	for range n {
		out = append(out, ks...)
	}
	return out
}
