package multihost

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/test/hosts"
)

// Bounds TestServingWithoutController asserts.
const (
	// servedWithoutController: how long the site is asked, under load,
	// after the controller's SIGKILL (every request must be answered).
	servedWithoutController = 30 * time.Second
	// dnsDropsLostEdge: from an edge's host cut to dns answering without
	// it: its health checks (every 1 s, 500 ms timeout, down after 2
	// failures) with room for a loaded machine.
	dnsDropsLostEdge = 15 * time.Second
	// edgeRestartWithin: from an edge's SIGKILL to it answering again:
	// Nomad's restart delay (1 s) and the edge's start.
	edgeRestartWithin = 30 * time.Second
	// certRenewedWithin: from the certificate files replaced on the
	// controller's host to both edges serving the new certificate: the
	// controller's check (2 s), the variable written, Nomad's template
	// rendered again, the edge's check (2 s), with room for a loaded
	// machine.
	certRenewedWithin = 20 * time.Second
)

// siteName is the name the site's certificate is for (site.url's host).
const siteName = "www.example.test"

// edgePID is the pid of the edge a Nomad task runs at addr (0: none).
func edgePID(t *testing.T, addr string) int {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !strings.Contains(string(b), "\x00edge\x00--spec\x00") || !strings.Contains(string(b), "\x00--addr\x00"+addr+"\x00") {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		return pid
	}
	return 0
}

// edgesConfig: every serving role off the controller's host h1. The nodes
// on h2 and h3 (node meta scalepress_role node), files, redis and dns on
// r1 (scalepress_role roles), an edge on e1 (region default) and one on e2
// (region eu), the database (one member) on d1 through its db-agent, a
// router beside WordPress on every node host.
// The controller's API is at vip (an address that moves with it: the
// edges and the nodes' routers reach it there); Nomad's server is at nomad.
// redis, dns and files run on Nomad: their addresses' hosts (h1's) are not
// where they run, and a controller on another host has none of them.
// The site is HTTPS (ADR 0033): each edge serves the certificate files on
// the controller's host (tlsDir) on its host's IP, port 8443; plain HTTP
// on 8080 is not redirected, so the load and the controller's take-over
// go on over HTTP as before.
func edgesConfig(h1, vip, nomad, apiFwd string, e1, e2, d1 *hosts.Host, base, tlsDir string) string {
	return fmt.Sprintf(`site:
  title: edges on nomad
  url: https://%[11]s:8443
api:
  addr: %[8]s:9090
  allowed_hosts: [%[2]q]
edges:
  - id: edge-1
    region: default
    addr: %[3]s:8080
    https_addr: %[3]s:8443
  - id: edge-2
    region: eu
    addr: %[4]s:8080
    https_addr: %[4]s:8443
tls:
  redirect_http: false
  hsts: 1h
  certificates:
    - {cert_file: %[10]s/fullchain.pem, key_file: %[10]s/key.pem}
nodes:
  count: 2
  php_children: 3
  slow_start: 2s
autoscaling:
  enabled: true
  min: 2
  max: 3
  target: 0.95
db:
  members: 1
  ip_base: 127.0.2.0
  router: 127.0.0.1:3306
  router_per_host: true
  buffer_pool: 64M
  gcache_size: 64M
  hosts:
    - {id: d1, addr: %[5]s, agent: "%[5]s:%[6]s", dir: %[7]s}
  agents: nomad
redis:
  addr: %[1]s:6379
wordpress:
  cron_interval: 10s
  block_external_http: true
scheduler:
  kind: nomad
  address: http://%[9]s:4646
  job: sp-mh-edges
  cpu: 100
  memory_mb: 256
  node_meta:
    scalepress_role: node
  roles: [files, redis, dns, edge]
  role_meta:
    scalepress_role: roles
dns:
  enabled: true
  addr: %[1]s:5353
  zone: example.test.
  health: {interval: 1s, timeout: 500ms, rise: 1, fall: 2}
files:
  addr: %[1]s:8081
`, h1, apiFwd, e1.Addr, e2.Addr, d1.Addr, agentPort, filepath.Join(base, d1.Name, "db"), vip, nomad, tlsDir, siteName)
}

