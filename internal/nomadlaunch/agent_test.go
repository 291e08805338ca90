package nomadlaunch

// The launcher and the node group against a real Nomad v1.6.3 dev agent on
// loopback (test/tools finds the binary). The node's task is this test
// binary acting as a node agent (fakeNode): it serves the agent's health
// and status on the allocation's port, says which slot it runs in, and
// exits like node-host: 0 on SIGTERM, 1 on FailSignal.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	nomad "github.com/hashicorp/nomad/api"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/nodegroup"
	"github.com/scalepress/scalepress/test/tools"
)

const fakeNodeEnv = "SCALEPRESS_TEST_FAKE_NODE_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(fakeNodeEnv); dir != "" {
		os.Exit(fakeNode(dir))
	}
	if os.Getenv(fakeRoleEnv) != "" {
		os.Exit(fakeRole())
	}
	os.Exit(m.Run())
}

// fakeNode is the task: it needs the spec the template rendered from the
// job's variable, records its pid, and reports the utilisation the test
// writes to DIR/util.
func fakeNode(dir string) int {
	path := filepath.Join(os.Getenv("NOMAD_SECRETS_DIR"), filepath.Base(SpecFile))
	spec, err := os.ReadFile(path)
	if err != nil || !strings.Contains(string(spec), "canary-secret") {
		fmt.Fprintf(os.Stderr, "spec: %v %q\n", err, spec)
		return 2
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		fmt.Fprintf(os.Stderr, "spec %s: mode %v, want 0600\n", path, fi.Mode())
		return 2
	}
	slot := os.Getenv("NOMAD_ALLOC_INDEX")
	os.WriteFile(filepath.Join(dir, "pid-"+slot+"-"+os.Getenv("NOMAD_ALLOC_ID")), []byte(strconv.Itoa(os.Getpid())), 0o644)
	ln, err := net.Listen("tcp", net.JoinHostPort(os.Getenv("NOMAD_IP_http"), os.Getenv("NOMAD_PORT_http")))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	mux := http.NewServeMux()
	mux.HandleFunc(api.NodePathHealth, func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc(api.NodePathStatus, func(w http.ResponseWriter, r *http.Request) {
		b, _ := os.ReadFile(filepath.Join(dir, "util"))
		u, _ := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
		json.NewEncoder(w).Encode(api.NodeReport{PHPOK: true, FilesReady: true, Utilization: u})
	})
	mux.HandleFunc("/slot", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, slot) })
	go http.Serve(ln, mux)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGUSR1)
	if s := <-sig; s == syscall.SIGUSR1 {
		return 1
	}
	return 0
}

