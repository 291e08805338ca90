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
	"testing"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/statedir"
	"github.com/scalepress/scalepress/test/hosts"
)

// siteConfig is the configuration of TestSiteAcrossHosts: every role but
// the nodes on h1, bound to h1's address where another host (or the
// client) must reach it, the nodes on the Nomad clients. apiFwd is the
// forward the test reads the control API through (its Host header). The
// files section comes last: the caller appends its store.
func siteConfig(h1, apiFwd string) string {
	return fmt.Sprintf(`site:
  title: multi-host site
api:
  addr: %[1]s:9090
  allowed_hosts: [%[2]q]
edges:
  - id: edge-1
    region: default
    addr: %[1]s:8080
nodes:
  count: 2
  php_children: 2
  slow_start: 2s
autoscaling:
  enabled: true
  min: 2
  max: 3
  target: 0.6
db:
  members: 1
  ip_base: 127.0.2.0
  router: %[1]s:3306
  buffer_pool: 64M
redis:
  addr: %[1]s:6379
wordpress:
  cron_interval: 10s
  block_external_http: true
scheduler:
  kind: nomad
  address: http://%[1]s:4646
  job: sp-mh-nodes
  cpu: 100
  memory_mb: 256
files:
  addr: %[1]s:8081
`, h1, apiFwd)
}

