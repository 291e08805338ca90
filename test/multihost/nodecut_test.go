package multihost

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/test/hosts"
)

// nodeCutLongestGET bounds the longest single GET that overlaps a node
// host's cut. The edge's own checks take a node out of service after Fall
// (3) failed checks, the first within HealthInterval (2 s) of the cut, the
// next two 2 s after the previous one failed on its 1 s timeout: at most
// 9 s after the cut (internal/edge TestCutShortOutOfService); a GET
// waiting there for its answer head is then sent to another node (an
// uncached search: 1.1 s at most before the cut in the first run, a few
// seconds under this machine's load). Before the edge cut such GETs, one
// waited for the whole cut (2 min), bounded only by the 130 s head timeout.
const nodeCutLongestGET = 15 * time.Second

// nodeCutServedBefore: the searches the victim serves before the cut.
const nodeCutServedBefore = 10

// nodeCutRebalanceBound bounds the rebalance after the heal (issue 12:
// "the node group is rebalanced"): the healed host's Nomad client is ready
// again within ~2 s of the link, it settles for autoscaling.rebalance_after
// (10 s in this test's configuration), then a spare node starts and one node moves (each a launch to in
// service: ~20-40 s here, a drain of a few seconds); when Nomad breaks a
// tie against the healed host the moved node moves again (3 hosts: at
// most twice). Measured: see docs/multi-host.md.
const nodeCutRebalanceBound = 4 * time.Minute

// nodeCutResult is one GET of the load.
type nodeCutResult struct {
	start, end time.Time
	path       string
	code       int
	node       string // X-Scalepress-Node (site.debug keeps it)
	err        string // empty: 200 with the search term in the body
}

