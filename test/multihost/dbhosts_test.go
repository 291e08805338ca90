package multihost

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/google/go-cmp/cmp"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/test/hosts"
)

// The bounds TestDBHostsAcrossHosts asserts (docs/multi-host.md, "Galera
// across hosts through the controller").
const (
	// maxSitePause: the longest time without an acknowledged post through
	// WordPress when the writer's host is cut.
	maxSitePause = 10 * time.Second
	// maxSiteRejoin: from the link back to the member synced again.
	maxSiteRejoin = 90 * time.Second
)

// dbHostsConfig: the controller, edge, files, redis and the db router on
// h1; the nodes on the Nomad clients; the three Galera members on d1..d3
// through their db-agents (db.hosts).
func dbHostsConfig(h1, apiFwd string, db []*hosts.Host, base string, nomadAgents bool) string {
	var dbh strings.Builder
	for _, h := range db {
		fmt.Fprintf(&dbh, "    - {id: %s, addr: %s, agent: %q, dir: %s}\n",
			h.Name, h.Addr, h.Addr.String()+":"+agentPort, filepath.Join(base, h.Name, "db"))
	}
	agents, nodeMeta, router, perHost := "operator", "", h1+":3306", false
	if nomadAgents {
		agents, nodeMeta = "nomad", "  node_meta:\n    scalepress_role: node\n"
		router, perHost = "127.0.0.1:3306", true // a router on every node host
	}
	return fmt.Sprintf(`site:
  title: db hosts site
api:
  addr: %[1]s:9090
  allowed_hosts: [%[2]q]
edges:
  - id: edge-1
    region: default
    addr: %[1]s:8080
nodes:
  count: 2
  php_children: 3
  slow_start: 2s
autoscaling:
  enabled: false
db:
  members: 3
  ip_base: 127.0.2.0
  router: %[6]s
  router_per_host: %[7]v
  buffer_pool: 64M
  gcache_size: 64M
  hosts:
%[3]s  agents: %[4]s
redis:
  addr: %[1]s:6379
wordpress:
  cron_interval: 10s
  block_external_http: true
scheduler:
  kind: nomad
  address: http://%[1]s:4646
  job: sp-mh-dbnodes
  cpu: 100
  memory_mb: 256
%[5]sfiles:
  addr: %[1]s:8081
`, h1, apiFwd, dbh.String(), agents, nodeMeta, router, perHost)
}

// TestDBHostsAcrossHosts is the controller's db.hosts path end to end
// (issue 12): h1 runs the Nomad server and `scalepress up` (controller,
// edge, files, redis, the db router); h2 and h3 are Nomad clients running
// the WordPress nodes; d1..d3 each run a db-agent (started by the test from
// the spec `up` writes) and, through it, one Galera member. From the
// client namespace only: the site answers; status shows the three members
// synced, each with its host. Then, under uncached load (searches, and
// posts published through WordPress), the host of the member the router
// sends the writes to is cut: the posts pause at most maxSitePause, every
// acknowledged post is on every member afterwards, and after the heal the
// member rejoins by IST within maxSiteRejoin, without a restart.
func TestDBHostsAcrossHosts(t *testing.T) { testDBHosts(t, false) }

// TestDBAgentsOnNomad is TestDBHostsAcrossHosts with the db-agents run by
// the controller as a Nomad job (db.agents: nomad) and a db router beside
// WordPress on every node host (db.router_per_host): d1..d3 are Nomad
// clients too, named DB hosts by node meta scalepress_db; the nodes run
// only where scalepress_role is node. Each agent runs on its own host, its
// spec (its key) in a variable, never in the job; the writer sees the
// site's connections come from the node hosts, not from h1. The writer's host is cut
// until Nomad declares that client down: once healed, the agent's
// allocation carries on (the same one, its member never restarted) and the
// member rejoins by IST. `down` stops the members, the job and deletes the
// variables.
func TestDBAgentsOnNomad(t *testing.T) { testDBHosts(t, true) }

