package e2e

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scalepress/scalepress/internal/api"
)

// mixClass is one kind of request of a mixed load: its URLs and rate.
type mixClass struct {
	name string
	url  func(i int) string
	rate int
}

// mixStats is what one class of a mixed load saw.
type mixStats struct {
	mu        sync.Mutex
	latencies []time.Duration // of every answer
	status    map[string]int  // "200 HIT", "503 BYPASS", ...
	badReject []string        // rejections without Retry-After that were not STALE
	errors    []string        // transport errors (timeouts)
	nerr      int
}

func (m *mixStats) quantile(q float64) time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.latencies) == 0 {
		return 0
	}
	s := slices.Clone(m.latencies)
	slices.Sort(s)
	return s[min(int(q*float64(len(s))), len(s)-1)]
}

// mixLoad runs every class at its rate (open model) until stopped.
type mixLoad struct {
	stats map[string]*mixStats
	stop  context.CancelFunc
	done  sync.WaitGroup
}

func startMix(classes []mixClass) *mixLoad {
	ctx, cancel := context.WithCancel(context.Background())
	l := &mixLoad{stats: map[string]*mixStats{}, stop: cancel}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 512, DisableCompression: true}}
	for _, c := range classes {
		st := &mixStats{status: map[string]int{}}
		l.stats[c.name] = st
		l.done.Go(func() {
			t := time.NewTicker(time.Second / time.Duration(c.rate))
			defer t.Stop()
			var inflight sync.WaitGroup
			defer inflight.Wait()
			for i := 0; ; i++ {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				u := c.url(i)
				inflight.Go(func() {
					t0 := time.Now()
					resp, err := client.Get(u)
					if err == nil {
						_, err = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
					d := time.Since(t0)
					st.mu.Lock()
					defer st.mu.Unlock()
					if err != nil {
						st.nerr++
						if len(st.errors) < 5 {
							st.errors = append(st.errors, err.Error())
						}
						return
					}
					st.latencies = append(st.latencies, d)
					xc := resp.Header.Get("X-Cache")
					st.status[fmt.Sprintf("%d %s", resp.StatusCode, xc)]++
					if resp.StatusCode != 200 && xc != "STALE" && (resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "") && len(st.badReject) < 5 {
						st.badReject = append(st.badReject, fmt.Sprintf("%d %s Retry-After %q", resp.StatusCode, xc, resp.Header.Get("Retry-After")))
					}
				})
			}
		})
	}
	return l
}

func (l *mixLoad) Stop() { l.stop(); l.done.Wait() }

// nodeCounts samples the nodes the group runs (launched and not gone)
// every 250 ms until stopped.
type nodeCounts struct {
	mu     sync.Mutex
	counts []int
	stop   context.CancelFunc
	done   sync.WaitGroup
}

func watchNodes(s *stack) *nodeCounts {
	ctx, cancel := context.WithCancel(context.Background())
	w := &nodeCounts{stop: cancel}
	client := api.NewClient(s.api)
	client.HTTP.Timeout = 5 * time.Second
	w.done.Go(func() {
		for {
			var st api.Status
			if err := client.Get(ctx, api.APIPathStatus, &st); err == nil {
				n := 0
				for _, node := range st.Nodes {
					switch node.State {
					case api.NodePending, api.NodeWarming, api.NodeInService, api.NodeDraining:
						n++
					}
				}
				w.mu.Lock()
				w.counts = append(w.counts, n)
				w.mu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(250 * time.Millisecond):
			}
		}
	})
	return w
}

// changes is the node counts without repeats: 2 3 4 2 for "2 2 3 4 4 2".
func (w *nodeCounts) changes() []int {
	w.stop()
	w.done.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Compact(slices.Clone(w.counts))
}