// writeLeaf replaces dir's fullchain.pem and key.pem with l's, each file
// atomically, the key first (as a deploy script would).
func writeLeaf(t *testing.T, dir string, l hosts.Leaf) {
	t.Helper()
	for _, f := range []struct{ from, to string }{{l.KeyFile, "key.pem"}, {l.CertFile, "fullchain.pem"}} {
		b, err := os.ReadFile(f.from)
		if err != nil {
			t.Fatal(err)
		}
		to := filepath.Join(dir, f.to)
		if err := os.WriteFile(to+".tmp", b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(to+".tmp", to); err != nil {
			t.Fatal(err)
		}
	}
}

// TestServingWithoutController is issue 12's "losing the controller's
// host stops no serving" with every serving role on Nomad, off the
// controller's host: the nodes (h2, h3), files, redis and dns (r1), an
// edge per region on its own host (e1, e2; scheduler.roles edge) and the
// database on d1 (db.hosts, db.agents nomad, a router per node host); the
// Nomad server and the bucket on ns. Status names each edge's host. Then
// the controller's host h1 is cut under uncached load through e1's edge
// from the client namespace: for 30 s every search (a distinct term each,
// answered by PHP: the term is in the page) and every home page answers
// 200, and dns goes on answering with e1's address. The edge on e1 is
// killed too: Nomad restarts it in place and it serves with the node set
// it kept. Then e1's host is cut: dns stops answering with it (it answers
// with e2's edge, the other region's) and the site keeps answering through
// e2, all still without a controller. It ends with issue 12's take-over
// (takeover.run): a controller on c2, from an empty directory, adopts
// everything and scales, and the old one, its link healed, stands down.
func TestServingWithoutController(t *testing.T) {
	bin := os.Getenv("SCALEPRESS_BIN")
	if bin == "" {
		t.Fatal("SCALEPRESS_BIN must name the scalepress binary (make multihost sets it)")
	}
	hosts.LockE2E(t)
	t0 := time.Now()
	n := hosts.New(t, hosts.Config{Hosts: []string{"h1", "h2", "h3", "r1", "e1", "e2", "d1", "ns", "c2"}, Client: true, Subnet: hosts.DefaultSubnet})
	h1, client := n.Host(t, "h1"), n.Client
	e1, e2, d1, r1 := n.Host(t, "e1"), n.Host(t, "e2"), n.Host(t, "d1"), n.Host(t, "r1")
	// ns runs the Nomad server and the bucket (they outlive the
	// controller's host); c2 is the standby controller's host.
	ns, c2 := n.Host(t, "ns"), n.Host(t, "c2")
	vip := controllerVIP(t, h1)

	base, err := os.MkdirTemp("", "sp-mh-edges-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	meta := map[string]map[string]string{
		"r1": {"scalepress_role": "roles"},
		"e1": {"scalepress_region": "default"},
		"e2": {"scalepress_region": "eu"},
		"d1": {"scalepress_db": "d1"},
	}
	var clients []*hosts.Host
	for _, h := range n.Hosts {
		if h == h1 || h == ns || h == c2 {
			continue
		}
		clients = append(clients, h)
		if err := os.Mkdir(filepath.Join(base, h.Name), 0o755); err != nil {
			t.Fatal(err)
		}
		if h.Name == "h2" || h.Name == "h3" {
			meta[h.Name] = map[string]string{"scalepress_dir": filepath.Join(base, h.Name), "scalepress_role": "node"}
		}
	}
	nm := hosts.StartNomad(t, n, ns, clients, hosts.NomadOptions{Meta: meta})

	dir := filepath.Join(base, "controller")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The config and the files it names (the bucket's keys) are outside
	// the state directory: what an operator copies to a standby host.
	etc := filepath.Join(base, "etc")
	if err := os.Mkdir(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	s3 := hosts.StartVersitygw(t, ns, hosts.VersitygwOptions{})
	store := s3.SiteStore(t, filepath.Join(etc, "s3"))

	// The site's certificate, from a CA of the test's, in files only the
	// controller's user reads (the edges' hosts get them through Nomad).
	ca := hosts.NewCA(t, "site")
	tlsDir := filepath.Join(etc, "tls")
	if err := os.Mkdir(tlsDir, 0o700); err != nil {
		t.Fatal(err)
	}
	leaf := ca.Issue(t, "site-1", []string{siteName}, nil)
	writeLeaf(t, tlsDir, leaf)

	apiFwd := client.Forward(t, vip+":9090")
	cfgPath := filepath.Join(etc, "scalepress.yaml")
	if err := os.WriteFile(cfgPath, []byte(edgesConfig(h1.Addr.String(), vip, ns.Addr.String(), apiFwd, e1, e2, d1, base, tlsDir)+store), 0o644); err != nil {
		t.Fatal(err)
	}
	cli := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if args[0] != "down" { // down reads no config
			args = append(args, "--config", cfgPath)
		}
		out, err := h1.Command(ctx, bin, append(args, "--dir", dir)...).CombinedOutput()
		return string(out), err
	}
	var cut []*hosts.Host
	var tk *takeover // the controller on c2, once started
	t.Cleanup(func() {
		for _, h := range cut {
			n.Heal(h)
		}
		if tk != nil {
			if out, err := tk.cli("down"); err != nil {
				t.Logf("down on c2 at cleanup: %v: %s", err, out)
			}
		}
		// With the controller killed, down stops what is left of it on h1;
		// the Nomad tasks end with the topology (every process in its
		// namespaces is killed at its cleanup).
		if out, err := cli("down"); err != nil {
			t.Logf("down at cleanup: %v: %s", err, out)
		}
		if t.Failed() {
			logs, _ := filepath.Glob(filepath.Join(dir, "logs", "*.log"))
			for _, c := range nm.Clients {
				cfgDir := filepath.Dir(c.Cmd.Args[len(c.Cmd.Args)-1])
				for _, task := range []string{"edge", "node-host", "db-agent", "dbrouter"} {
					l, _ := filepath.Glob(filepath.Join(cfgDir, "data-*", "alloc", "*", "alloc", "logs", task+"*.std*"))
					logs = append(logs, l...)
				}
				break // every client's data dir is in the same directory
			}
			// The controller on c2 (its state directory), and the member's
			// own log on d1.
			if tk != nil && tk.empty != "" {
				l, _ := filepath.Glob(filepath.Join(tk.empty, "logs", "*.log"))
				logs = append(logs, l...)
			}
			l, _ := filepath.Glob(filepath.Join(base, d1.Name, "db", "mariadbd.log"))
			logs = append(logs, l...)
			for _, l := range logs {
				t.Logf("---- %s (tail)\n%s", l, tailFile(l, 3000))
			}
		}
	})

	tUp := time.Now()
	up := h1.Start(t, bin, "up", "--config", cfgPath, "--dir", dir)
	siteHost := siteName + ":8443" // site.url's
	web := client.HTTPClient()
	// get asks edge (its IP:port) for path as a visitor of the site would.
	get := func(ctx context.Context, edge, path string) (int, string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+edge+path, nil)
		if err != nil {
			return 0, err.Error()
		}
		req.Host = siteHost
		resp, err := web.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp.StatusCode, string(b)
	}
	edge1, edge2 := e1.Addr.String()+":8080", e2.Addr.String()+":8080"
	for deadline := time.Now().Add(10 * time.Minute); ; time.Sleep(500 * time.Millisecond) {
		if code, _ := get(context.Background(), edge1, "/"); code == http.StatusOK {
			break
		}
		select {
		case <-up.Done():
			t.Fatalf("up exited before the site answered: %v", up.Err())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the site never answered 200 through the edge on e1")
		}
	}
	t.Logf("up to the first 200 with every serving role on Nomad: %s (the topology and Nomad before it: %s)",
		time.Since(tUp).Round(time.Millisecond), tUp.Sub(t0).Round(time.Millisecond))

	tok, err := os.ReadFile(filepath.Join(dir, "secrets", "api-token"))
	if err != nil {
		t.Fatal(err)
	}
	ctl := api.NewClient("http://" + apiFwd)
	ctl.Token = strings.TrimSpace(string(tok))
	var st *api.Status
	eventually(t, 3*time.Minute, "up ready (dns started after the edges), two nodes in service, both edges healthy on their hosts, the database synced", func() bool {
		if st, err = ctl.Status(context.Background()); err != nil {
			t.Fatalf("status through the forward: %v", err)
		}
		k := 0
		for _, nd := range st.Nodes {
			if nd.State == api.NodeInService {
				k++
			}
		}
		healthy := 0
		for _, e := range st.Edges {
			if e.Healthy {
				healthy++
			}
		}
		return st.Ready && st.DNS != nil && st.DNS.State == "up" && k == 2 && healthy == 2 && st.DB != nil && len(st.DB.Members) == 1 && st.DB.Members[0].State == api.DBSynced
	})
	var got []string
	for _, e := range st.Edges {
		got = append(got, fmt.Sprintf("%s %s on %s pid %d", e.ID, e.Addr, e.Host, e.PID))
	}
	if want := []string{"edge-1 " + edge1 + " on e1 pid 0", "edge-2 " + edge2 + " on e2 pid 0"}; !slices.Equal(got, want) {
		t.Errorf("status edges %q, want %q (on their Nomad clients, no pid of the controller's)", got, want)
	}
	if st.Files == nil || st.Redis == nil || st.DNS == nil {
		t.Fatalf("status files %+v, redis %+v, dns %+v: want all three", st.Files, st.Redis, st.DNS)
	}
	for _, r := range []struct {
		role, host string
		pid        int
	}{{"files", st.Files.Host, st.Files.PID}, {"redis", st.Redis.Host, st.Redis.PID}, {"dns", st.DNS.Host, st.DNS.PID}} {
		if r.host != r1.Name || r.pid != 0 {
			t.Errorf("status %s on %q pid %d, want on %s (scheduler.role_meta)", r.role, r.host, r.pid, r1.Name)
		}
	}
	if m := st.DB.Members[0]; m.Host != d1.Name {
		t.Errorf("status db member on %q, want %s", m.Host, d1.Name)
	}
	// The edges, started as root by raw_exec, run as the role user once
	// they have read their spec (their port needs no root).
	role, err := user.Lookup("scalepress")
	if err != nil {
		t.Fatal(err)
	}
	if uids := roleUIDs(t, "edge"); len(uids) != 2 {
		t.Errorf("%d edge processes on Nomad, want 2: %v", len(uids), uids)
	} else {
		for pid, uid := range uids {
			if uid != role.Uid {
				t.Errorf("edge pid %d runs as uid %s, want scalepress (%s)", pid, uid, role.Uid)
			}
		}
	}
	dnsAddr := st.DNS.Addr
	if a := lookupA(t, client, dnsAddr, "example.test."); !slices.Equal(a, []string{e1.Addr.String()}) {
		t.Fatalf("A example.test. from dns on %s: %v, want edge-1's [%s]", st.DNS.Host, a, e1.Addr)
	}

	checkHTTPSAcrossHosts(t, httpsCheck{client: client, nm: nm, ctl: ctl, ca: ca, tlsDir: tlsDir, first: leaf,
		edges: []string{e1.Addr.String() + ":8443", e2.Addr.String() + ":8443"}, jobs: []string{"sp-mh-edges-edge-edge-1", "sp-mh-edges-edge-edge-2"}})

	// Load through e1's edge: uncached searches, each a term of its own
	// that PHP writes into the page, and the home page.
	load := func(ctx context.Context, edge string, tl *tally, w int) {
		for i := 0; ctx.Err() == nil; i++ {
			term := fmt.Sprintf("nomadedge%dx%dx%d", time.Now().UnixNano()%1e6, w, i)
			path, want := "/?s="+term, term
			if i%4 == 3 {
				path, want = "/", "edges on nomad" // the site's title
			}
			code, body := get(ctx, edge, path)
			if ctx.Err() != nil {
				return
			}
			tl.mu.Lock()
			if code == http.StatusOK && strings.Contains(body, want) {
				tl.ok++
			} else {
				tl.fail++
				if len(tl.fails) < 5 {
					tl.fails = append(tl.fails, fmt.Sprintf("%s: %d %.200q", path, code, body))
				}
			}
			tl.mu.Unlock()
		}
	}
	// run loads edge for d with three workers; start is called once the
	// load runs, tick every 500 ms until d is over.
	run := func(edge string, d time.Duration, start, tick func()) *tally {
		tl := &tally{}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for w := range 3 {
			wg.Go(func() { load(ctx, edge, tl, w) })
		}
		defer func() { cancel(); wg.Wait() }()
		start()
		for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
			tick()
		}
		cancel()
		wg.Wait()
		return tl
	}
	nothing := func() {}
	warm := run(edge1, 3*time.Second, nothing, nothing)
	if warm.fail > 0 || warm.ok == 0 {
		t.Fatalf("before the kill, through e1: %d answered, %d failed: %q", warm.ok, warm.fail, warm.fails)
	}

	// The controller's host lost (its link cut; the controller runs on,
	// alone): nothing of what serves is there.
	var dnsAnswers, dnsWrong int
	killed := run(edge1, servedWithoutController, func() {
		if err := n.Cut(h1); err != nil {
			t.Fatal(err)
		}
		cut = append(cut, h1)
	}, func() {
		dnsAnswers++
		if a := lookupA(t, client, dnsAddr, "example.test."); !slices.Equal(a, []string{e1.Addr.String()}) {
			dnsWrong++
		}
	})
	sctx, scancel := context.WithTimeout(context.Background(), 3*time.Second)
	if _, err := ctl.Status(sctx); err == nil {
		t.Fatal("the controller still answers with its host cut")
	}
	scancel()
	t.Logf("%s after the controller's host was cut, through e1: %d answered (searches answered by PHP, home pages), %d failed %q; dns %d of %d answers with edge-1",
		servedWithoutController, killed.ok, killed.fail, killed.fails, dnsAnswers-dnsWrong, dnsAnswers)
	if killed.fail > 0 {
		t.Errorf("%d of %d requests failed through e1 with the controller's host cut: %q", killed.fail, killed.ok+killed.fail, killed.fails)
	}
	if killed.ok < 30 {
		t.Errorf("only %d requests answered in %s with the controller's host cut: the load did not run", killed.ok, servedWithoutController)
	}
	if dnsWrong > 0 {
		t.Errorf("dns answered %d of %d times without edge-1's address with the controller's host cut", dnsWrong, dnsAnswers)
	}

	// The edge on e1 killed too: Nomad restarts it in place, and with no
	// controller to poll it serves the node set it kept in its allocation.
	pid := edgePID(t, edge1)
	if pid == 0 {
		t.Fatalf("no edge process serving %s", edge1)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	tKill := time.Now()
	for i := 0; ; i++ {
		term := fmt.Sprintf("restarted%d", i)
		code, body := get(context.Background(), edge1, "/?s="+term)
		if code == http.StatusOK && strings.Contains(body, term) {
			break
		}
		if time.Since(tKill) > edgeRestartWithin {
			t.Fatalf("%s after the edge on e1 was killed (no controller), a search through it: %d %.200q", edgeRestartWithin, code, body)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if p := edgePID(t, edge1); p == pid || p == 0 {
		t.Errorf("the edge on e1 runs as pid %d after its kill (was %d): not restarted", p, pid)
	}
	t.Logf("the edge on e1 killed with no controller: answering searches again %s later (Nomad restarted it with its kept node set)", time.Since(tKill).Round(10*time.Millisecond))

	// e1's host cut, still without a controller: dns stops answering with
	// edge-1 (its own health checks) and answers with edge-2, the other
	// region's; the site keeps answering through e2.
	var dropped time.Duration
	var tCut time.Time
	var lastDNS []string
	cutLoad := run(edge2, dnsDropsLostEdge, func() {
		tCut = time.Now()
		if err := n.Cut(e1); err != nil {
			t.Fatal(err)
		}
		cut = append(cut, e1)
	}, func() {
		lastDNS = lookupA(t, client, dnsAddr, "example.test.")
		if dropped == 0 && slices.Equal(lastDNS, []string{e2.Addr.String()}) {
			dropped = time.Since(tCut)
		}
	})
	if dropped == 0 || !slices.Equal(lastDNS, []string{e2.Addr.String()}) {
		t.Errorf("%s after e1's cut, dns answers %v, want edge-2's [%s] only", dnsDropsLostEdge, lastDNS, e2.Addr)
	}
	t.Logf("e1 cut: dns answered with edge-2 only %s after the cut; through e2 meanwhile %d answered, %d failed %q",
		dropped.Round(10*time.Millisecond), cutLoad.ok, cutLoad.fail, cutLoad.fails)
	if cutLoad.fail > 0 || cutLoad.ok == 0 {
		t.Errorf("through e2 while e1 was cut: %d answered, %d failed: %q", cutLoad.ok, cutLoad.fail, cutLoad.fails)
	}
	if err := n.Heal(e1); err != nil {
		t.Fatal(err)
	}
	cut = slices.DeleteFunc(cut, func(h *hosts.Host) bool { return h == e1 })

	// Issue 12's take-over: a controller on c2, from an empty directory,
	// adopts all this; then the old one's link heals and it stands down.
	tk = &takeover{t: t, n: n, nm: nm, bin: bin, host: c2, old: h1, vip: vip, base: base, dir: dir, etc: etc,
		cfgPath: cfgPath, job: "sp-mh-edges", ctl: ctl, oldUp: up, db: filepath.Join(base, d1.Name)}
	tk.run(func() func() *tally {
		tl := &tally{}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for w := range 3 {
			wg.Go(func() { load(ctx, edge2, tl, w) })
		}
		return func() *tally { cancel(); wg.Wait(); return tl }
	}, func() {
		cut = slices.DeleteFunc(cut, func(h *hosts.Host) bool { return h == h1 })
	})
}

// httpsCheck is what checkHTTPSAcrossHosts needs of TestServingWithoutController.
type httpsCheck struct {
	client *hosts.Host
	nm     *hosts.Nomad
	ctl    *api.Client
	ca     *hosts.CA
	tlsDir string     // the controller's certificate files
	first  hosts.Leaf // what tlsDir holds at up
	edges  []string   // each region's edge's HTTPS address
	jobs   []string   // their Nomad jobs
}

// checkHTTPSAcrossHosts: HTTPS through each region's edge on Nomad (ADR
// 0033), from the client namespace, verified against the test's CA for the
// site's name, with HSTS; status names the certificate. Then the files are
// replaced on the controller's host (a new key, a new serial) under HTTPS
// load through both edges, on kept connections and new ones: no request
// fails, and each edge serves the new certificate within certRenewedWithin.
// The job Nomad holds has no PEM; the variable the controller wrote does.
func checkHTTPSAcrossHosts(t *testing.T, k httpsCheck) {
	t.Helper()
	httpsTo := func(edge string, keepAlive bool) *http.Client {
		return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return k.client.DialContext(ctx, network, edge)
			},
			TLSClientConfig: &tls.Config{RootCAs: k.ca.Pool}, ForceAttemptHTTP2: true, DisableKeepAlives: !keepAlive}}
	}
	// get asks for path over HTTPS by the site's name (the chain verified
	// against the CA), with site.url's Host: the status, the body, the
	// HSTS header and the serial of the certificate.
	get := func(ctx context.Context, c *http.Client, path string) (int, string, string, string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+siteName+":8443"+path, nil)
		if err != nil {
			return 0, err.Error(), "", ""
		}
		resp, err := c.Do(req)
		if err != nil {
			return 0, err.Error(), "", ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp.StatusCode, string(b), resp.Header.Get("Strict-Transport-Security"), resp.TLS.PeerCertificates[0].SerialNumber.String()
	}
	firstSerial := k.first.Pair.Leaf.SerialNumber.String()
	for i, edge := range k.edges {
		term := fmt.Sprintf("httpsedge%d", i)
		code, body, hsts, serial := get(context.Background(), httpsTo(edge, false), "/?s="+term)
		if code != http.StatusOK || !strings.Contains(body, term) || hsts != "max-age=3600" || serial != firstSerial {
			t.Fatalf("HTTPS search through %s: %d, term in page %v, HSTS %q, serial %s (want 200, the term, max-age=3600, %s): %.200q",
				edge, code, strings.Contains(body, term), hsts, serial, firstSerial, body)
		}
	}
	st, err := k.ctl.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.TLS == nil || st.TLS.HTTPSURL != "https://"+siteName+":8443" || len(st.TLS.Certificates) != 1 ||
		!slices.Equal(st.TLS.Certificates[0].Names, []string{siteName}) || st.TLS.Certificates[0].Source != "file" {
		t.Errorf("status tls %+v: want https://%s:8443 and one file certificate for %s", st.TLS, siteName, siteName)
	}

	// The renewal, under load: two workers per edge, one on a kept
	// connection (HTTP/2), one on a new connection each request.
	next := k.ca.Issue(t, "site-2", []string{siteName}, nil)
	nextSerial := next.Pair.Leaf.SerialNumber.String()
	tl := &tally{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w, edge := range []string{k.edges[0], k.edges[1], k.edges[0], k.edges[1]} {
		c := httpsTo(edge, w < 2)
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				term := fmt.Sprintf("renewal%dx%d", w, i)
				code, body, _, _ := get(ctx, c, "/?s="+term)
				if ctx.Err() != nil {
					return
				}
				tl.mu.Lock()
				if code == http.StatusOK && strings.Contains(body, term) {
					tl.ok++
				} else {
					tl.fail++
					if len(tl.fails) < 5 {
						tl.fails = append(tl.fails, fmt.Sprintf("%s: %d %.200q", edge, code, body))
					}
				}
				tl.mu.Unlock()
			}
		})
	}
	time.Sleep(time.Second) // the load runs before the files change
	tRenew := time.Now()
	writeLeaf(t, k.tlsDir, next)
	renewed := map[string]time.Duration{}
	var last []string
	for len(renewed) < len(k.edges) && time.Since(tRenew) < certRenewedWithin {
		time.Sleep(250 * time.Millisecond)
		last = last[:0]
		for _, edge := range k.edges {
			_, _, _, serial := get(context.Background(), httpsTo(edge, false), "/")
			last = append(last, edge+" "+serial)
			if _, ok := renewed[edge]; !ok && serial == nextSerial {
				renewed[edge] = time.Since(tRenew)
			}
		}
	}
	time.Sleep(time.Second) // and runs on after the swap
	cancel()
	wg.Wait()
	t.Logf("certificate files replaced on the controller's host: the new certificate served %v after (by edge); meanwhile over HTTPS %d answered, %d failed %q",
		renewed, tl.ok, tl.fail, tl.fails)
	if len(renewed) != len(k.edges) {
		t.Errorf("%s after the certificate files were replaced, the edges serve %q, want serial %s everywhere", certRenewedWithin, last, nextSerial)
	}
	if tl.fail > 0 || tl.ok == 0 {
		t.Errorf("HTTPS through the edges while the certificate was renewed: %d answered, %d failed: %q", tl.ok, tl.fail, tl.fails)
	}

	// The key travels in the variable, never in the job.
	keyPEM, err := os.ReadFile(next.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	keyLine := strings.Split(string(keyPEM), "\n")[1] // base64 of the key
	for _, job := range k.jobs {
		var raw json.RawMessage
		if err := k.nm.Get(context.Background(), "/v1/job/"+job, &raw); err != nil {
			t.Fatalf("GET the job %s from Nomad: %v", job, err)
		}
		if strings.Contains(string(raw), "PRIVATE KEY") || strings.Contains(string(raw), keyLine) || !strings.Contains(string(raw), "tls_key_0") {
			t.Errorf("the job %s as Nomad holds it: a PEM key in it %v, its item named %v; want none, named",
				job, strings.Contains(string(raw), "PRIVATE KEY") || strings.Contains(string(raw), keyLine), strings.Contains(string(raw), "tls_key_0"))
		}
		var v struct{ Items map[string]string }
		if err := k.nm.Get(context.Background(), "/v1/var/nomad/jobs/"+job, &v); err != nil {
			t.Fatalf("GET the variable of %s: %v", job, err)
		}
		if v.Items["tls_key_0"] != string(keyPEM) {
			t.Errorf("the variable of %s does not hold the renewed key (%d bytes)", job, len(v.Items["tls_key_0"]))
		}
	}
}
