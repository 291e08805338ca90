// Package e2e runs the built scalepress binary against the real stack:
// php-fpm, MariaDB, redis and WordPress from Debian's packages, through the
// interfaces a user touches (HTTP via the edge, the CLI, status --json).
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scalepress/scalepress/internal/api"
)

var bin string

func TestMain(m *testing.M) { os.Exit(run(m)) }

// run builds the binary unless SCALEPRESS_BIN names one, runs the tests and
// removes what it built: a defer in TestMain itself never runs, as os.Exit
// skips it. Under -short (the unit tier: go test -short ./...) it runs
// nothing, since every test here starts the real stack.
func run(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		fmt.Println("e2e: not run under -short (see README: make e2e)")
		return 0
	}
	bin = os.Getenv("SCALEPRESS_BIN")
	if bin == "" {
		dir, err := os.MkdirTemp("", "scalepress-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		bin = filepath.Join(dir, "scalepress")
		_, file, _, _ := runtime.Caller(0)
		out, err := exec.Command("go", "build", "-o", bin, filepath.Join(filepath.Dir(file), "..", "..", "cmd", "scalepress")).CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
			return 1
		}
	}
	return m.Run()
}

// stack is one environment on its own loopback block.
type stack struct {
	dir    string
	config string
	site   string // http://edge
	api    string
}

// stackConfig returns a config for block 127.B.x.y.
func stackConfig(b int, nodes int) string {
	return fmt.Sprintf(`site:
  title: e2e site
api:
  addr: 127.%[1]d.0.1:9090
edges:
  - id: edge-1
    region: default
    addr: 127.%[1]d.0.1:8080
nodes:
  count: %[2]d
  ip_base: 127.%[1]d.1.0
  php_children: 2
autoscaling:
  enabled: false
db:
  members: 1
  ip_base: 127.%[1]d.2.0
  router: 127.%[1]d.0.1:3306
  buffer_pool: 64M
redis:
  addr: 127.%[1]d.3.1:6379
wordpress:
  cron_interval: 10s
  block_external_http: true
files:
  addr: 127.%[1]d.4.1:8080
`, b, nodes)
}

func newStack(t *testing.T, block, nodes int) *stack {
	t.Helper()
	dir, err := os.MkdirTemp("", "scalepress-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755) // service users (mysql, www-data) must reach it
	s := &stack{
		dir:    dir,
		config: filepath.Join(dir, "scalepress.yaml"),
		site:   fmt.Sprintf("http://127.%d.0.1:8080", block),
		api:    fmt.Sprintf("http://127.%d.0.1:9090", block),
	}
	if err := os.WriteFile(s.config, []byte(stackConfig(block, nodes)), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.cli(t, "down") // whatever happened, leave nothing running
		if t.Failed() {
			s.dumpLogs(t)
		}
		os.RemoveAll(dir)
	})
	return s
}

func (s *stack) dumpLogs(t *testing.T) {
	logs, _ := filepath.Glob(filepath.Join(s.dir, "logs", "*.log"))
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		if len(b) > 3000 {
			b = b[len(b)-3000:]
		}
		t.Logf("---- %s (tail)\n%s", filepath.Base(l), b)
	}
}

type result struct {
	code           int
	stdout, stderr string
}

func (s *stack) cli(t *testing.T, args ...string) result {
	t.Helper()
	return runBin(t, append(args, "--dir", s.dir)...)
}

func runBin(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %v: %v", bin, args, err)
	}
	return r
}

func (s *stack) up(t *testing.T) time.Duration {
	t.Helper()
	t0 := time.Now()
	r := s.cli(t, "up", "--detach")
	if r.code != 0 {
		t.Fatalf("up --detach: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	return time.Since(t0)
}

func (s *stack) status(t *testing.T) api.Status {
	t.Helper()
	r := s.cli(t, "status", "--json")
	if r.code != 0 {
		t.Fatalf("status --json: exit %d: %s", r.code, r.stderr)
	}
	var st api.Status
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status --json is not JSON: %v\n%s", err, r.stdout)
	}
	return st
}

// allPIDs are every process of the environment that status reports.
func allPIDs(st api.Status) []int {
	out := []int{st.Controller.PID}
	for _, e := range st.Edges {
		out = append(out, e.PID)
	}
	for _, n := range st.Nodes {
		out = append(out, n.PIDs...)
	}
	if st.DB != nil {
		out = append(out, st.DB.RouterPID)
		for _, m := range st.DB.Members {
			out = append(out, m.PID)
		}
	}
	if st.Redis != nil {
		out = append(out, st.Redis.PID)
	}
	if st.Files != nil {
		out = append(out, st.Files.PID)
	}
	var live []int
	for _, p := range out {
		if p > 0 {
			live = append(live, p)
		}
	}
	return live
}

// alive reports whether pid is a live (non-zombie) process.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && len(s) > i+2 && s[i+2] != 'Z'
}

// processesUsing lists live processes whose command line mentions dir.
func processesUsing(dir string) []string {
	var out []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !bytes.Contains(b, []byte(dir)) || !alive(pid) {
			continue
		}
		out = append(out, fmt.Sprintf("%d %s", pid, bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
	}
	return out
}

func waitGone(t *testing.T, pids []int, dir string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var left []int
		for _, p := range pids {
			if alive(p) {
				left = append(left, p)
			}
		}
		procs := processesUsing(dir)
		if len(left) == 0 && len(procs) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes left after %s: pids %v; by command line: %v", timeout, left, procs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func kill(pid int, sig syscall.Signal) error { return syscall.Kill(pid, sig) }

// procUID is the real uid pid runs as.
func procUID(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatalf("pid %d: %v", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "Uid:" {
			uid, _ := strconv.Atoi(f[1])
			return uid
		}
	}
	t.Fatalf("pid %d: no Uid line", pid)
	return -1
}

// userName names uid, or gives it as a number.
func userName(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return u.Username
	}
	return strconv.Itoa(uid)
}

// cmdline is pid's command line, arguments joined by spaces.
func cmdline(pid int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}