// devAgent starts `nomad agent -dev` on 127.0.0.1 with ports of its own
// and raw_exec, and stops it (and what it ran) when the test ends.
func devAgent(t *testing.T) string {
	t.Helper()
	bin := tools.Path(t, "nomad")
	dir := t.TempDir()
	ports := freePorts(t, 3)
	conf := fmt.Sprintf(`
data_dir = %q
bind_addr = "127.0.0.1"
disable_update_check = true
ports { http = %d
  rpc = %d
  serf = %d }
consul { address = "127.0.0.1:1" }
plugin "raw_exec" { config {
  enabled = true
  no_cgroups = true
} }
client {
  cgroup_parent = %q
  min_dynamic_port = 21870
  max_dynamic_port = 21899
  options = { "fingerprint.denylist" = "env_aws,env_gce,env_azure,env_digitalocean", "driver.denylist" = "docker,qemu,java,exec" }
}
`, filepath.Join(dir, "data"), ports[0], ports[1], ports[2], cgroupParent())
	os.WriteFile(filepath.Join(dir, "agent.hcl"), []byte(conf), 0o644)
	log, _ := os.Create(filepath.Join(dir, "agent.log"))
	cmd := exec.Command(bin, "agent", "-dev", "-bind", "127.0.0.1", "-network-interface", "lo", "-config", filepath.Join(dir, "agent.hcl"))
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		defer removeCgroups(t)
		cmd.Process.Signal(syscall.SIGINT)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "agent.log"))
			t.Logf("agent log (tail):\n%s", tail(string(b), 3000))
		}
	})
	addr := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	nc, err := nomad.NewClient(&nomad.Config{Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		nodes, _, err := nc.Nodes().List(nil)
		if err == nil && len(nodes) == 1 && nodes[0].Status == "ready" && nodes[0].Drivers["raw_exec"] != nil && nodes[0].Drivers["raw_exec"].Healthy {
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("nomad dev agent not ready: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// cgroupParent is the cgroup parent of this test process's agent: Nomad
// makes it under every cgroup v1 hierarchy, and removeCgroups removes it.
// Other agents on the machine have their own.
func cgroupParent() string { return fmt.Sprintf("nomad-spnl-%d", os.Getpid()) }

// removeCgroups removes /sys/fs/cgroup/*/cgroupParent(), deepest first.
func removeCgroups(t *testing.T) {
	tops, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", cgroupParent()))
	for _, top := range tops {
		var dirs []string
		filepath.WalkDir(top, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			if err := os.Remove(dirs[i]); err != nil {
				t.Errorf("cgroup %s: %v", dirs[i], err)
			}
		}
	}
}

func freePorts(t *testing.T, n int) []int {
	var out []int
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return out
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// events keeps the launcher's and the group's events.
type events struct {
	mu  sync.Mutex
	all []string
}

func (e *events) add(ev api.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, ev.Kind+": "+ev.Message)
}

func (e *events) count(s string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, m := range e.all {
		if strings.Contains(m, s) {
			n++
		}
	}
	return n
}

func (e *events) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return strings.Join(e.all, "\n")
}

// TestAgentGroup runs the node group over a real Nomad dev agent: launch,
// scale out through the scale API into the next slot, scale in draining
// exactly the allocation Nomad stops, and a task killed with SIGKILL
// replaced once, in its own slot.
func TestAgentGroup(t *testing.T) {
	addr := devAgent(t)
	nodeDir := t.TempDir()
	os.WriteFile(filepath.Join(nodeDir, "util"), []byte("0.5"), 0o644)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ev := &events{}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := DefaultConfig()
	cfg.Address, cfg.Job, cfg.Command = addr, "sp-test-nodes", self
	cfg.Env = map[string]string{fakeNodeEnv: nodeDir}
	cfg.CPU, cfg.MemoryMB, cfg.KillTimeout, cfg.Poll = 100, 64, 5*time.Second, 2*time.Second
	l, err := New(cfg, logger, ev.add)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	runDone := make(chan error, 1)
	go func() { runDone <- l.Run(ctx) }()
	defer func() { cancel(); <-runDone }()
	if _, err := l.Submit(ctx, []byte(`{"forward_key":"canary-secret"}`)); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer ccancel()
		if err := l.Close(cctx); err != nil {
			t.Error(err)
		}
		// The spec's secrets leave with the job.
		if _, _, err := l.nc.Variables().Read(VariablePath(cfg.Job), nil); err == nil {
			t.Error("the job's variable (the spec) is still there after Close")
		}
		waitAllocs(t, l, "every allocation stopped", func(allocs []*nomad.AllocationListStub) bool {
			for _, a := range allocs {
				if live(a) {
					return false
				}
			}
			return true
		})
	}()

	gc := nodegroup.DefaultConfig()
	gc.Scaling = nodegroup.Scaling{Enabled: true, Count: 2, Min: 2, Max: 3, Target: 0.6, ScaleInWindow: 3 * time.Second, MaxStep: 1}
	gc.Children, gc.SiteHost, gc.DeregistrationDelay, gc.ReadyTimeout = 10, "www.example.test", 2*time.Second, 30*time.Second
	gc.FailedStopTimeout = 20 * time.Second
	g, err := nodegroup.New(gc, l, nodegroup.NewHTTPProber(), nodegroup.Hooks{
		Node:  func(i int) nodegroup.Node { return nodegroup.Node{ID: fmt.Sprintf("node-%d", i)} },
		Event: ev.add,
	}, logger)
	if err != nil {
		t.Fatal(err)
	}
	// The spec reaches the task (fakeNode checks it) but never the job,
	// which anyone who may read jobs can read.
	if j, _, err := l.nc.Jobs().Info(cfg.Job, nil); err != nil {
		t.Fatal(err)
	} else if b, _ := json.Marshal(j); strings.Contains(string(b), "canary-secret") {
		t.Errorf("the job holds the spec's secret: %s", b)
	}
	t0 := time.Now()
	if err := g.Start(ctx); err != nil {
		t.Fatalf("start: %v\n%s", err, ev)
	}
	t.Logf("2 nodes in service through Nomad after %s", time.Since(t0).Round(time.Millisecond))
	checkSlots(t, g, 2)
	if c := jobCount(t, l); c != 2 {
		t.Fatalf("job count %d, want 2", c)
	}
	// The one client runs both nodes and is the one host a rebalance sees.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		hosts, busy := l.Hosts()
		in := l.List()
		if len(hosts) == 1 && busy == "" && len(in) == 2 && hosts[0].Name == in[0].Host && !hosts[0].ReadySince.IsZero() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Hosts() = %+v, %q; nodes on %+v", hosts, busy, in)
		}
	}
	gctx, gcancel := context.WithCancel(ctx)
	groupDone := make(chan error, 1)
	go func() { groupDone <- g.Run(gctx) }()
	defer func() { gcancel(); <-groupDone }()

	// Scale out: load above the target.
	os.WriteFile(filepath.Join(nodeDir, "util"), []byte("0.95"), 0o644)
	t1 := time.Now()
	waitGroup(t, g, ev, "3 in service", 60*time.Second, func() bool { return len(g.InService()) == 3 })
	t.Logf("load step to the 3rd node in service through Nomad: %s", time.Since(t1).Round(time.Millisecond))
	checkSlots(t, g, 3)
	if c := jobCount(t, l); c != 3 {
		t.Fatalf("job count %d, want 3", c)
	}

	// Scale in: node-3 (slot 2) drains, and Nomad stops slot 2's allocation.
	os.WriteFile(filepath.Join(nodeDir, "util"), []byte("0.05"), 0o644)
	waitGroup(t, g, ev, "node-3 terminated", 60*time.Second, func() bool {
		return len(g.InService()) == 2 && nodeState(g, "node-3") == api.NodeTerminated
	})
	if c := jobCount(t, l); c != 2 {
		t.Fatalf("job count %d after scale-in, want 2", c)
	}
	checkSlots(t, g, 2)
	waitAllocs(t, l, "slot 2 stopped, slots 0 and 1 running", func(allocs []*nomad.AllocationListStub) bool {
		cur := newest(allocs)
		return running(cur[0]) && running(cur[1]) && cur[2] != nil && cur[2].DesiredStatus == nomad.AllocDesiredStatusStop && !live(cur[2])
	})

	// kill -9 node-2's task: its allocation fails; the group replaces it
	// once, in slot 1, and Nomad does not replace it too.
	os.WriteFile(filepath.Join(nodeDir, "util"), []byte("0.5"), 0o644)
	before := allocsIn(t, l, 1)
	pid := taskPID(t, nodeDir, 1, before[len(before)-1].ID)
	t2 := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGroup(t, g, ev, "node-2 failed", 30*time.Second, func() bool { return ev.count("node-2: in-service → failed") == 1 })
	waitGroup(t, g, ev, "node-2 back in service", 60*time.Second, func() bool { return len(g.InService()) == 2 })
	t.Logf("kill -9 of a node's task to its replacement in service: %s", time.Since(t2).Round(time.Millisecond))
	time.Sleep(3 * time.Second) // room for a second replacement, which must not come
	after := allocsIn(t, l, 1)
	if len(after) != len(before)+1 {
		t.Errorf("slot 1 had %d allocations, now %d: want exactly one replacement\n%s", len(before), len(after), ev)
	}
	if n := ev.count("node-2: nomad rescheduled"); n != 1 {
		t.Errorf("%d reschedules of node-2, want 1\n%s", n, ev)
	}
	if c := jobCount(t, l); c != 2 {
		t.Errorf("job count %d after the replacement, want 2", c)
	}
	checkSlots(t, g, 2)
	for _, v := range g.Nodes() {
		if v.State == api.NodeInService && v.Host == "" {
			t.Errorf("%s has no host", v.ID)
		}
	}
}

