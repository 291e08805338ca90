package e2e

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scalepress/scalepress/internal/api"
)

// inService counts nodes in service in a status document.
func inService(st api.Status) (n int, ids []string) {
	for _, node := range st.Nodes {
		if node.State == "in-service" {
			n++
			ids = append(ids, node.ID)
		}
	}
	return n, ids
}

// waitNodes polls status until cond holds, or fails after timeout.
func (s *stack) waitNodes(t *testing.T, what string, timeout time.Duration, cond func(api.Status) bool) (api.Status, time.Duration) {
	t.Helper()
	t0 := time.Now()
	for {
		st := s.status(t)
		if cond(st) {
			return st, time.Since(t0)
		}
		if time.Since(t0) > timeout {
			var states []string
			for _, n := range st.Nodes {
				states = append(states, n.ID+"="+n.State)
			}
			ev := s.cli(t, "events")
			t.Fatalf("%s: not within %s; nodes %v; autoscaling %+v\nevents:\n%s", what, timeout, states, st.Autoscaling, tail(ev.stdout, 30))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func TestAutoscaling(t *testing.T) {
	s := newStack(t, 47, 1)
	cfg := stackConfig(47, 1)
	cfg = strings.Replace(cfg, "autoscaling:\n  enabled: false\n", `autoscaling:
  enabled: true
  min: 1
  max: 4
  target: 0.3
  scale_in_window: 8s
`, 1)
	cfg = strings.Replace(cfg, "  php_children: 2\n", "  php_children: 2\n  slow_start: 2s\n  deregistration_delay: 10s\n", 1)
	// The load generator is one address standing for many clients: the
	// per-client cap (http.client_concurrency) would refuse its queue.
	cfg += "http:\n  client_concurrency: 0\n"
	if err := os.WriteFile(s.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	s.up(t)

	t.Run("a load step to half of what one node serves scales out within 20 s without failed requests", func(t *testing.T) {
		// The machine is shared, so what one node serves is measured, not
		// assumed: two clients back to back (PHP has two workers) with the
		// group held at one node. The step is half of that: utilisation
		// 0.5 against the target 0.3 asks for more nodes, and the node in
		// service carries the step while they start. They start on the same
		// two cores and take CPU from it while they boot: a step to 75 %
		// shed requests whenever other work kept the machine busy, and
		// beyond what the machine runs the edge sheds load (503,
		// Retry-After). docs/operations.md says both.
		if r := s.cli(t, "scale", "--min", "1", "--max", "1"); r.code != 0 {
			t.Fatalf("scale: %d %s", r.code, r.stderr)
		}
		capacity, bad := throughput(searches(s.site, "capacity"), 2, 3*time.Second)
		if bad > 0 {
			t.Fatalf("%d requests failed while measuring one node's throughput", bad)
		}
		if r := s.cli(t, "scale", "--max", "4"); r.code != 0 {
			t.Fatalf("scale: %d %s", r.code, r.stderr)
		}
		rate := min(int(0.5*capacity), 30)
		if rate < 4 {
			t.Fatalf("one node carries %.1f searches/s: the machine is too busy for a load step", capacity)
		}
		time.Sleep(1500 * time.Millisecond) // the node's utilisation, averaged over a second, settles
		first := s.status(t).Nodes[0]
		load := startLoad(searches(s.site, "step"), rate) // search: always PHP, never cached
		n := waitServing(t, first, int64(rate/2), time.Second, 10*time.Second)
		st, took := s.waitNodes(t, "a scale-out in service", 20*time.Second, func(st api.Status) bool {
			n, _ := inService(st)
			return n >= 2
		})
		ok, failed, failures := load.Stop()
		in, _ := inService(st)
		t.Logf("one node serves %.1f searches/s; step to %d/s: %s served %d in its first second; %d nodes in service %s after the step; requests ok %d failed %d %v; autoscaling %+v",
			capacity, rate, first.ID, n, in, took.Round(time.Millisecond), ok, failed, failures, st.Autoscaling)
		if failed > 0 {
			t.Errorf("%d of %d requests failed during the load step: %v", failed, ok+failed, failures)
		}
		if c := load.cached.Load(); c > 0 {
			t.Errorf("%d answers came from the edge's cache: the load must run PHP", c)
		}
		ev := s.cli(t, "events")
		if !strings.Contains(ev.stdout, "scale") {
			t.Errorf("no scaling decision in the event log:\n%s", ev.stdout)
		}
	})

	t.Run("when load falls the group goes back to min without failed requests", func(t *testing.T) {
		// Light uncached traffic keeps running PHP on every node through
		// the scale-in; each node leaving service must have served some of
		// it shortly before (its own requests counter), or the test would
		// prove nothing about draining.
		load := startLoad(searches(s.site, "scale-in"), 3)
		type sample struct {
			at time.Time
			v  int64
		}
		history := map[string][]sample{}
		left := map[string]int64{} // node → requests served in the 8 s before it left service
		st, took := s.waitNodes(t, "back to 1 node", 60*time.Second, func(st api.Status) bool {
			now := time.Now()
			for _, node := range st.Nodes {
				h := history[node.ID]
				if node.State == "in-service" {
					if v, err := tryMetric("http://"+node.Addr+"/_scalepress/metrics", "scalepress_node_requests_total"); err == nil {
						history[node.ID] = append(h, sample{now, int64(v)})
					}
					continue
				}
				if _, done := left[node.ID]; done || len(h) == 0 {
					continue
				}
				i := 0
				for i < len(h)-1 && h[len(h)-1].at.Sub(h[i].at) > 8*time.Second {
					i++
				}
				left[node.ID] = h[len(h)-1].v - h[i].v
			}
			n, _ := inService(st)
			for _, node := range st.Nodes {
				if node.State == "draining" || node.State == "pending" || node.State == "warming" {
					return false
				}
			}
			return n == 1
		})
		time.Sleep(time.Second)
		ok, failed, failures := load.Stop()
		t.Logf("back to min %s later; requests served by each node in the 8 s before it left service: %v; requests ok %d failed %d", took.Round(time.Millisecond), left, ok, failed)
		if len(left) == 0 {
			t.Error("saw no node leave service")
		}
		for id, n := range left {
			if n == 0 {
				t.Errorf("%s served none of the load before it was drained: the scale-in was not under load", id)
			}
		}
		if failed > 0 {
			t.Errorf("%d requests failed during scale-in: %v", failed, failures)
		}
		if c := load.cached.Load(); c > 0 {
			t.Errorf("%d answers came from the edge's cache: the load must run PHP", c)
		}
		if ok == 0 {
			t.Error("no request succeeded")
		}
		for _, n := range st.Nodes {
			if n.State == "terminated" {
				for _, pid := range n.PIDs {
					if alive(pid) {
						t.Errorf("terminated node %s still has process %d", n.ID, pid)
					}
				}
			}
		}
	})

	t.Run("scale command changes the policy", func(t *testing.T) {
		r := s.cli(t, "scale", "--min", "2", "--max", "2")
		if r.code != 0 {
			t.Fatalf("scale: %d %s", r.code, r.stderr)
		}
		s.waitNodes(t, "2 nodes in service", 20*time.Second, func(st api.Status) bool {
			n, _ := inService(st)
			return n == 2 && st.Autoscaling.Min == 2
		})
		if r := s.cli(t, "scale", "--min", "5", "--max", "3"); r.code != 2 || !strings.Contains(r.stderr, "max") {
			t.Errorf("scale with max < min: exit %d %q", r.code, r.stderr)
		}
		if r := s.cli(t, "nodes"); r.code != 0 || !strings.Contains(r.stdout, "in-service") {
			t.Errorf("nodes: %d %s", r.code, r.stdout)
		}
	})

	// inServiceNode is an in-service node of st (the first one).
	inServiceNode := func(t *testing.T, st api.Status) api.NodeStatus {
		t.Helper()
		for _, n := range st.Nodes {
			if n.State == "in-service" {
				return n
			}
		}
		t.Fatalf("no node in service: %+v", st.Nodes)
		return api.NodeStatus{}
	}

	t.Run("kill -9 of a node's php-fpm under load: no failed GET", func(t *testing.T) {
		victim := inServiceNode(t, s.status(t))
		procs := procsOf(t, victim)
		load := startLoad(searches(s.site, "kill-php-fpm"), 10)
		n := waitServing(t, victim, 3, time.Second, 10*time.Second)
		inflight := waitInFlight(t, victim, 5*time.Second)
		killed := time.Now()
		if err := kill(procs.fpmMaster, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		// The agent restarts php-fpm in place; the node serves PHP again.
		var after nodeProcs
		for {
			st := s.status(t)
			for _, node := range st.Nodes {
				if node.ID == victim.ID && node.State == "in-service" {
					if p, _ := findProcs(node); p.fpmMaster != 0 && p.fpmMaster != procs.fpmMaster {
						after = p
					}
				}
			}
			if after.fpmMaster != 0 || time.Since(killed) > 10*time.Second {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if after.fpmMaster == 0 {
			t.Fatalf("%s has no new php-fpm master 10 s after the kill", victim.ID)
		}
		again := waitServing(t, victim, 3, time.Second, 15*time.Second)
		for _, w := range procs.fpmWorkers {
			if alive(w) && strings.HasPrefix(cmdline(w), "php-fpm: pool") {
				t.Errorf("worker %d of the killed php-fpm master is still running", w)
			}
		}
		ok, failed, failures := load.Stop()
		t.Logf("%s served %d requests in the second before its php-fpm master (pid %d) got kill -9 with %d in flight; new master %d; served %d in a second after %s; requests ok %d failed %d",
			victim.ID, n, procs.fpmMaster, inflight, after.fpmMaster, again, time.Since(killed).Round(time.Millisecond), ok, failed)
		if failed > 0 {
			t.Errorf("%d GETs failed: %v", failed, failures)
		}
		if c := load.cached.Load(); c > 0 {
			t.Errorf("%d answers came from the edge's cache: the load must run PHP", c)
		}
		s.waitNodes(t, "2 nodes in service again", 10*time.Second, func(st api.Status) bool {
			n, _ := inService(st)
			return n == 2
		})
	})

	t.Run("kill -9 of a node agent under load: replaced within 10 s, no failed GET", func(t *testing.T) {
		st := s.status(t)
		_, ids := inService(st)
		var victim api.NodeStatus
		for _, n := range st.Nodes {
			if n.ID == ids[len(ids)-1] {
				victim = n
			}
		}
		procs := procsOf(t, victim)
		load := startLoad(searches(s.site, "kill-agent"), 10)
		n := waitServing(t, victim, 3, time.Second, 10*time.Second)
		inflight := waitInFlight(t, victim, 5*time.Second)
		if err := kill(procs.agent, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_, took := s.waitNodes(t, "a replacement in service", 10*time.Second, func(st api.Status) bool {
			n, now := inService(st)
			return n == 2 && !contains(now, victim.ID)
		})
		time.Sleep(2 * time.Second)
		ok, failed, failures := load.Stop()
		t.Logf("%s served %d requests in the second before its agent (pid %d) got kill -9 with %d in flight; replaced in %s; requests ok %d failed %d",
			victim.ID, n, procs.agent, inflight, took.Round(time.Millisecond), ok, failed)
		if failed > 0 {
			t.Errorf("%d GETs failed: %v", failed, failures)
		}
		if c := load.cached.Load(); c > 0 {
			t.Errorf("%d answers came from the edge's cache: the load must run PHP", c)
		}
		if ev := s.cli(t, "events"); !strings.Contains(ev.stdout, "replacement") {
			t.Errorf("no replacement event:\n%s", tail(ev.stdout, 20))
		}
	})
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
