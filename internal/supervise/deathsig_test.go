package supervise

import (
	"bufio"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	helperEnv    = "SUPERVISE_TEST_HELPER"     // "parent": act as a supervising parent
	helperLogEnv = "SUPERVISE_TEST_HELPER_LOG" // the child's LogFile
	helperUIDEnv = "SUPERVISE_TEST_HELPER_UID" // optional: run the child as this uid/gid
	helperPrefix = "child-pid="
)

// TestMain lets TestNoOrphans re-execute the test binary as a supervising
// parent (helperEnv=parent): it starts `sleep 60`, prints its pid and waits
// to be killed. Otherwise the tests run as usual.
func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "parent" {
		os.Exit(helperParent())
	}
	os.Exit(m.Run())
}

func helperParent() int {
	sv := New(slog.New(slog.NewTextHandler(os.Stderr, nil)))
	spec := Spec{Name: "orphan", Path: "sleep", Args: []string{"60"}, LogFile: os.Getenv(helperLogEnv), Dir: "/"}
	if uid := os.Getenv(helperUIDEnv); uid != "" {
		id, err := strconv.ParseUint(uid, 10, 32)
		if err != nil {
			fmt.Println("error:", err)
			return 1
		}
		spec.Credential = &syscall.Credential{Uid: uint32(id), Gid: uint32(id)}
	}
	p, err := sv.Start(spec)
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	fmt.Printf("%s%d\n", helperPrefix, p.Pid())
	select {
	case <-p.Done():
		fmt.Println("error: child exited while the parent was alive")
		return 1
	case <-time.After(30 * time.Second): // the real test kills us long before
	}
	return 0
}

// needRoot fails a test that needs root when it runs as another user: the
// tests run as root, as CI and `make test` do (install-deps needs root), and
// a skip would hide that the credential and capability tests never ran.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("needs root: run the tests as root, as CI and make test do")
	}
}

// TestNoOrphans kills a supervising process with SIGKILL and checks that
// its child goes away anyway, through Pdeathsig.
func TestNoOrphans(t *testing.T) {
	tests := []struct {
		name string
		uid  string // Credential for the child; Pdeathsig must survive it
	}{
		{"same user", ""},
		{"credential nobody", "65534"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.uid != "" {
				needRoot(t)
			}
			parent := exec.Command(os.Args[0])
			parent.Env = append(os.Environ(),
				helperEnv+"=parent",
				helperLogEnv+"="+filepath.Join(t.TempDir(), "orphan.log"),
				helperUIDEnv+"="+tt.uid)
			parent.Stderr = t.Output()
			out, err := parent.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := parent.Start(); err != nil {
				t.Fatal(err)
			}
			// The reader goroutine ends once it has the pid, or when the
			// parent dies and its stdout closes; pids is buffered so it
			// never blocks.
			pids := make(chan string, 1)
			readerDone := make(chan struct{})
			t.Cleanup(func() {
				_ = parent.Process.Kill()
				<-readerDone // before Wait, which closes the pipe
				_ = parent.Wait()
			})
			go func() {
				defer close(readerDone)
				defer close(pids)
				sc := bufio.NewScanner(out)
				for sc.Scan() {
					if pid, ok := strings.CutPrefix(sc.Text(), helperPrefix); ok {
						pids <- pid
						return
					}
				}
			}()
			var child int
			select {
			case s, ok := <-pids:
				if !ok {
					t.Fatal("helper exited without reporting a child pid")
				}
				if child, err = strconv.Atoi(s); err != nil {
					t.Fatal(err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("helper did not report a child pid")
			}
			killOnCleanup(t, child)
			if !Alive(child) {
				t.Fatalf("child %d not alive while its parent runs", child)
			}
			if tt.uid != "" {
				status, _ := os.ReadFile(procPath(child, "status"))
				if !strings.Contains(string(status), "\nUid:\t"+tt.uid+"\t") {
					t.Fatalf("child does not run as uid %s:\n%s", tt.uid, status)
				}
			}

			if err := parent.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = parent.Wait()
			eventually(t, 3*time.Second, fmt.Sprintf("orphan %d to die", child), func() bool { return !Alive(child) })
		})
	}
}

// TestForkThreadOutlivesCaller shows why forks go through the spawner. A
// goroutine that locks its OS thread and returns without unlocking takes
// the thread down with it, and the kernel then sends Pdeathsig to every
// child that thread forked. A control child forked directly on such a
// thread dies; a child started through Supervisor.Start from the same
// thread must survive.
func TestForkThreadOutlivesCaller(t *testing.T) {
	sv := newTestSupervisor(t)
	control := exec.Command("sleep", "60")
	control.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}

	type result struct {
		p   *Process
		err error
	}
	res := make(chan result, 1)
	// start runs on a thread that dies with its goroutine.
	start := func() {
		runtime.LockOSThread() // never unlocked
		if err := control.Start(); err != nil {
			res <- result{err: err}
			return
		}
		p, err := sv.Start(testSpec(t, "survivor", "sleep", "60"))
		res <- result{p, err}
	}
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		runtime.LockOSThread()
		if syscall.Gettid() != syscall.Getpid() {
			start()
			return
		}
		// This is the main thread, which the runtime never terminates (it
		// is parked instead). While we hold it, a new goroutine cannot run
		// on it.
		done := make(chan struct{})
		go func() {
			defer close(done)
			start()
		}()
		<-done
		runtime.UnlockOSThread()
	}()
	r := <-res
	<-finished
	if control.Process != nil {
		t.Cleanup(func() {
			_ = control.Process.Kill()
			_ = control.Wait()
		})
	}
	if r.err != nil {
		t.Fatal(r.err)
	}

	eventually(t, 3*time.Second, "control child to get its Pdeathsig", func() bool { return !Alive(control.Process.Pid) })
	if !Alive(r.p.Pid()) || r.p.State() != Running || r.p.Restarts() != 0 {
		t.Fatalf("supervised child died with the calling thread: state %s restarts %d", r.p.State(), r.p.Restarts())
	}
}
