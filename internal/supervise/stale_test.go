package supervise

import (
	"bufio"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// startStale starts a process the way a crashed supervisor would have left
// it (own process group) and waits until it printed "ready" and exec'd sleep. The test
// process is its parent, so it becomes a zombie when killed; Alive treats
// that as gone, and cleanup reaps it.
func startStale(t *testing.T, script string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = killGroup(cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	if line, err := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
		t.Fatalf("read %q, %v; want ready", line, err)
	}
	// The script ends in "exec sleep"; wait for the exec so the recorded exe
	// is sleep's, not the shell's.
	eventually(t, 5*time.Second, "exec of sleep", func() bool {
		exe, _ := os.Readlink(procPath(cmd.Process.Pid, "exe"))
		return filepath.Base(exe) == "sleep"
	})
	return cmd
}

func writeStale(t *testing.T, dir, name string, pid int, exe string) string {
	t.Helper()
	if err := writePIDFile(dir, name, pid, exe); err != nil {
		t.Fatal(err)
	}
	return pidFilePath(dir, name)
}

func TestCleanupStale(t *testing.T) {
	tests := []struct {
		name   string
		script string
		grace  time.Duration
	}{
		{"obeys SIGTERM", "echo ready; exec sleep 60", staleGrace},
		{"ignores SIGTERM", ignoreTERM, 200 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cmd := startStale(t, tt.script)
			pid := cmd.Process.Pid
			path := writeStale(t, dir, "db-1", pid, exePath(pid, ""))

			start := time.Now()
			names, err := cleanupStale(dir, nil, tt.grace)
			if err != nil {
				t.Fatal(err)
			}
			if took := time.Since(start); took > tt.grace+time.Second {
				t.Errorf("cleanup took %s", took)
			}
			if !slices.Equal(names, []string{"db-1"}) {
				t.Errorf("names = %v, want [db-1]", names)
			}
			if Alive(pid) {
				t.Errorf("pid %d still alive", pid)
			}
			if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("pid file not removed: %v", err)
			}
		})
	}
}

func TestCleanupStalePidReuseGuard(t *testing.T) {
	dir := t.TempDir()
	cmd := startStale(t, "echo ready; exec sleep 60")
	pid := cmd.Process.Pid
	// The pid now belongs to "sleep", but the file claims mariadbd ran there.
	path := writeStale(t, dir, "db-1", pid, "/usr/sbin/mariadbd")

	names, err := CleanupStale(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 0 {
		t.Errorf("names = %v, want none", names)
	}
	if !Alive(pid) {
		t.Fatalf("pid %d was killed despite the exe mismatch", pid)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("pid file not removed: %v", err)
	}
}

func TestCleanupStaleLeftovers(t *testing.T) {
	dir := t.TempDir()
	dead := exec.Command("/bin/true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"gone.pid":     strconv.Itoa(dead.Process.Pid) + "\n/usr/bin/true\n",
		"garbage.pid":  "not a pid file",
		"empty.pid":    "",
		"x.pid.tmp":    "123\n/bin/sh\n",
		".y.pid.1.tmp": "123\n/bin/sh\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	keep := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(keep, nil, 0o644); err != nil {
		t.Fatal(err)
	}

	names, err := CleanupStale(dir, nil)
	if err != nil || len(names) != 0 {
		t.Fatalf("CleanupStale = %v, %v; want nothing cleaned", names, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "notes.txt" {
		t.Errorf("left in pid dir: %v, want only notes.txt", entries)
	}

	if names, err := CleanupStale(filepath.Join(dir, "missing"), nil); err != nil || names != nil {
		t.Errorf("missing dir: %v, %v; want nil, nil", names, err)
	}
}

func TestReadPIDFile(t *testing.T) {
	tests := []struct {
		name    string
		content string
		pid     int
		exe     string
		ok      bool
	}{
		{"valid", "42\n/usr/sbin/mariadbd\n", 42, "/usr/sbin/mariadbd", true},
		{"no trailing newline", "42\n/bin/x", 42, "/bin/x", true},
		{"no exe", "42\n", 0, "", false},
		{"pid only", "42", 0, "", false},
		{"negative", "-1\n/bin/x\n", 0, "", false},
		{"zero", "0\n/bin/x\n", 0, "", false},
		{"extra line", "42\n/bin/x\nmore\n", 0, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.pid")
			if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			pid, exe, err := readPIDFile(path)
			if (err == nil) != tt.ok || pid != tt.pid || exe != tt.exe {
				t.Errorf("readPIDFile = %d, %q, %v; want %d, %q, ok=%v", pid, exe, err, tt.pid, tt.exe, tt.ok)
			}
		})
	}
}

func TestAlive(t *testing.T) {
	zombie := exec.Command("/bin/true")
	if err := zombie.Start(); err != nil {
		t.Fatal(err)
	}
	zpid := zombie.Process.Pid
	eventually(t, 5*time.Second, "zombie", func() bool { s, _ := procState(zpid); return s == 'Z' })
	defer zombie.Wait()

	tests := []struct {
		name string
		pid  int
		want bool
	}{
		{"self", os.Getpid(), true},
		{"init", 1, true},
		{"zero", 0, false},
		{"negative", -1, false},
		{"zombie", zpid, false},
		{"beyond pid_max", 1 << 30, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Alive(tt.pid); got != tt.want {
				t.Errorf("Alive(%d) = %v, want %v", tt.pid, got, tt.want)
			}
		})
	}
}
