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
	"io"
	"net/http"
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
			if keep := os.Getenv("SCALEPRESS_E2E_KEEP_LOGS"); keep != "" {
				dst := filepath.Join(keep, strings.ReplaceAll(t.Name(), "/", "_"))
				os.MkdirAll(keep, 0o755)
				if out, err := exec.Command("cp", "-r", filepath.Join(dir, "logs"), dst).CombinedOutput(); err != nil {
					t.Logf("keep logs: %v: %s", err, out)
				} else {
					t.Logf("logs kept in %s", dst)
				}
			}
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
	took := time.Since(t0)
	s.waitMembersSynced(t)
	return took
}

// waitMembersSynced waits until every database member is synced: up returns
// once one serves (the others join in the background), and the tests start
// from a whole cluster.
func (s *stack) waitMembersSynced(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		st := s.status(t)
		var waiting []string
		if st.DB != nil {
			for _, m := range st.DB.Members {
				if m.State != "synced" {
					waiting = append(waiting, m.ID+" "+m.State)
				}
			}
		}
		if len(waiting) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("database members not synced 5 min after up: %v", waiting)
		}
		time.Sleep(200 * time.Millisecond)
	}
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

// cmdline is a process's command line, arguments joined by spaces (a
// process that rewrote its title, like php-fpm, shows that title).
func cmdline(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
}

// exeName is the base name of a process's executable.
func exeName(pid int) string {
	exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	if err != nil {
		return ""
	}
	return filepath.Base(strings.TrimSuffix(exe, " (deleted)"))
}

// nodeProcs are a node's processes, told apart by executable and command
// line. status lists a node's pids as its agent and then the agent's
// descendants in /proc's order, which says nothing about which one is
// php-fpm's master: never pick one by its position.
type nodeProcs struct {
	agent, fpmMaster, filesync int
	fpmWorkers                 []int
}

// procsOf classifies the pids status gives for n and fails unless it finds
// one agent and one php-fpm master.
func procsOf(t *testing.T, n api.NodeStatus) nodeProcs {
	t.Helper()
	p, seen := findProcs(n)
	if p.agent == 0 || p.fpmMaster == 0 {
		t.Fatalf("node %s: no agent or php-fpm master among its processes:\n%s", n.ID, seen)
	}
	return p
}

// findProcs classifies the pids status gives for n; seen lists them for a
// failure message.
func findProcs(n api.NodeStatus) (p nodeProcs, seen string) {
	var lines []string
	for _, pid := range n.PIDs {
		exe, cmd := exeName(pid), cmdline(pid)
		lines = append(lines, fmt.Sprintf("%d %s %q", pid, exe, cmd))
		args := strings.Fields(cmd)
		switch {
		case strings.HasPrefix(exe, "php-fpm") && strings.HasPrefix(cmd, "php-fpm: master process"):
			p.fpmMaster = pid
		case strings.HasPrefix(exe, "php-fpm") && strings.HasPrefix(cmd, "php-fpm: pool"):
			p.fpmWorkers = append(p.fpmWorkers, pid)
		case exe == "scalepress" && len(args) > 1 && args[1] == "node":
			p.agent = pid
		case exe == "scalepress" && len(args) > 1 && args[1] == "filesync":
			p.filesync = pid
		}
	}
	return p, strings.Join(lines, "\n")
}

// metric reads one sample from a Prometheus text page: the value of the
// series name whose labels include every given `key="value"` pair.
func metric(t *testing.T, url, name string, labels ...string) float64 {
	t.Helper()
	v, err := tryMetric(url, name, labels...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func tryMetric(url, name string, labels ...string) (float64, error) {
	client := &http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return 0, fmt.Errorf("metrics %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("metrics %s: status %d: %v", url, resp.StatusCode, err)
	}
next:
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		series, value, ok := strings.Cut(line, "} ")
		if !ok {
			series, value, _ = strings.Cut(line, " ")
		}
		for _, l := range labels {
			if !strings.Contains(series, l) {
				continue next
			}
		}
		return strconv.ParseFloat(strings.TrimSpace(value), 64)
	}
	return 0, fmt.Errorf("metrics %s: no %s%v in\n%s", url, name, labels, body)
}

// served is the node agent's count of requests served (PHP and static),
// from its metrics.
func served(t *testing.T, n api.NodeStatus) int64 {
	t.Helper()
	return int64(metric(t, "http://"+n.Addr+"/_scalepress/metrics", "scalepress_node_requests_total"))
}

// waitServing waits until the node served at least want requests within the
// last window (its own requests counter, sampled every 100 ms), so that a
// failure inflicted right after hits a node that is on the request path.
// It returns how many it served in that window.
func waitServing(t *testing.T, n api.NodeStatus, want int64, window, timeout time.Duration) int64 {
	t.Helper()
	type sample struct {
		at time.Time
		v  int64
	}
	var samples []sample
	t0 := time.Now()
	for {
		now := time.Now()
		samples = append(samples, sample{now, served(t, n)})
		for len(samples) > 1 && now.Sub(samples[1].at) >= window {
			samples = samples[1:]
		}
		last := samples[len(samples)-1]
		if now.Sub(samples[0].at) >= window && last.v-samples[0].v >= want {
			return last.v - samples[0].v
		}
		if now.Sub(t0) > timeout {
			t.Fatalf("node %s served %d requests in the last %s, want at least %d: it is not on the request path", n.ID, last.v-samples[0].v, window, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitInFlight waits until the node has a request in flight (its own gauge,
// polled every few milliseconds) so that a failure inflicted right after
// catches a request on the victim. It returns the gauge it saw.
func waitInFlight(t *testing.T, n api.NodeStatus, timeout time.Duration) int64 {
	t.Helper()
	url := "http://" + n.Addr + "/_scalepress/metrics"
	for t0 := time.Now(); time.Since(t0) < timeout; time.Sleep(2 * time.Millisecond) {
		if v := metric(t, url, "scalepress_node_in_flight"); v >= 1 {
			return int64(v)
		}
	}
	t.Fatalf("node %s had no request in flight for %s", n.ID, timeout)
	return 0
}