// TestNodeHostCut cuts the link of a host that runs a WordPress node (its
// bridge port down: packets vanish, no RST) while the client namespace
// sends uncached GETs (searches) through the edge, for at least 30 s and
// until the node group has three nodes in service on the other hosts, then
// heals it (issue 12). Under the same load, the group then rebalances
// (autoscaling.rebalance_after): within nodeCutRebalanceBound of the heal
// every node host runs a node in service again, the group is back at its
// desired size with nothing moving, and the node on the healed host serves
// searches. Not one GET may fail (the cut, the heal, the moves), and none
// that overlaps the cut may take longer than nodeCutLongestGET.
func TestNodeHostCut(t *testing.T) {
	bin := os.Getenv("SCALEPRESS_BIN")
	if bin == "" {
		t.Fatal("SCALEPRESS_BIN must name the scalepress binary (make multihost sets it)")
	}
	hosts.LockE2E(t)
	n := hosts.New(t, hosts.DefaultConfig())
	h1, client := n.Host(t, "h1"), n.Client
	nodeHosts := n.Hosts[1:]

	base, err := os.MkdirTemp("", "sp-mh-nodecut-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	meta := map[string]map[string]string{}
	for _, h := range nodeHosts {
		d := filepath.Join(base, h.Name)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		meta[h.Name] = map[string]string{"scalepress_dir": d}
	}
	nm := hosts.StartNomad(t, n, h1, nodeHosts, hosts.NomadOptions{Meta: meta})
	dir := filepath.Join(base, "controller")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	apiFwd := client.Forward(t, h1.Addr.String()+":9090")
	// siteConfig with three nodes (min 3, room for a fourth while one is
	// lost), its own Nomad job, and the node's name on every answer.
	cfg := siteConfig(h1.Addr.String(), apiFwd)
	for _, r := range [][2]string{
		{"  title: multi-host site\n", "  title: multi-host site\n  debug: true\n"},
		{"  count: 2\n", "  count: 3\n"},
		{"  min: 2\n  max: 3\n", "  min: 3\n  max: 4\n"},
		{"job: sp-mh-nodes\n", "job: sp-mh-nodecut\n"},
		// The healed host settles 10 s, not the default 30 s, before
		// the rebalance: what is asserted is the spread, and 20 s of
		// the suite's time (the settle itself is internal/nodegroup TestRebalanceWaits').
		{"  target: 0.6\n", "  target: 0.6\n  rebalance_after: 10s\n"},
	} {
		if !strings.Contains(cfg, r[0]) {
			t.Fatalf("siteConfig has no %q to change", r[0])
		}
		cfg = strings.Replace(cfg, r[0], r[1], 1)
	}
	cfgPath := filepath.Join(dir, "scalepress.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cli := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out, err := h1.Command(ctx, bin, append(args, "--dir", dir)...).CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() {
		if out, err := cli("down"); err != nil {
			t.Logf("down at cleanup: %v: %s", err, out)
		}
		if t.Failed() {
			logs, _ := filepath.Glob(filepath.Join(base, "*", "logs", "*.log"))
			for _, c := range nm.Clients {
				cfgDir := filepath.Dir(c.Cmd.Args[len(c.Cmd.Args)-1])
				l, _ := filepath.Glob(filepath.Join(cfgDir, "data-*", "alloc", "*", "alloc", "logs", "node-host.std*"))
				logs = append(logs, l...)
				break
			}
			for _, l := range logs {
				t.Logf("---- %s (tail)\n%s", l, tailFile(l, 3000))
			}
		}
	})

	up := h1.Start(t, bin, "up", "--config", cfgPath, "--dir", dir)
	site := "http://" + h1.Addr.String() + ":8080"
	// Its own client: longer than the edge's 130 s wait for an answer
	// head, so that a GET stuck on the cut node shows as such.
	web := &http.Client{
		Transport: &http.Transport{DialContext: client.DialContext, MaxIdleConnsPerHost: 16},
		Timeout:   150 * time.Second,
	}
	t.Cleanup(web.CloseIdleConnections)
	for deadline := time.Now().Add(10 * time.Minute); ; {
		resp, err := web.Get(site + "/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-up.Done():
			t.Fatalf("up exited before the site answered: %v", up.Err())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the site never answered 200 through the edge: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
	}

	tok, err := os.ReadFile(filepath.Join(dir, "secrets", "api-token"))
	if err != nil {
		t.Fatal(err)
	}
	ctl := api.NewClient("http://" + apiFwd)
	ctl.Token = strings.TrimSpace(string(tok))
	// inService waits for at least want nodes in service (exactly want
	// when exact), on hosts ok accepts.
	inService := func(want int, exact bool, within time.Duration, ok func(map[string]string) bool) (map[string]string, bool) {
		t.Helper()
		var last []api.NodeStatus
		for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			st, err := ctl.Status(ctx)
			cancel()
			if err != nil {
				t.Logf("status through the forward: %v", err)
				continue
			}
			last = st.Nodes
			byNode := map[string]string{}
			for _, nd := range st.Nodes {
				if nd.State == api.NodeInService {
					byNode[nd.ID] = nd.Host
				}
			}
			if (len(byNode) == want || !exact && len(byNode) > want) && ok(byNode) {
				return byNode, true
			}
		}
		t.Logf("not %d nodes in service as wanted; status shows %+v", want, last)
		return nil, false
	}
	spread := func(byNode map[string]string) bool {
		var hs []string
		for _, h := range byNode {
			if !slices.Contains(hs, h) {
				hs = append(hs, h)
			}
		}
		return len(hs) == len(byNode)
	}
	nodes, ok := inService(3, true, 5*time.Minute, spread)
	if !ok {
		t.Fatal("three nodes never in service, one per Nomad client")
	}
	t.Logf("nodes: %v", nodes)
	// The victim is h4 (h2..h4 each run one node).
	victim := n.Host(t, "h4")
	var victimNode string
	for id, h := range nodes {
		if h == victim.Name {
			victimNode = id
		}
	}
	if victimNode == "" {
		t.Fatalf("no node on %s: %v", victim.Name, nodes)
	}

	// The load: 4 loops of uncached searches, each checked for 200 and its
	// term in the body.
	var (
		mu      sync.Mutex
		results []nodeCutResult
		wg      sync.WaitGroup
	)
	stop := make(chan struct{})
	for g := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				term := fmt.Sprintf("nodecut%dq%d", g, i)
				r := nodeCutResult{start: time.Now(), path: "/?s=" + term}
				resp, err := web.Get(site + r.path)
				if err != nil {
					r.err = err.Error()
				} else {
					b, rerr := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
					resp.Body.Close()
					r.code, r.node = resp.StatusCode, resp.Header.Get(api.HeaderNode)
					switch {
					case rerr != nil:
						r.err = "reading the body: " + rerr.Error()
					case resp.StatusCode != http.StatusOK:
						r.err = fmt.Sprintf("status %d: %.200s", resp.StatusCode, b)
					case !strings.Contains(string(b), term):
						r.err = "200 without the search term in the body"
					}
				}
				r.end = time.Now()
				mu.Lock()
				results = append(results, r)
				mu.Unlock()
			}
		})
	}
	stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
	t.Cleanup(stopLoad)

	// Before the cut: the victim serves its share of the searches.
	servedBy := func(node string, from, to time.Time) int {
		mu.Lock()
		defer mu.Unlock()
		c := 0
		for _, r := range results {
			if r.node == node && !r.end.Before(from) && r.end.Before(to) {
				c++
			}
		}
		return c
	}
	// The cut comes once the victim has served nodeCutServedBefore searches
	// (at least 5 s of load, at most 15 s).
	tLoad := time.Now()
	for time.Since(tLoad) < 15*time.Second &&
		(time.Since(tLoad) < 5*time.Second || servedBy(victimNode, tLoad, time.Now()) < nodeCutServedBefore) {
		time.Sleep(250 * time.Millisecond)
	}
	tCut := time.Now()
	if c := servedBy(victimNode, tLoad, tCut); c == 0 {
		t.Fatalf("%s (on %s) served no search in the %s before the cut", victimNode, victim.Name, tCut.Sub(tLoad).Round(time.Second))
	} else {
		t.Logf("before the cut: %s on %s served %d searches", victimNode, victim.Name, c)
	}

	if err := n.Cut(victim); err != nil {
		t.Fatal(err)
	}
	healed := false
	heal := func() {
		if !healed {
			healed = true
			if err := n.Heal(victim); err != nil {
				t.Error(err)
			}
		}
	}
	t.Cleanup(heal)
	// At least 30 s, and until three nodes (or more: the load may have
	// scaled the group out to its max of 4) are in service none of them on
	// the victim (the group replaced the lost node), for at most 4 min.
	time.Sleep(30 * time.Second)
	replaced, ok := inService(3, false, 4*time.Minute, func(m map[string]string) bool {
		for _, h := range m {
			if h == victim.Name {
				return false
			}
		}
		return true
	})
	tHeal := time.Now()
	heal()
	if ok {
		t.Logf("the group replaced %s within %s of the cut: %v", victimNode, tHeal.Sub(tCut).Round(time.Second), replaced)
	} else {
		t.Logf("the group did not replace %s within %s of the cut", victimNode, tHeal.Sub(tCut).Round(time.Second))
	}
	// The rebalance: every node host runs a node in service, as many as
	// desired, none starting or draining (a spare or a move under way).
	var (
		final   map[string]string
		lastSt  *api.Status
		tSpread time.Time
	)
	for deadline := tHeal.Add(nodeCutRebalanceBound); time.Now().Before(deadline); time.Sleep(time.Second) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		st, err := ctl.Status(ctx)
		cancel()
		if err != nil {
			t.Logf("status through the forward: %v", err)
			continue
		}
		lastSt = st
		byNode, onHost, moving := map[string]string{}, map[string]bool{}, false
		for _, nd := range st.Nodes {
			switch nd.State {
			case api.NodeInService:
				byNode[nd.ID], onHost[nd.Host] = nd.Host, true
			case api.NodePending, api.NodeWarming, api.NodeDraining:
				moving = true
			}
		}
		every := true
		for _, h := range nodeHosts {
			every = every && onHost[h.Name]
		}
		if every && !moving && st.Autoscaling != nil && len(byNode) == st.Autoscaling.Desired {
			final, tSpread = byNode, time.Now()
			break
		}
	}
	if final == nil {
		t.Errorf("the nodes did not spread over %d node hosts within %s of the heal; status %+v", len(nodeHosts), nodeCutRebalanceBound, lastSt)
	} else {
		t.Logf("rebalanced %s after the heal: %v", tSpread.Sub(tHeal).Round(time.Second), final)
	}
	// The moved node serves: searches land on the healed host (the load
	// goes on until one has, for at most 10 s).
	var healedNode string
	for id, h := range final {
		if h == victim.Name {
			healedNode = id
		}
	}
	for final != nil && time.Since(tSpread) < 10*time.Second && servedBy(healedNode, tSpread, time.Now()) == 0 {
		time.Sleep(250 * time.Millisecond)
	}
	tEnd := time.Now()
	stopLoad()
	if final != nil {
		if c := servedBy(healedNode, tSpread, tEnd); c == 0 {
			t.Errorf("%s (on the healed %s) served no search in the %s after the rebalance", healedNode, victim.Name, tEnd.Sub(tSpread).Round(time.Second))
		} else {
			t.Logf("after the rebalance: %s on %s served %d searches", healedNode, victim.Name, c)
		}
	}
	var evs api.Events
	ectx, ecancel := context.WithTimeout(context.Background(), 10*time.Second)
	if err := ctl.Get(ectx, api.APIPathEvents, &evs); err != nil {
		t.Logf("events: %v", err)
	}
	ecancel()
	for _, e := range evs.Events {
		if e.Kind == "rebalance" || e.Kind == "nomad" && e.Time.After(tHeal) {
			t.Logf("event %s %s: %s", e.Time.Format("15:04:05"), e.Kind, e.Message)
		}
	}

	// The figures and the assertions.
	var failed []nodeCutResult
	var longest, longestBefore nodeCutResult
	during := 0
	for _, r := range results {
		if r.err != "" {
			failed = append(failed, r)
		}
		d := r.end.Sub(r.start)
		if r.end.After(tCut) && r.start.Before(tHeal) {
			during++
			if d > longest.end.Sub(longest.start) {
				longest = r
			}
		} else if r.end.Before(tCut) && d > longestBefore.end.Sub(longestBefore.start) {
			longestBefore = r
		}
	}
	afterHeal := 0
	for _, r := range results {
		if r.end.After(tHeal) {
			afterHeal++
		}
	}
	t.Logf("%d GETs after the heal (the rebalance's moves)", afterHeal)
	t.Logf("%d GETs, %d overlapping the cut (%s); %d failed; longest during the cut %s (%s, node %s, started %s after the cut), longest before %s",
		len(results), during, tHeal.Sub(tCut).Round(time.Second), len(failed),
		longest.end.Sub(longest.start).Round(time.Millisecond), longest.path, longest.node, longest.start.Sub(tCut).Round(time.Millisecond),
		longestBefore.end.Sub(longestBefore.start).Round(time.Millisecond))
	over := 0
	for _, r := range results {
		if r.end.After(tCut) && r.start.Before(tHeal) && r.end.Sub(r.start) > nodeCutLongestGET {
			over++
		}
	}
	t.Logf("%d GETs overlapping the cut took longer than %s", over, nodeCutLongestGET)
	for i, r := range failed {
		if i == 10 {
			t.Errorf("... and %d more failed GETs", len(failed)-10)
			break
		}
		t.Errorf("failed GET %s (started %s after the cut, took %s, node %q): %s",
			r.path, r.start.Sub(tCut).Round(time.Millisecond), r.end.Sub(r.start).Round(time.Millisecond), r.node, r.err)
	}
	if d := longest.end.Sub(longest.start); d > nodeCutLongestGET {
		t.Errorf("longest GET during the cut: %s (%s, started %s after the cut), want at most %s",
			d.Round(time.Millisecond), longest.path, longest.start.Sub(tCut).Round(time.Millisecond), nodeCutLongestGET)
	}
	if len(results) == 0 {
		t.Fatal("no GET was sent")
	}
}
