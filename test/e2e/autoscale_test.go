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
  target: 0.4
  scale_in_window: 8s
`, 1)
	cfg = strings.Replace(cfg, "  php_children: 2\n", "  php_children: 2\n  slow_start: 2s\n  deregistration_delay: 10s\n", 1)
	if err := os.WriteFile(s.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	s.up(t)

	t.Run("a load step on an uncached path scales out to 3 nodes within 20 s", func(t *testing.T) {
		load := startLoad(s.site+"/?s=scalepress", 40) // search: always PHP, never cached
		st, took := s.waitNodes(t, "3 nodes in service", 20*time.Second, func(st api.Status) bool {
			n, _ := inService(st)
			return n >= 3
		})
		ok, failed, failures := load.Stop()
		t.Logf("3 nodes in service %s after the load step; requests ok %d failed %d %v; autoscaling %+v", took.Round(time.Millisecond), ok, failed, failures, st.Autoscaling)
		ev := s.cli(t, "events")
		if !strings.Contains(ev.stdout, "scale") {
			t.Errorf("no scaling decision in the event log:\n%s", ev.stdout)
		}
	})

	t.Run("when load falls the group goes back to min without failed requests", func(t *testing.T) {
		load := startLoad(s.site+"/", 4) // light traffic keeps flowing through the scale-in
		st, took := s.waitNodes(t, "back to 1 node", 60*time.Second, func(st api.Status) bool {
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
		t.Logf("back to min %s later; requests ok %d failed %d", took.Round(time.Millisecond), ok, failed)
		if failed > 0 {
			t.Errorf("%d requests failed during scale-in: %v", failed, failures)
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

	t.Run("kill -9 of a node's php-fpm under load: no failed GET", func(t *testing.T) {
		st := s.status(t)
		_, ids := inService(st)
		var victim api.NodeStatus
		for _, n := range st.Nodes {
			if n.ID == ids[0] {
				victim = n
			}
		}
		if len(victim.PIDs) < 2 {
			t.Fatalf("node %s has no php-fpm pid: %v", victim.ID, victim.PIDs)
		}
		load := startLoad(s.site+"/", 10)
		time.Sleep(2 * time.Second)
		if err := kill(victim.PIDs[1], syscall.SIGKILL); err != nil { // the php-fpm master
			t.Fatal(err)
		}
		time.Sleep(4 * time.Second)
		ok, failed, failures := load.Stop()
		t.Logf("php-fpm of %s killed: requests ok %d failed %d", victim.ID, ok, failed)
		if failed > 0 {
			t.Errorf("%d GETs failed: %v", failed, failures)
		}
		s.waitNodes(t, "2 nodes in service again", 10*time.Second, func(st api.Status) bool {
			n, _ := inService(st)
			return n == 2
		})
	})

	t.Run("kill -9 of a node agent under load: replaced within 10 s, no failed GET", func(t *testing.T) {
		st := s.status(t)
		_, ids := inService(st)
		victim := ids[len(ids)-1]
		var pid int
		for _, n := range st.Nodes {
			if n.ID == victim {
				pid = n.PIDs[0]
			}
		}
		load := startLoad(s.site+"/", 10)
		time.Sleep(2 * time.Second)
		if err := kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_, took := s.waitNodes(t, "a replacement in service", 10*time.Second, func(st api.Status) bool {
			n, now := inService(st)
			return n == 2 && !contains(now, victim)
		})
		time.Sleep(2 * time.Second)
		ok, failed, failures := load.Stop()
		t.Logf("agent of %s killed: replaced in %s; requests ok %d failed %d", victim, took.Round(time.Millisecond), ok, failed)
		if failed > 0 {
			t.Errorf("%d GETs failed: %v", failed, failures)
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
