package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/test/tools"
)

// TestNomadScheduler runs the node group on a Nomad v1.6.3 dev agent on
// loopback (scheduler.kind nomad) while every other role stays local: the
// site answers through nodes Nomad placed, `scalepress scale` changes the
// job's count, and a node's allocation killed with SIGKILL under uncached
// load loses no request (docs/operations.md: the bound is 0 failed GETs,
// as for the local launcher) and is replaced once, in its slot.
func TestNomadScheduler(t *testing.T) {
	nomadAddr := startNomadDev(t, "127.72.0.1")
	s := newStack(t, 72, 2)
	cfg := scaleStackConfig(72) + fmt.Sprintf("scheduler:\n  kind: nomad\n  address: %s\n  job: sp-e2e-nodes\n  cpu: 100\n  memory_mb: 256\n", nomadAddr)
	if err := os.WriteFile(s.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	took := s.up(t)
	t.Logf("up with the nodes on Nomad: %s", took.Round(time.Millisecond))

	st := s.status(t)
	inService := func(st api.Status) int {
		n := 0
		for _, nd := range st.Nodes {
			if nd.State == api.NodeInService {
				n++
			}
		}
		return n
	}
	if inService(st) != 2 {
		t.Fatalf("nodes after up: %+v", st.Nodes)
	}
	for _, nd := range st.Nodes {
		if nd.Host == "" {
			t.Errorf("%s: no host in status --json", nd.ID)
		}
	}
	if c := nomadJobCount(t, nomadAddr, "sp-e2e-nodes"); c != 2 {
		t.Fatalf("job count %d, want 2", c)
	}
	if resp, err := http.Get(s.site + "/?s=nomad-first"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("site through Nomad's nodes: %v %v", resp, err)
	}

	t.Run("scale changes the Nomad job's count", func(t *testing.T) {
		t0 := time.Now()
		if r := s.cli(t, "scale", "--min", "3"); r.code != 0 {
			t.Fatalf("scale --min 3: %s", r.stderr)
		}
		_, d := s.waitNodes(t, "3 in service", 90*time.Second, func(st api.Status) bool { return inService(st) == 3 })
		t.Logf("scale --min 3 to the 3rd node in service through Nomad: %s", (time.Since(t0)).Round(time.Millisecond))
		_ = d
		if c := nomadJobCount(t, nomadAddr, "sp-e2e-nodes"); c != 3 {
			t.Errorf("job count %d after scale --min 3, want 3", c)
		}
		if r := s.cli(t, "scale", "--min", "2"); r.code != 0 {
			t.Fatalf("scale --min 2: %s", r.stderr)
		}
		s.waitNodes(t, "back to 2 (node-3 drained)", 90*time.Second, func(st api.Status) bool {
			for _, nd := range st.Nodes {
				if nd.ID == "node-3" && nd.State != api.NodeTerminated {
					return false
				}
			}
			return inService(st) == 2
		})
		deadline := time.Now().Add(30 * time.Second)
		for nomadJobCount(t, nomadAddr, "sp-e2e-nodes") != 2 {
			if time.Now().After(deadline) {
				t.Fatalf("job count not back to 2")
			}
			time.Sleep(200 * time.Millisecond)
		}
	})

	t.Run("a node's allocation killed under uncached load: no failed GET, replaced once in its slot", func(t *testing.T) {
		load := startLoad(searches(s.site, "nomad-kill"), 8)
		time.Sleep(2 * time.Second)
		// node-2 serves the load when it is killed.
		var victim api.NodeStatus
		for _, nd := range s.status(t).Nodes {
			if nd.ID == "node-2" {
				victim = nd
			}
		}
		served := func() int64 {
			var r api.NodeReport
			if err := nomadGet("http://"+victim.Addr+api.NodePathStatus, &r); err != nil {
				t.Fatalf("node-2's status: %v", err)
			}
			return r.Served
		}
		before := served()
		time.Sleep(time.Second)
		if after := served(); after <= before {
			t.Fatalf("node-2 served %d then %d: not under the load", before, after)
		}
		pid := nodeHostPID(t, 1) // node-2
		t0 := time.Now()
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		s.waitNodes(t, "node-2 failed", 30*time.Second, func(st api.Status) bool {
			for _, nd := range st.Nodes {
				if nd.ID == "node-2" && nd.State != api.NodeInService {
					return true
				}
			}
			return false
		})
		s.waitNodes(t, "node-2 back in service", 90*time.Second, func(st api.Status) bool { return inService(st) == 2 })
		t.Logf("kill -9 of node-2's task to its replacement in service: %s", time.Since(t0).Round(time.Millisecond))
		time.Sleep(3 * time.Second)
		ok, failed, failures := load.Stop()
		t.Logf("load: %d ok, %d failed %v", ok, failed, failures)
		if failed != 0 {
			t.Errorf("%d failed GETs of %d while a node's allocation was killed, want 0: %v", failed, ok+failed, failures)
		}
		if load.cached.Load() != 0 {
			t.Errorf("%d answers came from the cache: the load must run on the nodes", load.cached.Load())
		}
		ev := s.cli(t, "events").stdout
		if n := strings.Count(ev, "node-2: nomad rescheduled"); n != 1 {
			t.Errorf("node-2 rescheduled %d times, want once\n%s", n, tail(ev, 30))
		}
		if c := nomadJobCount(t, nomadAddr, "sp-e2e-nodes"); c != 2 {
			t.Errorf("job count %d after the replacement, want 2", c)
		}
	})
}

// scaleStackConfig is the stack of the scheduler tests: autoscaling between
// 2 and 3 nodes, quick drains, no per-client cap for the load generator.
func scaleStackConfig(block int) string {
	cfg := strings.Replace(stackConfig(block, 2), "autoscaling:\n  enabled: false\n", `autoscaling:
  enabled: true
  min: 2
  max: 3
  target: 0.6
  scale_in_window: 5s
`, 1)
	cfg = strings.Replace(cfg, "  php_children: 2\n", "  php_children: 2\n  slow_start: 2s\n  deregistration_delay: 5s\n", 1)
	return cfg + "http:\n  client_concurrency: 0\n"
}

// TestLocalScaleStep is TestNomadScheduler's scale step with the local
// launcher (the default), for the figures side by side: `scale --min 3` to
// the third node in service.
func TestLocalScaleStep(t *testing.T) {
	s := newStack(t, 73, 2)
	if err := os.WriteFile(s.config, []byte(scaleStackConfig(73)), 0o644); err != nil {
		t.Fatal(err)
	}
	took := s.up(t)
	t.Logf("up with local nodes: %s", took.Round(time.Millisecond))
	t0 := time.Now()
	if r := s.cli(t, "scale", "--min", "3"); r.code != 0 {
		t.Fatalf("scale --min 3: %s", r.stderr)
	}
	st, _ := s.waitNodes(t, "3 in service", 90*time.Second, func(st api.Status) bool {
		n := 0
		for _, nd := range st.Nodes {
			if nd.State == api.NodeInService {
				n++
			}
		}
		return n == 3
	})
	t.Logf("scale --min 3 to the 3rd node in service, local launcher: %s", time.Since(t0).Round(time.Millisecond))
	for _, nd := range st.Nodes {
		if nd.Host != "" {
			t.Errorf("%s: host %q for a local node, want none", nd.ID, nd.Host)
		}
	}
}

// startNomadDev runs `nomad agent -dev` bound to ip with raw_exec, dynamic
// ports of this test's own, and stops it when the test ends.
func startNomadDev(t *testing.T, ip string) string {
	t.Helper()
	nomadBin := tools.Path(t, "nomad")
	dir := t.TempDir()
	// The client's nodes keep their directories here (node meta
	// scalepress_dir), which php-fpm's workers (www-data) must reach.
	hostDir := filepath.Join(dir, "host")
	for _, d := range []string{filepath.Dir(dir), dir} {
		os.Chmod(d, 0o755)
	}
	os.Mkdir(hostDir, 0o755)
	conf := fmt.Sprintf(`
data_dir = %q
bind_addr = %q
disable_update_check = true
consul { address = "127.0.0.1:1" }
plugin "raw_exec" { config {
  enabled = true
  no_cgroups = true
} }
client {
  meta { scalepress_dir = %q }
  cgroup_parent = %q
  min_dynamic_port = 21900
  max_dynamic_port = 21929
  options = { "fingerprint.denylist" = "env_aws,env_gce,env_azure,env_digitalocean", "driver.denylist" = "docker,qemu,java,exec" }
}
`, filepath.Join(dir, "data"), ip, hostDir, nomadCgroupParent())
	os.WriteFile(filepath.Join(dir, "agent.hcl"), []byte(conf), 0o644)
	logf, _ := os.Create(filepath.Join(dir, "agent.log"))
	cmd := exec.Command(nomadBin, "agent", "-dev", "-bind", ip, "-network-interface", "lo", "-config", filepath.Join(dir, "agent.hcl"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		defer removeNomadCgroups(t)
		cmd.Process.Signal(syscall.SIGINT)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "agent.log"))
			t.Logf("nomad agent log (tail):\n%s", tail(string(b), 40))
		}
	})
	addr := "http://" + ip + ":4646"
	deadline := time.Now().Add(60 * time.Second)
	for {
		var nodes []struct {
			Status  string
			Drivers map[string]struct{ Healthy bool }
		}
		if err := nomadGet(addr+"/v1/nodes?resources=false", &nodes); err == nil && len(nodes) == 1 && nodes[0].Status == "ready" && nodes[0].Drivers["raw_exec"].Healthy {
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("nomad dev agent at %s not ready", addr)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// nomadCgroupParent is the cgroup parent of this test process's agent
// (other agents on the machine have their own); removeNomadCgroups removes
// it from every cgroup v1 hierarchy, deepest first.
func nomadCgroupParent() string { return fmt.Sprintf("nomad-spe2e-%d", os.Getpid()) }

func removeNomadCgroups(t *testing.T) {
	tops, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", nomadCgroupParent()))
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

func nomadGet(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func nomadJobCount(t *testing.T, addr, job string) int {
	t.Helper()
	var j struct{ TaskGroups []struct{ Count int } }
	if err := nomadGet(addr+"/v1/job/"+job, &j); err != nil || len(j.TaskGroups) != 1 {
		t.Fatalf("job %s: %v %+v", job, err, j)
	}
	return j.TaskGroups[0].Count
}

// nodeHostPID is the pid of the node-host task running in slot.
func nodeHostPID(t *testing.T, slot int) int {
	t.Helper()
	want := fmt.Sprintf("\x00--slot\x00%d\x00", slot)
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, _ := os.ReadFile(p)
		if strings.Contains(string(b), "\x00node-host\x00") && strings.Contains(string(b), want) {
			var pid int
			fmt.Sscanf(filepath.Base(filepath.Dir(p)), "%d", &pid)
			return pid
		}
	}
	t.Fatalf("no node-host process in slot %d", slot)
	return 0
}
