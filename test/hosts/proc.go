package hosts

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Command returns a command that runs name inside h's namespace (through
// `ip netns exec`), as the leader of its own process group. Cancelling ctx
// SIGKILLs the whole group.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// Proc is a long-running process started by Start.
type Proc struct {
	Cmd *exec.Cmd
	// Log is the file that holds its stdout and stderr.
	Log string

	done     chan struct{}
	err      error // set before done is closed
	stopOnce sync.Once
}

// Start runs name inside h's namespace until the test ends, with stdout and
// stderr in a log file under t.TempDir() whose tail is printed when the test
// has failed. The process group is stopped by t.Cleanup (SIGTERM, then
// SIGKILL after 10 s), and by the topology's cleanup at the latest.
func (h *Host) Start(t testing.TB, name string, args ...string) *Proc {
	t.Helper()
	return h.StartCmd(t, h.Command(context.Background(), name, args...))
}

// StartCmd is Start for a command made by h.Command, for callers that set
// its Env or Dir first. Stdout and Stderr must be unset.
func (h *Host) StartCmd(t testing.TB, cmd *exec.Cmd) *Proc {
	t.Helper()
	base := filepath.Base(cmd.Args[min(4, len(cmd.Args)-1)])
	f, err := os.CreateTemp(t.TempDir(), h.Name+"-"+base+"-*.log")
	if err != nil {
		t.Fatalf("hosts: %v", err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("hosts: start %s in %s: %v", strings.Join(cmd.Args[4:], " "), h.Name, err)
	}
	p := &Proc{Cmd: cmd, Log: f.Name(), done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	h.net.mu.Lock()
	h.net.procs = append(h.net.procs, p)
	h.net.mu.Unlock()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("hosts: %s on %s, last lines of %s:\n%s", base, h.Name, p.Log, tail(p.Log, 40))
		}
	})
	return p
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is the process's exit error, valid once Done is closed.
func (p *Proc) Err() error { return p.err }

// Stop stops the process group: SIGTERM, then SIGKILL after 10 s. It is
// safe to call more than once.
func (p *Proc) Stop() { p.stop() }

// Kill SIGKILLs the process group at once (a crash) and waits for the leader.
func (p *Proc) Kill() {
	_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

func (p *Proc) stop() {
	p.stopOnce.Do(func() {
		pgid := p.Cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
		}
		// The leader may be gone while others in its group live on.
		if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return
		}
		<-p.done
	})
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