func nodeState(g *nodegroup.Group, id string) string {
	for _, v := range g.Nodes() {
		if v.ID == id {
			return v.State
		}
	}
	return ""
}

// checkSlots: n nodes in service, node-i answering from slot i-1.
func checkSlots(t *testing.T, g *nodegroup.Group, n int) {
	t.Helper()
	in := g.InService()
	if len(in) != n {
		t.Fatalf("%d in service, want %d", len(in), n)
	}
	for _, nd := range in {
		resp, err := http.Get("http://" + nd.Addr + "/slot")
		if err != nil {
			t.Fatalf("%s: %v", nd.ID, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want, _ := slotIndex(nd.ID); string(b) != strconv.Itoa(want) {
			t.Errorf("%s at %s runs in slot %s, want %d", nd.ID, nd.Addr, b, want)
		}
	}
}

func jobCount(t *testing.T, l *Launcher) int {
	t.Helper()
	j, _, err := l.nc.Jobs().Info(l.cfg.Job, nil)
	if err != nil {
		t.Fatal(err)
	}
	return *j.TaskGroups[0].Count
}

func allocsIn(t *testing.T, l *Launcher, slot int) []*nomad.AllocationListStub {
	t.Helper()
	allocs, _, err := l.nc.Jobs().Allocations(l.cfg.Job, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []*nomad.AllocationListStub
	for _, a := range allocs {
		if slotOf(a.Name) == slot {
			out = append(out, a)
		}
	}
	return out
}

func taskPID(t *testing.T, dir string, slot int, alloc string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("pid-%d-%s", slot, alloc)))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(string(b))
	return pid
}

func waitGroup(t *testing.T, g *nodegroup.Group, ev *events, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			var st []string
			for _, v := range g.Nodes() {
				st = append(st, v.ID+"="+v.State+" "+v.Reason)
			}
			t.Fatalf("%s: not within %s; nodes %v\nevents:\n%s", what, limit, st, ev)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func waitAllocs(t *testing.T, l *Launcher, what string, cond func([]*nomad.AllocationListStub) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		allocs, _, err := l.nc.Jobs().Allocations(l.cfg.Job, true, nil)
		if err == nil && cond(allocs) {
			return
		}
		if time.Now().After(deadline) {
			var st []string
			for _, a := range allocs {
				st = append(st, fmt.Sprintf("%s %s %s/%s", short(a.ID), a.Name, a.DesiredStatus, a.ClientStatus))
			}
			t.Fatalf("%s: not within 30s: %v %v", what, err, st)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