// TestSiteAcrossHosts is the first site across hosts (issue 12): h1 runs
// the Nomad server and `scalepress up` (controller, edge, files, redis, db
// router and one MariaDB member); h2..h4 are Nomad clients that run the
// WordPress nodes, each in its own directory (node meta scalepress_dir),
// its docroot bootstrapped from the files role on h1, which keeps the tree
// in an S3 bucket (versitygw) on h2. From the client
// namespace only: the home page and an uncached search answer 200 through
// the edge; status shows every node with its host, on at least two hosts;
// `scale --min 3` places a third node, spread over the three hosts; `down`
// stops everything, the Nomad job included.
func TestSiteAcrossHosts(t *testing.T) {
	bin := os.Getenv("SCALEPRESS_BIN")
	if bin == "" {
		t.Fatal("SCALEPRESS_BIN must name the scalepress binary (make multihost sets it)")
	}
	hosts.LockE2E(t)
	t0 := time.Now()
	n := hosts.New(t, hosts.DefaultConfig())
	h1, client := n.Host(t, "h1"), n.Client
	nodeHosts := n.Hosts[1:]

	// Directories the service users (mysql, www-data) must reach: not
	// t.TempDir (0700). All hosts share this filesystem, so each host
	// gets a directory of its own, named to it by node meta.
	base, err := os.MkdirTemp("", "sp-mh-site-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	meta := map[string]map[string]string{}
	var nodeHostNames []string
	for _, h := range nodeHosts {
		d := filepath.Join(base, h.Name)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		meta[h.Name] = map[string]string{"scalepress_dir": d}
		nodeHostNames = append(nodeHostNames, h.Name)
	}
	nm := hosts.StartNomad(t, n, h1, nodeHosts, hosts.NomadOptions{Meta: meta})

	dir := filepath.Join(base, "controller")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The files role on h1 keeps the site tree in a bucket on h2.
	s3 := hosts.StartVersitygw(t, n.Host(t, "h2"), hosts.VersitygwOptions{})
	store := s3.SiteStore(t, filepath.Join(dir, "s3"))

	apiFwd := client.Forward(t, h1.Addr.String()+":9090")
	cfgPath := filepath.Join(dir, "scalepress.yaml")
	if err := os.WriteFile(cfgPath, []byte(siteConfig(h1.Addr.String(), apiFwd)+store), 0o644); err != nil {
		t.Fatal(err)
	}
	cli := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out, err := h1.Command(ctx, bin, append(args, "--dir", dir)...).CombinedOutput()
		return string(out), err
	}
	// Registered after the Nomad fixture, so it runs before the fixture
	// stops Nomad: whatever happened, the controller stops its job.
	t.Cleanup(func() {
		if out, err := cli("down"); err != nil {
			t.Logf("down at cleanup: %v: %s", err, out)
		}
		if t.Failed() {
			logs, _ := filepath.Glob(filepath.Join(base, "*", "logs", "*.log"))
			// The node-host tasks' own output, in each client's data dir.
			for _, c := range nm.Clients {
				cfgDir := filepath.Dir(c.Cmd.Args[len(c.Cmd.Args)-1])
				l, _ := filepath.Glob(filepath.Join(cfgDir, "data-*", "alloc", "*", "alloc", "logs", "node-host.std*"))
				logs = append(logs, l...)
				break // every client's data dir is in the same directory
			}
			for _, l := range logs {
				t.Logf("---- %s (tail)\n%s", l, tailFile(l, 3000))
			}
		}
	})

	tUp := time.Now()
	up := h1.Start(t, bin, "up", "--config", cfgPath, "--dir", dir)
	site := "http://" + h1.Addr.String() + ":8080"
	web := client.HTTPClient()
	get := func(path string) (int, string) {
		resp, err := web.Get(site + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp.StatusCode, string(b)
	}
	for deadline := time.Now().Add(10 * time.Minute); ; {
		code, _ := get("/")
		if code == http.StatusOK {
			break
		}
		select {
		case <-up.Done():
			t.Fatalf("up exited before the site answered: %v", up.Err())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the site never answered 200 through the edge (last %d)", code)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("up to the first 200 across hosts: %s (the topology and Nomad before it: %s)",
		time.Since(tUp).Round(time.Millisecond), tUp.Sub(t0).Round(time.Millisecond))
	var objects int
	filepath.WalkDir(filepath.Join(s3.Dir, "site", "mh"), func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			objects++
		}
		return nil
	})
	if objects == 0 {
		t.Errorf("no object under site/mh/ in the bucket on h2: the files store is not S3")
	}
	t.Logf("files store: %d objects in the bucket on h2", objects)
	if code, body := get("/?s=multihost-first"); code != http.StatusOK {
		t.Fatalf("uncached search through the edge: %d %.300s", code, body)
	}

	tok, err := os.ReadFile(filepath.Join(dir, "secrets", "api-token"))
	if err != nil {
		t.Fatal(err)
	}
	ctl := api.NewClient("http://" + apiFwd)
	ctl.Token = strings.TrimSpace(string(tok))
	// inService is the nodes in service by host, once want of them are.
	inService := func(want int) map[string]string {
		t.Helper()
		var last []api.NodeStatus
		for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
			st, err := ctl.Status(context.Background())
			if err != nil {
				t.Fatalf("status through the forward: %v", err)
			}
			last = st.Nodes
			byNode := map[string]string{}
			for _, nd := range st.Nodes {
				if nd.State == api.NodeInService {
					byNode[nd.ID] = nd.Host
				}
			}
			if len(byNode) == want {
				return byNode
			}
		}
		t.Fatalf("want %d nodes in service, status shows %+v", want, last)
		return nil
	}
	distinct := func(byNode map[string]string) []string {
		var hs []string
		for id, h := range byNode {
			if !slices.Contains(nodeHostNames, h) {
				t.Errorf("%s: host %q, want one of the Nomad clients %v", id, h, nodeHostNames)
			}
			if !slices.Contains(hs, h) {
				hs = append(hs, h)
			}
		}
		slices.Sort(hs)
		return hs
	}
	two := inService(2)
	if hs := distinct(two); len(hs) < 2 {
		t.Errorf("2 nodes on hosts %v, want at least 2 hosts (spread): %v", hs, two)
	}
	t.Logf("nodes: %v", two)

	tScale := time.Now()
	if out, err := cli("scale", "--min", "3"); err != nil {
		t.Fatalf("scale --min 3: %v: %s", err, out)
	}
	three := inService(3)
	t.Logf("scale --min 3 to 3 in service: %s; nodes: %v", time.Since(tScale).Round(time.Millisecond), three)
	if hs := distinct(three); len(hs) != 3 {
		t.Errorf("3 nodes on hosts %v, want one per Nomad client (spread): %v", hs, three)
	}
	logBootstraps(t, base, nodeHostNames)
	for i := range 6 {
		if code, body := get(fmt.Sprintf("/?s=multihost-%d", i)); code != http.StatusOK {
			t.Errorf("uncached search with 3 nodes: %d %.300s", code, body)
		}
	}

	tDown := time.Now()
	if out, err := cli("down"); err != nil {
		t.Fatalf("down: %v: %s", err, out)
	}
	select {
	case <-up.Done():
	case <-time.After(2 * time.Minute):
		t.Fatal("the controller still runs after down")
	}
	t.Logf("down: %s", time.Since(tDown).Round(time.Millisecond))
	// The node job is stopped: no allocation of it runs on any client.
	resp, err := http.Get(nm.Local + "/v1/job/sp-mh-nodes/allocations")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if strings.Contains(string(b), `"ClientStatus":"running"`) {
		t.Errorf("allocations still running after down: %.500s", b)
	}
	if code, _ := get("/"); code != 0 {
		t.Errorf("the edge still answers after down: %d", code)
	}
}

// logBootstraps logs, for each node host, how its nodes' filesync agents
// made their docroots (the "docroot bootstrapped" lines: linked=true when
// the host's link pool was used, ADR 29) and how many entries the host's
// pool holds.
func logBootstraps(t *testing.T, base string, hostNames []string) {
	t.Helper()
	for _, h := range hostNames {
		logs, _ := filepath.Glob(filepath.Join(base, h, "logs", "*-filesync.log"))
		for _, l := range logs {
			b, _ := os.ReadFile(l)
			for line := range strings.Lines(string(b)) {
				if strings.Contains(line, "docroot bootstrapped") {
					t.Logf("%s %s: %s", h, filepath.Base(l), strings.TrimSpace(line))
				}
			}
		}
		entries := 0
		pool := statedir.Layout{Dir: filepath.Join(base, h)}.LinkPool()
		filepath.WalkDir(pool, func(_ string, d os.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				entries++
			}
			return nil
		})
		t.Logf("%s: link pool %s: %d entries", h, pool, entries)
	}
}

// tailFile is the last n bytes of path.
func tailFile(path string, n int) string {
	b, _ := os.ReadFile(path)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