// TestCapacity is issue 18's mixed load on one machine: cache hits at
// hundreds per second and uncached searches beyond what PHP can run, with
// autoscaling on. The group must not grow past the machine's CPU budget
// nor oscillate, hits must stay fast, and every uncached request must be
// served or refused fast (503 + Retry-After, or a STALE copy): no timeout.
// Then a pure PHP overload: the site serves what the machine can.
func TestCapacity(t *testing.T) {
	s := newStack(t, 84, 2)
	cfg := stackConfig(84, 2)
	// php_children 2 on 2 cores × 4 workers per core: at most 4 nodes.
	cfg = strings.Replace(cfg, "autoscaling:\n  enabled: false\n", `autoscaling:
  enabled: true
  min: 2
  max: 8
  scale_in_window: 1m
  workers_per_core: 4
`, 1)
	// The load generator is one address standing for many clients.
	cfg += "http:\n  client_concurrency: 0\n"
	if err := os.WriteFile(s.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	s.up(t)
	const budget = 4 // nodes: 2 cores × 4 workers per core / 2 children; the test machine has 2 cores
	static := s.site + "/wp-includes/css/dist/block-library/style.min.css"
	for _, u := range []string{s.site + "/", s.site + "/?p=1", static} {
		for range 2 { // the second makes sure the first was stored
			resp, err := http.Get(u)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}

	t.Run("the edge runs in a session (so an autogroup) of its own, PHP in the stack's", func(t *testing.T) {
		// nice orders tasks within an autogroup only: with the edge in the
		// stack's autogroup, PHP at nice 10 still used up the share the
		// edge woke up in, and hits waited 20 ms to seconds for a CPU
		// (ADR 24).
		pids := pidFiles(t, s.dir, "controller.pid", "edge-1.pid", "php-fpm.pid")
		ctl, edge, php := pids["controller.pid"], pids["edge-1.pid"], pids["php-fpm.pid"]
		ctlGroup, edgeGroup, phpGroup := autogroupOf(t, ctl), autogroupOf(t, edge), autogroupOf(t, php)
		type view struct {
			EdgeOwnSession, PHPInStackSession bool
			EdgeOwnAutogroup, PHPInStackGroup bool
		}
		got := view{
			EdgeOwnSession: sessionOf(t, edge) == edge && sessionOf(t, ctl) != edge, PHPInStackSession: sessionOf(t, php) == sessionOf(t, ctl),
			EdgeOwnAutogroup: edgeGroup != ctlGroup, PHPInStackGroup: phpGroup == ctlGroup,
		}
		want := view{EdgeOwnSession: true, PHPInStackSession: true, EdgeOwnAutogroup: true, PHPInStackGroup: true}
		if edgeGroup == "" && ctlGroup == "" {
			want.EdgeOwnAutogroup = false // a kernel that made no autogroup for the edge's session
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("autogroups: controller %q, edge %q, php-fpm %q (-want +got):\n%s", ctlGroup, edgeGroup, phpGroup, diff)
		}
	})

	// What the machine carries now, with enough clients to keep every
	// worker busy: the overloads below are multiples of it.
	capacity, bad := throughput(searches(s.site, "capacity"), 8, 5*time.Second)
	t.Logf("capacity: %.1f searches/s (%d not 200)", capacity, bad)

	t.Run("mixed load: hits stay fast, uncached requests are served or refused fast, the group stays within the CPU budget", func(t *testing.T) {
		nodes := watchNodes(s)
		same := func(u string) func(int) string { return func(int) string { return u } }
		load := startMix([]mixClass{
			{"home", same(s.site + "/"), 200},
			{"post", same(s.site + "/?p=1"), 50},
			{"static", same(static), 75},
			{"search", searches(s.site, "mix"), max(int(2*capacity), 16)}, // beyond what PHP can run
		})
		time.Sleep(60 * time.Second)
		load.Stop()
		counts := nodes.changes()
		for _, name := range []string{"home", "post", "static", "search"} {
			st := load.stats[name]
			t.Logf("%s: %d answers %v, p50 %s p99 %s max %s; errors %d %v", name, len(st.latencies), st.status,
				st.quantile(0.5), st.quantile(0.99), st.quantile(1), st.nerr, st.errors)
			if st.nerr > 0 {
				t.Errorf("%s: %d requests failed without an answer (timeouts): %v", name, st.nerr, st.errors)
			}
			if len(st.badReject) > 0 {
				t.Errorf("%s: refusals that were neither 503 with Retry-After nor STALE: %v", name, st.badReject)
			}
			if name == "search" {
				continue
			}
			// A hit never waits on a fill: every answer of a cached URL is
			// a fresh HIT, none coalesced behind a refresh queued for
			// admission (that would be STALE or MISS), so what is left of
			// a hit's latency is the CPU.
			for k, n := range st.status {
				if !strings.HasSuffix(k, " HIT") {
					t.Errorf("%s: %d answers %q, want only HITs", name, n, k)
				}
			}
		}
		t.Logf("node count over time: %v", counts)
		if m := slices.Max(counts); m > budget {
			t.Errorf("the group ran %d nodes; the CPU budget is %d", m, budget)
		}
		// Growth, then at most one way back down: no up-down-up.
		turns := 0
		for i := 2; i < len(counts); i++ {
			if (counts[i]-counts[i-1] > 0) != (counts[i-1]-counts[i-2] > 0) {
				turns++
			}
		}
		if turns > 1 {
			t.Errorf("the node count oscillated: %v", counts)
		}
		// A search is PHP (tens of ms) plus at most http.queue_timeout (3 s)
		// at the edge: 10 s is generous on a busy machine; without
		// admission control searches waited up to 30 s (issue 18).
		if max := load.stats["search"].quantile(1); max > 10*time.Second {
			t.Errorf("an uncached request took %s: more than a few seconds", max)
		}
		// Hits: issue 18 saw p99 0.46 s and 2.9 s while PHP saturated the
		// machine, and this test 52–98 ms with PHP at nice 10 in the
		// stack's autogroup. With PHP and the edge in autogroups of their
		// own, hit p99 was 1.2–8.5 ms here in three runs (max 20–100 ms);
		// with only the edge in its own (PHP back in the stack's, ADR 24)
		// 2.4–5.4 ms in two runs. 50 ms leaves room for a busier machine
		// and still fails the shared autogroup. The 20 ms goal is
		// measured in bench/.
		for _, name := range []string{"home", "post", "static"} {
			if p99 := load.stats[name].quantile(0.99); p99 > 50*time.Millisecond {
				t.Errorf("%s: hit p99 %s, more than 50 ms", name, p99)
			}
		}
	})

	t.Run("pure PHP overload: the site serves what the machine can, and refuses the rest fast", func(t *testing.T) {
		rate := max(int(3*capacity), 30)
		load := startMix([]mixClass{{"search", searches(s.site, "over"), rate}})
		time.Sleep(20 * time.Second)
		load.Stop()
		st := load.stats["search"]
		served := float64(st.status["200 BYPASS"]) / 20
		t.Logf("offered %d/s: %v; served %.1f/s; p50 %s p99 %s max %s; errors %d %v", rate, st.status, served,
			st.quantile(0.5), st.quantile(0.99), st.quantile(1), st.nerr, st.errors)
		if st.nerr > 0 {
			t.Errorf("%d requests failed without an answer: %v", st.nerr, st.errors)
		}
		if len(st.badReject) > 0 {
			t.Errorf("refusals that were not 503 with Retry-After: %v", st.badReject)
		}
		// Not below capacity: the refused requests cost the edge almost
		// nothing. 0.7 allows for the other work on a shared machine.
		if served < 0.7*capacity {
			t.Errorf("served %.1f searches/s under overload, below 0.7 × the %.1f/s the machine carries", served, capacity)
		}
		if max := st.quantile(1); max > 10*time.Second {
			t.Errorf("an uncached request took %s under overload", max)
		}
		if st.status["503 BYPASS"] > 0 {
			// The edge reports its refusals every 10 s.
			deadline := time.Now().Add(15 * time.Second)
			for {
				ev := s.cli(t, "events")
				if strings.Contains(ev.stdout, "uncached requests refused") {
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("no overload event for %d refusals:\n%s", st.status["503 BYPASS"], tail(ev.stdout, 20))
					break
				}
				time.Sleep(time.Second)
			}
		}
	})
	ev := s.cli(t, "events")
	t.Logf("events:\n%s", tail(ev.stdout, 25))
}

// pidFiles finds the pid files named names under dir (the state directory,
// docroots skipped) and returns the pid each holds (its first line).
func pidFiles(t *testing.T, dir string, names ...string) map[string]int {
	t.Helper()
	out := map[string]int{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // a directory another user owns
		}
		if d.IsDir() && (d.Name() == "docroot" || d.Name() == "db" || d.Name() == "site") {
			return filepath.SkipDir
		}
		if d.IsDir() || !slices.Contains(names, d.Name()) {
			return nil
		}
		if _, seen := out[d.Name()]; seen {
			return nil // the first node's
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0])); err == nil {
			out[d.Name()] = pid
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if out[n] == 0 {
			t.Fatalf("no pid file %s under %s (found %v)", n, dir, out)
		}
	}
	return out
}

// autogroupOf reads pid's autogroup name from /proc/PID/autogroup
// ("/autogroup-ID nice N"), or "" in the kernel's default autogroup (a
// session that never had one of its own, as on some CI runners).
func autogroupOf(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/autogroup", pid))
	if err != nil {
		t.Fatalf("autogroup of pid %d: %v", pid, err)
	}
	if len(b) == 0 {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) != 3 {
		t.Fatalf("autogroup of pid %d: %q", pid, b)
	}
	return f[0]
}

// sessionOf reads pid's session id (/proc/PID/stat field 6).
func sessionOf(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	st := string(b)
	f := strings.Fields(st[strings.LastIndexByte(st, ')')+1:]) // state ppid pgrp session ...
	sid, err := strconv.Atoi(f[3])
	if err != nil {
		t.Fatalf("session in %q: %v", st, err)
	}
	return sid
}