func testDBHosts(t *testing.T, nomadAgents bool) {
	bin := os.Getenv("SCALEPRESS_BIN")
	if bin == "" {
		t.Fatal("SCALEPRESS_BIN must name the scalepress binary (make multihost sets it)")
	}
	hosts.LockE2E(t)
	t0 := time.Now()
	n := hosts.New(t, hosts.Config{Hosts: []string{"h1", "h2", "h3", "d1", "d2", "d3"}, Client: true, Subnet: hosts.DefaultSubnet})
	h1, client := n.Host(t, "h1"), n.Client
	nodeHosts := []*hosts.Host{n.Host(t, "h2"), n.Host(t, "h3")}
	dbHosts := []*hosts.Host{n.Host(t, "d1"), n.Host(t, "d2"), n.Host(t, "d3")}

	base, err := os.MkdirTemp("", "sp-mh-dbhosts-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	meta := map[string]map[string]string{}
	for _, h := range append(slices.Clone(nodeHosts), dbHosts...) {
		if err := os.Mkdir(filepath.Join(base, h.Name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	clients := nodeHosts
	for _, h := range nodeHosts {
		meta[h.Name] = map[string]string{"scalepress_dir": filepath.Join(base, h.Name), "scalepress_role": "node"}
	}
	if nomadAgents {
		clients = append(slices.Clone(nodeHosts), dbHosts...)
		for _, h := range dbHosts {
			meta[h.Name] = map[string]string{"scalepress_db": h.Name}
		}
	}
	nm := hosts.StartNomad(t, n, h1, clients, hosts.NomadOptions{Meta: meta})
	const dbJob = "sp-mh-dbnodes-db"

	dir := filepath.Join(base, "controller")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	apiFwd := client.Forward(t, h1.Addr.String()+":9090")
	cfgPath := filepath.Join(dir, "scalepress.yaml")
	if err := os.WriteFile(cfgPath, []byte(dbHostsConfig(h1.Addr.String(), apiFwd, dbHosts, base, nomadAgents)), 0o644); err != nil {
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
			logs, _ := filepath.Glob(filepath.Join(dir, "logs", "*.log"))
			for _, h := range dbHosts {
				logs = append(logs, filepath.Join(base, h.Name, "db", "mariadbd.log"))
			}
			for _, l := range logs {
				t.Logf("---- %s (tail)\n%s", l, tailFile(l, 3000))
			}
		}
	})

	tUp := time.Now()
	up := h1.Start(t, bin, "up", "--config", cfgPath, "--dir", dir)
	// `up` writes each agent's spec, then waits for the agents: the
	// operator's part, here the test's, is to run them on their hosts.
	agents := map[string]*hosts.Proc{}
	for _, h := range dbHosts {
		if nomadAgents {
			break // the controller's job runs them
		}
		spec := filepath.Join(dir, "run", "specs", "db-agent-"+h.Name+".json")
		for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
			if _, err := os.Stat(spec); err == nil {
				break
			}
			select {
			case <-up.Done():
				t.Fatalf("up exited before it wrote %s: %v", spec, up.Err())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("up wrote no %s", spec)
			}
		}
		agents[h.Name] = h.Start(t, bin, "db-agent", "--spec", spec)
	}

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
	for deadline := time.Now().Add(10 * time.Minute); ; time.Sleep(500 * time.Millisecond) {
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
	}
	t.Logf("up to the first 200 with the members on d1..d3: %s (the topology and Nomad before it: %s)",
		time.Since(tUp).Round(time.Millisecond), tUp.Sub(t0).Round(time.Millisecond))
	if code, body := get("/?s=dbhosts-first"); code != http.StatusOK {
		t.Fatalf("uncached search through the edge: %d %.300s", code, body)
	}

	tok, err := os.ReadFile(filepath.Join(dir, "secrets", "api-token"))
	if err != nil {
		t.Fatal(err)
	}
	ctl := api.NewClient("http://" + apiFwd)
	ctl.Token = strings.TrimSpace(string(tok))
	waitDB := func(what string, timeout time.Duration, ok func(*api.DBStatus) bool) *api.DBStatus {
		t.Helper()
		var last *api.DBStatus
		for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
			st, err := ctl.Status(context.Background())
			if err != nil {
				t.Fatalf("status through the forward: %v", err)
			}
			if last = st.DB; last != nil && ok(last) {
				return last
			}
		}
		b, _ := json.Marshal(last)
		t.Fatalf("not within %v: %s; db status %s", timeout, what, b)
		return nil
	}
	synced := func(db *api.DBStatus) bool {
		if len(db.Members) != 3 {
			return false
		}
		for _, m := range db.Members {
			if m.State != api.DBSynced || m.ClusterSize != 3 {
				return false
			}
		}
		return true
	}
	st := waitDB("three members synced", time.Minute, synced)
	for i, m := range st.Members {
		wantAddr := dbHosts[i].Addr.String() + ":3306"
		if m.Host != dbHosts[i].Name || m.Addr != wantAddr {
			t.Errorf("%s: host %q addr %s, want %s at %s", m.ID, m.Host, m.Addr, dbHosts[i].Name, wantAddr)
		}
	}
	if nomadAgents {
		checkAgentJob(t, nm, dbJob, dir, dbHosts)
	}
	writer := st.Writer
	if writer == "" {
		t.Fatalf("no writer in status: %+v", st)
	}
	var victim *hosts.Host
	var victimAddr string
	for i, m := range st.Members {
		if m.ID == writer {
			victim, victimAddr = dbHosts[i], m.Addr
		}
	}
	t.Logf("members synced on %v; the router writes to %s on %s", []string{st.Members[0].Host, st.Members[1].Host, st.Members[2].Host}, writer, victim.Name)

	// Load: uncached searches and posts published through WordPress.
	adminPW, err := os.ReadFile(filepath.Join(dir, "secrets", "admin-password"))
	if err != nil {
		t.Fatal(err)
	}
	dbPW, err := os.ReadFile(filepath.Join(dir, "secrets", "db-password"))
	if err != nil {
		t.Fatal(err)
	}
	memberDB := func(addr string) *sql.DB {
		cfg := mysql.NewConfig()
		cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = "wordpress", strings.TrimSpace(string(dbPW)), "tcp", addr, "wordpress"
		cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = 3*time.Second, 30*time.Second, 30*time.Second
		cfg.DialFunc = client.DialContext
		cfg.Params = map[string]string{"wsrep_sync_wait": "1"}
		conn, err := mysql.NewConnector(cfg)
		if err != nil {
			t.Fatal(err)
		}
		db := sql.OpenDB(conn)
		db.SetMaxIdleConns(0)
		t.Cleanup(func() { db.Close() })
		return db
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := startSitePoster(t, client, site, strings.TrimSpace(string(adminPW)))
	defer p.finish()
	s := &searcher{web: web, site: site}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for i := range 2 {
		wg.Go(func() { s.run(ctx, i) })
	}
	p.waitAcks(t, 5, 2*time.Minute)

	// The victim is on the path: it commits the site's posts.
	vdb := memberDB(victimAddr)
	if nomadAgents {
		checkHostRouters(t, nm, dbJob, vdb, h1, nodeHosts)
	}
	c0, n0 := localCommits(t, vdb), p.count()
	p.waitAcks(t, n0+3, time.Minute)
	if committed := localCommits(t, vdb) - c0; committed < 3 {
		t.Fatalf("%s committed %d transactions of its own while %d posts were acknowledged: it is not the writer", writer, committed, p.count()-n0)
	} else {
		t.Logf("%s on %s committed %d transactions while %d posts were acknowledged before the cut", writer, victim.Name, committed, p.count()-n0)
	}
	vdb.Close()

	// Cut the writer's host.
	var victimAlloc string
	if nomadAgents {
		victimAlloc = runningAlloc(t, nm, dbJob, "db-"+victim.Name)
	}
	logFile := filepath.Join(base, victim.Name, "db", "mariadbd.log")
	logOff := fileSize(logFile)
	before := p.count()
	cutAt := time.Now()
	if err := n.Cut(victim); err != nil {
		t.Fatal(err)
	}
	t.Logf("cut %s", victim.Name)
	p.waitAcks(t, before+10, 2*time.Minute)
	st = waitDB("two members synced, the victim out", time.Minute, func(db *api.DBStatus) bool {
		k := 0
		for _, m := range db.Members {
			if m.State == api.DBSynced && m.ClusterSize == 2 {
				k++
			}
		}
		return k == 2 && db.Writer != "" && db.Writer != writer
	})
	t.Logf("writer after the cut: %s; status shows the cut member out %s after the cut", st.Writer, time.Since(cutAt).Round(100*time.Millisecond))
	time.Sleep(3 * time.Second) // posts go on through the cut
	pause, from := p.maxGap(cutAt)
	t.Logf("posts: longest pause after the cut %s (from %+.2fs after the cut), bound %s; %d acknowledged since the cut",
		pause.Round(10*time.Millisecond), from.Sub(cutAt).Seconds(), maxSitePause, p.count()-before)
	if pause > maxSitePause {
		t.Errorf("posts paused %s after the writer's host was cut, more than %s", pause.Round(10*time.Millisecond), maxSitePause)
	}

	if nomadAgents {
		// Held until Nomad takes the client for down: its allocation must
		// outlive that (max_client_disconnect), or its replacement would
		// kill the member when the link is back.
		eventually(t, 2*time.Minute, "Nomad declares "+victim.Name+" down", func() bool {
			var nodes []struct{ Name, Status string }
			if err := nm.Get(context.Background(), "/v1/nodes", &nodes); err != nil {
				return false
			}
			for _, nd := range nodes {
				if nd.Name == victim.Name {
					return nd.Status == "down" || nd.Status == "disconnected"
				}
			}
			return false
		})
		t.Logf("Nomad took %s for down %s after the cut", victim.Name, time.Since(cutAt).Round(100*time.Millisecond))
	}

	// Heal: the member rejoins by itself, by IST.
	healAt := time.Now()
	if err := n.Heal(victim); err != nil {
		t.Fatal(err)
	}
	st = waitDB("the cut member synced again", maxSiteRejoin, synced)
	t.Logf("%s synced %s after the heal", writer, time.Since(healAt).Round(100*time.Millisecond))
	tail := fileSince(t, logFile, logOff)
	if !strings.Contains(tail, "IST received") {
		t.Errorf("%s's log since the cut has no \"IST received\":\n%s", writer, lastLines(tail, 30))
	}
	if strings.Contains(tail, "--role 'joiner'") {
		t.Errorf("%s rejoined by SST, not IST:\n%s", writer, lastLines(tail, 30))
	}
	for _, m := range st.Members {
		if m.ID == writer && m.Starts != 1 {
			t.Errorf("%s was started %d times: it should have rejoined by itself, without a restart", writer, m.Starts)
		}
	}
	if nomadAgents {
		eventually(t, time.Minute, "the agent's allocation on "+victim.Name+" running again", func() bool {
			return runningAllocOK(nm, dbJob, "db-"+victim.Name) != ""
		})
		if a := runningAlloc(t, nm, dbJob, "db-"+victim.Name); a != victimAlloc {
			t.Errorf("the agent on %s runs as allocation %s after the heal, was %s: Nomad replaced it", victim.Name, a, victimAlloc)
		}
	}
	p.waitAcks(t, p.count()+3, time.Minute) // posts go on after the rejoin
	cancel()
	wg.Wait()
	acked, errs := p.finish()
	ok, failed := s.counts()
	t.Logf("%d posts acknowledged, %d failed post requests (%.300q); searches: %d answered 200, %d did not",
		len(acked), len(errs), errs, ok, failed)
	// Every acknowledged post is on every member.
	in := strings.Trim(strings.Join(strings.Fields(fmt.Sprint(acked)), ","), "[]")
	for _, m := range st.Members {
		db := memberDB(m.Addr)
		var k int
		if err := db.QueryRow("SELECT COUNT(*) FROM wp_posts WHERE post_status = 'publish' AND ID IN (" + in + ")").Scan(&k); err != nil {
			t.Fatalf("%s: %v", m.ID, err)
		}
		if k != len(acked) {
			t.Errorf("%s on %s has %d of the %d acknowledged posts", m.ID, m.Host, k, len(acked))
		}
	}
	for name, a := range agents {
		select {
		case <-a.Done():
			t.Errorf("the db-agent on %s exited: %v", name, a.Err())
		default:
		}
	}
	if !nomadAgents {
		return
	}
	if out, err := cli("down"); err != nil {
		t.Fatalf("down: %v: %s", err, out)
	}
	select {
	case <-up.Done():
	case <-time.After(2 * time.Minute):
		t.Fatal("the controller still runs after down")
	}
	eventually(t, time.Minute, "no allocation of the db-agent job running after down", func() bool {
		for _, h := range dbHosts {
			if runningAllocOK(nm, dbJob, "db-"+h.Name) != "" {
				return false
			}
		}
		return true
	})
	for _, h := range dbHosts {
		var v any
		if err := nm.Get(context.Background(), "/v1/var/nomad/jobs/"+dbJob+"/db-"+h.Name, &v); err == nil || !strings.Contains(err.Error(), "404") {
			t.Errorf("the variable of %s's agent after down: %v", h.Name, err)
		}
	}
}

// checkHostRouters: a router runs on each node host, and the writer's
// WordPress connections come from the node hosts themselves (their
// routers), none through h1.
func checkHostRouters(t *testing.T, nm *hosts.Nomad, dbJob string, writer *sql.DB, h1 *hosts.Host, nodeHosts []*hosts.Host) {
	t.Helper()
	job := strings.TrimSuffix(dbJob, "-db") + "-dbrouter"
	var allocs []nomadAlloc
	if err := nm.Get(context.Background(), "/v1/job/"+job+"/allocations", &allocs); err != nil {
		t.Fatal(err)
	}
	var on []string
	for _, a := range allocs {
		if a.ClientStatus == "running" {
			on = append(on, a.NodeName)
		}
	}
	slices.Sort(on)
	var want []string
	for _, h := range nodeHosts {
		want = append(want, h.Name)
	}
	if diff := cmp.Diff(want, on); diff != "" {
		t.Errorf("routers running on (-want +got):\n%s", diff)
	}
	from := map[string]int{}
	for range 20 {
		rows, err := writer.Query("SELECT SUBSTRING_INDEX(host, ':', 1) FROM information_schema.processlist WHERE user = 'wordpress'")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var ip string
			rows.Scan(&ip)
			from[ip]++
		}
		rows.Close()
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("the writer's wordpress connections by client address (20 samples, the test's own included): %v", from)
	seen := 0
	for _, h := range nodeHosts {
		seen += from[h.Addr.String()]
	}
	if seen == 0 {
		t.Errorf("no WordPress connection from a node host on the writer: %v", from)
	}
	if from[h1.Addr.String()] > 0 {
		t.Errorf("%d WordPress connections through h1 (%s): the nodes' SQL crosses the controller's host", from[h1.Addr.String()], h1.Addr)
	}
}

// nomadAlloc is the part of an allocation the test reads.
type nomadAlloc struct {
	ID, TaskGroup, NodeName, ClientStatus, DesiredStatus string
}

// runningAllocOK is the id of group's running allocation of job, "" if none.
func runningAllocOK(nm *hosts.Nomad, job, group string) string {
	var allocs []nomadAlloc
	if err := nm.Get(context.Background(), "/v1/job/"+job+"/allocations", &allocs); err != nil {
		return ""
	}
	for _, a := range allocs {
		if a.TaskGroup == group && a.ClientStatus == "running" && a.DesiredStatus == "run" {
			return a.ID
		}
	}
	return ""
}

func runningAlloc(t *testing.T, nm *hosts.Nomad, job, group string) string {
	t.Helper()
	id := runningAllocOK(nm, job, group)
	if id == "" {
		var allocs []nomadAlloc
		err := nm.Get(context.Background(), "/v1/job/"+job+"/allocations", &allocs)
		t.Fatalf("no running allocation of %s/%s: %+v %v", job, group, allocs, err)
	}
	return id
}

// checkAgentJob: one agent per DB host, each on the Nomad client of that
// name; the job itself carries no agent key (they are in variables).
func checkAgentJob(t *testing.T, nm *hosts.Nomad, job, dir string, dbHosts []*hosts.Host) {
	t.Helper()
	var allocs []nomadAlloc
	if err := nm.Get(context.Background(), "/v1/job/"+job+"/allocations", &allocs); err != nil {
		t.Fatal(err)
	}
	on := map[string]string{}
	for _, a := range allocs {
		if a.ClientStatus == "running" {
			on[a.TaskGroup] = a.NodeName
		}
	}
	want := map[string]string{}
	for _, h := range dbHosts {
		want["db-"+h.Name] = h.Name
	}
	if diff := cmp.Diff(want, on); diff != "" {
		t.Errorf("db-agent allocations by group (-want +got):\n%s", diff)
	}
	var jobDoc map[string]any
	if err := nm.Get(context.Background(), "/v1/job/"+job, &jobDoc); err != nil {
		t.Fatal(err)
	}
	doc, _ := json.Marshal(jobDoc)
	for _, h := range dbHosts {
		var spec api.DBAgentSpec
		if err := api.ReadSpec(filepath.Join(dir, "run", "specs", "db-agent-"+h.Name+".json"), &spec); err != nil {
			t.Fatal(err)
		}
		if spec.Key == "" || strings.Contains(string(doc), spec.Key) {
			t.Errorf("the job document carries %s's agent key (or the spec has none)", h.Name)
		}
	}
	t.Logf("db-agents on Nomad: %v", on)
}

// localCommits is a member's wsrep_local_commits: transactions it
// committed for its own clients.
func localCommits(t *testing.T, db *sql.DB) int64 {
	t.Helper()
	var name string
	var n int64
	if err := db.QueryRow("SHOW GLOBAL STATUS LIKE 'wsrep_local_commits'").Scan(&name, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// searcher sends uncached searches through the edge and counts answers.
type searcher struct {
	web  *http.Client
	site string

	mu       sync.Mutex
	ok, fail int
}

func (s *searcher) run(ctx context.Context, w int) {
	for i := 0; ctx.Err() == nil; i++ {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/?s=dbhosts-%d-%d", s.site, w, i), nil)
		resp, err := s.web.Do(req)
		good := false
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			good = resp.StatusCode == http.StatusOK
		}
		if ctx.Err() != nil {
			return
		}
		s.mu.Lock()
		if good {
			s.ok++
		} else {
			s.fail++
		}
		s.mu.Unlock()
		if !good {
			time.Sleep(100 * time.Millisecond)
		}
	}
}

func (s *searcher) counts() (ok, fail int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ok, s.fail
}

// sitePoster publishes posts through the REST API of the site, one after
// the other, from the client namespace, and keeps those acknowledged (201
// with an id).
type sitePoster struct {
	mu    sync.Mutex
	acked []int
	ackAt []time.Time
	errs  []string
	stop  chan struct{}
	done  chan struct{}
}

func startSitePoster(t *testing.T, client *hosts.Host, site, password string) *sitePoster {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	base := client.HTTPClient()
	web := &http.Client{Transport: base.Transport, Jar: jar, Timeout: 20 * time.Second}
	web.Get(site + "/wp-login.php") // the test cookie
	form := url.Values{"log": {"admin"}, "pwd": {password}, "wp-submit": {"Log In"},
		"redirect_to": {site + "/wp-admin/"}, "testcookie": {"1"}}
	resp, err := web.PostForm(site+"/wp-login.php", form)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if !strings.Contains(resp.Request.URL.Path, "/wp-admin/") {
		t.Fatalf("login landed on %s (%d)", resp.Request.URL, resp.StatusCode)
	}
	resp, err = web.Get(site + "/wp-admin/admin-ajax.php?action=rest-nonce")
	if err != nil {
		t.Fatalf("rest-nonce: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	nonce := strings.TrimSpace(string(b))
	if resp.StatusCode != http.StatusOK || len(nonce) != 10 {
		t.Fatalf("rest-nonce: %d %q", resp.StatusCode, b)
	}
	p := &sitePoster{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for i := 0; ; i++ {
			select {
			case <-p.stop:
				return
			default:
			}
			body, _ := json.Marshal(map[string]string{"title": fmt.Sprintf("dbhosts post %d", i), "content": "x", "status": "publish"})
			req, _ := http.NewRequest(http.MethodPost, site+"/wp-json/wp/v2/posts", strings.NewReader(string(body)))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-WP-Nonce", nonce)
			resp, err := web.Do(req)
			var out struct {
				ID int `json:"id"`
			}
			if err == nil {
				data, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusCreated && json.Unmarshal(data, &out) == nil && out.ID > 0 {
					p.mu.Lock()
					p.acked, p.ackAt = append(p.acked, out.ID), append(p.ackAt, time.Now())
					p.mu.Unlock()
					continue
				}
				err = fmt.Errorf("status %d: %.120s", resp.StatusCode, data)
			}
			p.mu.Lock()
			p.errs = append(p.errs, err.Error())
			p.mu.Unlock()
			time.Sleep(100 * time.Millisecond)
		}
	}()
	return p
}

func (p *sitePoster) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.acked)
}

func (p *sitePoster) waitAcks(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for p.count() < n {
		if time.Now().After(deadline) {
			p.mu.Lock()
			defer p.mu.Unlock()
			t.Fatalf("only %d posts acknowledged in %s (want %d); last errors: %v", len(p.acked), timeout, n, p.errs[max(0, len(p.errs)-3):])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// maxGap is the longest time without an acknowledged post from the last
// acknowledgement before at until now, and where that gap began.
func (p *sitePoster) maxGap(at time.Time) (gap time.Duration, from time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	prev := at
	for i, a := range p.ackAt {
		if a.Before(at) {
			prev = p.ackAt[i]
			continue
		}
		if d := a.Sub(prev); d > gap {
			gap, from = d, prev
		}
		prev = a
	}
	if d := time.Since(prev); d > gap {
		gap, from = d, prev
	}
	return gap, from
}

func (p *sitePoster) finish() (acked []int, errs []string) {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.acked), slices.Clone(p.errs)
}

// fileSince is path's content from off on.
func fileSince(t *testing.T, path string, off int64) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b[min(off, int64(len(b))):])
}
