package multihost

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/galera"
	"github.com/scalepress/scalepress/internal/token"
	"github.com/scalepress/scalepress/test/hosts"
)

// The bounds this test asserts (docs/multi-host.md, "Galera across hosts").
const (
	// maxWritePause: the longest a writer on a surviving member waits for
	// a commit when one host's link is cut (Galera's evs.suspect_timeout
	// of 5 s, then a membership round).
	maxWritePause = 10 * time.Second
	// maxRejoin: from the link back to every member synced.
	maxRejoin = 60 * time.Second
	// maxRecovery: from kill -9 of every mariadbd to every member synced.
	maxRecovery = 3 * time.Minute
)

const agentPort = "7480"

type dbHost struct {
	h      *hosts.Host
	member galera.MemberConfig
	agent  *hosts.Proc
}

// TestGaleraAcrossHosts: three DB hosts each run `scalepress db-agent`; a
// galera.Cluster in the test process (as the controller would) talks to the
// agents and the members only from the client namespace.
func TestGaleraAcrossHosts(t *testing.T) {
	bin := os.Getenv("SCALEPRESS_BIN")
	if bin == "" {
		t.Fatal("SCALEPRESS_BIN must name the scalepress binary (make multihost sets it)")
	}
	hosts.LockE2E(t)
	n := hosts.New(t, hosts.Config{Hosts: []string{"d1", "d2", "d3"}, Client: true, Subnet: hosts.DefaultSubnet})
	client := n.Client

	// The members' directories must be reachable by mysql: not t.TempDir (0700).
	base, err := os.MkdirTemp("", "sp-galera-hosts-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}

	root := token.NewKey()
	var peers, ids []string
	for i, h := range n.Hosts {
		peers = append(peers, h.Addr.String()+":3306")
		ids = append(ids, fmt.Sprintf("db-%d", i+1))
	}
	var dbs []*dbHost
	agents := map[string]galera.Agent{}
	for i, h := range n.Hosts {
		mc := galera.MemberConfig{
			ID: ids[i], Addr: peers[i], Dir: filepath.Join(base, h.Name, ids[i]), BufferPool: "64M",
			UID: -1, GID: -1, Peers: peers, PeerIDs: ids, ClusterName: "scalepress",
			SSTMethod: "rsync", GcacheSize: "64M",
		}
		agentID := h.Name
		spec := api.DBAgentSpec{
			ID: agentID, Addr: h.Addr.String() + ":" + agentPort,
			Key: token.AgentKey(root, token.DB, agentID).Hex(),
			Members: []api.DBAgentMemberSpec{{
				ID: mc.ID, Addr: mc.Addr, Dir: mc.Dir, BufferPool: mc.BufferPool, Peers: peers, PeerIDs: ids,
				ClusterName: mc.ClusterName, SSTMethod: mc.SSTMethod, GcacheSize: mc.GcacheSize,
			}},
		}
		specFile := filepath.Join(base, h.Name+"-agent.json")
		if err := api.WriteSpec(specFile, spec); err != nil {
			t.Fatal(err)
		}
		p := h.Start(t, bin, "db-agent", "--spec", specFile)
		dbs = append(dbs, &dbHost{h: h, member: mc, agent: p})
		agents[mc.ID] = galera.Agent{URL: "http://" + spec.Addr, Token: token.AgentKey(root, token.DB, agentID).Issue(api.DBAgentCaller)}
	}
	for _, d := range dbs {
		waitAgent(t, client, agents[d.member.ID], d)
	}

	rc := galera.DefaultRemoteConfig()
	rc.Agents, rc.Client = agents, client.HTTPClient()
	logs := &recorder{}
	logger := slog.New(logs.handler(t))
	gc := galera.DefaultConfig()
	for _, d := range dbs {
		gc.Members = append(gc.Members, d.member)
	}
	gc.Site = galera.Grant{Database: "wp", User: "wp", Password: "wp-secret", MonitorUser: "monitor", MonitorPassword: "monitor-secret"}
	gc.Dial = client.DialContext
	// newCluster is the controller's part, as `up` makes it.
	newCluster := func() *galera.Cluster {
		remote, err := galera.NewRemote(rc, logger)
		if err != nil {
			t.Fatal(err)
		}
		cl, err := galera.New(gc, remote, logger)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
	cl := newCluster()

	// 1. Bootstrap three members across hosts.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	t0 := time.Now()
	sctx, scancel := context.WithTimeout(ctx, 5*time.Minute)
	err = cl.Start(sctx)
	scancel()
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Logf("a member synced across hosts %v after start", time.Since(t0).Round(time.Millisecond))
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	runCtx, runCancel := context.WithCancel(ctx)
	var runWG sync.WaitGroup
	defer runWG.Wait()
	defer func() { runCancel() }() // the current run's, also after it is replaced
	runWG.Go(func() { cl.Run(runCtx) })
	// Start returns at the first synced member; Run sees the joins through.
	eventually(t, 5*time.Minute, "every member synced with cluster size 3 after start", func() bool {
		for _, v := range cl.Members() {
			if v.State != galera.StateSynced || v.Status == nil || v.Status.ClusterSize != 3 {
				return false
			}
		}
		return true
	})
	t.Logf("3 members synced across hosts %v after start", time.Since(t0).Round(time.Millisecond))

	sqlDB := func(i int) *sql.DB {
		cfg := mysql.NewConfig()
		cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = "wp", "wp-secret", "tcp", peers[i], "wp"
		cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = 2*time.Second, 30*time.Second, 30*time.Second
		cfg.DialFunc = client.DialContext
		cfg.Params = map[string]string{"wsrep_sync_wait": "1"} // reads see every write committed before them
		conn, err := mysql.NewConnector(cfg)
		if err != nil {
			t.Fatal(err)
		}
		db := sql.OpenDB(conn)
		db.SetConnMaxLifetime(10 * time.Second)
		t.Cleanup(func() { db.Close() })
		return db
	}
	db1, db2, db3 := sqlDB(0), sqlDB(1), sqlDB(2)

	// 2. A write through one member is read from another.
	exec(t, db1, "CREATE TABLE acked (id INT PRIMARY KEY, at DATETIME(3) NOT NULL) ENGINE=InnoDB")
	exec(t, db1, "INSERT INTO acked VALUES (0, NOW(3))")
	if got := count(t, db3); got != 1 {
		t.Fatalf("rows read through db-3 after a write through db-1: %d, want 1", got)
	}

	// The router follows members on host addresses: one in the client
	// namespace (as one per node host will be), with the members' list.
	routerSpec := filepath.Join(base, "dbrouter.json")
	routerAddr := client.Addr.String() + ":3306"
	if err := api.WriteSpec(routerSpec, api.RouterSpec{Addr: routerAddr, Members: peers, Mode: "single"}); err != nil {
		t.Fatal(err)
	}
	client.Start(t, bin, "dbrouter", "--spec", routerSpec)
	viaRouter := func() *sql.DB {
		cfg := mysql.NewConfig()
		cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = "wp", "wp-secret", "tcp", routerAddr, "wp"
		cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = 5*time.Second, 30*time.Second, 30*time.Second
		cfg.DialFunc = client.DialContext
		conn, err := mysql.NewConnector(cfg)
		if err != nil {
			t.Fatal(err)
		}
		db := sql.OpenDB(conn)
		db.SetMaxIdleConns(0) // a new connection, and so a new choice of the router, every time
		t.Cleanup(func() { db.Close() })
		return db
	}()
	var node string
	eventually(t, 20*time.Second, "a query through the router", func() bool {
		return viaRouter.QueryRow("SELECT @@wsrep_node_name").Scan(&node) == nil
	})
	if node != "db-1" {
		t.Errorf("the router sent the connection to %s, want db-1 (the first synced member)", node)
	}
	exec(t, viaRouter, "INSERT INTO acked VALUES (2000000, NOW(3))")

	// The Galera timers a cut's pause is made of, as the members run them.
	var opts string
	if err := db1.QueryRow("SELECT @@wsrep_provider_options").Scan(&opts); err != nil {
		t.Fatal(err)
	}
	t.Logf("db-1's membership timers: %s", evsTimers(opts))

	w := &writer{db: db1}
	wg.Go(func() { w.run(ctx) })
	waitAcked(t, w, 20)

	// 3. Cut d3 under writes: d1 and d2 stay primary, writes continue.
	d3 := dbs[2]
	logOff := logSize(t, d3)
	// The survivors' Galera lines, stamped as they appear.
	follow := &logFollower{}
	fctx, fcancel := context.WithCancel(ctx)
	var fwg sync.WaitGroup
	defer func() { fcancel(); fwg.Wait() }() // also when the test stops early
	for _, d := range dbs[:2] {
		off := logSize(t, d)
		fwg.Go(func() { follow.follow(fctx, d.member.ID, logPath(d), off) })
	}
	cutAt := time.Now()
	if err := n.Cut(d3.h); err != nil {
		t.Fatal(err)
	}
	t.Logf("cut %s", d3.h.Name)
	eventually(t, 30*time.Second, "db-1 and db-2 primary with cluster size 2", func() bool {
		for _, v := range cl.Members()[:2] {
			if v.State != galera.StateSynced || v.Status.ClusterSize != 2 {
				return false
			}
		}
		return true
	})
	before := w.count()
	time.Sleep(5 * time.Second) // writes go on through the cut
	if after := w.count(); after <= before {
		t.Fatalf("no write acknowledged in 5 s after the cut (%d before, %d after)", before, after)
	}
	// A write through the other survivor, and one through the router.
	exec(t, db2, "INSERT INTO acked VALUES (1000000, NOW(3))")
	exec(t, viaRouter, "INSERT INTO acked VALUES (2000001, NOW(3))")
	pause := w.maxGapSince(cutAt)
	time.Sleep(100 * time.Millisecond) // the follower's last read
	fcancel()
	fwg.Wait()
	t.Logf("the cut's timeline (s from the cut; writes slower than 200 ms or failed, the survivors' Galera lines):%s",
		pauseReport(w, follow, cutAt, time.Now()))
	parts := pauseParts(follow, cutAt)
	t.Logf("longest write pause after the cut: %v (bound %v); %s", pause.Round(time.Millisecond), maxWritePause, parts)
	if pause > maxWritePause {
		t.Errorf("writes paused %v after the cut, more than %v: %s", pause.Round(time.Millisecond), maxWritePause, parts)
	}

	// 4. Heal: d3 rejoins by IST.
	healAt := time.Now()
	if err := n.Heal(d3.h); err != nil {
		t.Fatal(err)
	}
	eventually(t, maxRejoin, "every member synced, cluster size 3, after the heal", func() bool {
		for _, v := range cl.Members() {
			if v.State != galera.StateSynced || v.Status.ClusterSize != 3 {
				return false
			}
		}
		return true
	})
	t.Logf("db-3 synced %v after the heal", time.Since(healAt).Round(time.Millisecond))
	tail := logSince(t, d3, logOff)
	if !strings.Contains(tail, "IST received") {
		t.Errorf("db-3's log since the cut has no \"IST received\":\n%s", lastLines(tail, 30))
	}
	if strings.Contains(tail, "--role 'joiner'") {
		t.Errorf("db-3 rejoined by SST, not IST:\n%s", lastLines(tail, 30))
	}
	if v := cl.Members()[2]; v.Starts != 1 {
		t.Errorf("db-3 was started %d times: it should have rejoined by itself, without a restart", v.Starts)
	}
	checkAcked(t, w, map[string]*sql.DB{"db-1": db1, "db-2": db2, "db-3": db3})

	// 5. kill -9 every mariadbd under writes: the plan recovers every
	// position and starts from the most advanced; nothing acknowledged is lost.
	var pids []int
	for _, v := range cl.Members() {
		pids = append(pids, v.PID)
	}
	killAt := time.Now()
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill %d: %v", pid, err)
		}
	}
	t.Logf("killed every mariadbd %v", pids)
	eventually(t, maxRecovery, "every member synced again after kill -9 of all", func() bool {
		for _, v := range cl.Members() {
			if v.State != galera.StateSynced || v.Status.ClusterSize != 3 || slices.Contains(pids, v.PID) {
				return false
			}
		}
		return true
	})
	t.Logf("cluster synced %v after kill -9 of every member", time.Since(killAt).Round(time.Millisecond))
	for _, id := range ids {
		if !logs.has("recovered position", "member", id) {
			t.Errorf("no recovered position logged for %s: the plan must learn every position before it starts any", id)
		}
	}
	if !logs.has("database plan", "action", string(galera.ActBootstrap)) && !logs.has("database plan", "action", string(galera.ActStartAll)) {
		t.Errorf("neither a bootstrap from the most advanced nor a restart in the last view was planned")
	}
	waitAcked(t, w, w.count()+10)
	checkAcked(t, w, map[string]*sql.DB{"db-1": db1, "db-2": db2, "db-3": db3})

	// 5b. A new controller while the members run: it adopts them as they
	// are, restarting none.
	runCancel()
	runWG.Wait()
	before5b := cl.Members()
	cl.Close()
	t0 = time.Now()
	cl = newCluster()
	sctx, scancel = context.WithTimeout(ctx, time.Minute)
	err = cl.Start(sctx)
	scancel()
	if err != nil {
		t.Fatalf("start over running members: %v", err)
	}
	t.Logf("a new cluster adopted the running members in %v", time.Since(t0).Round(time.Millisecond))
	for i, v := range cl.Members() {
		if v.State != galera.StateSynced || v.PID != before5b[i].PID || v.Starts != 0 {
			t.Errorf("%s after adoption: %s, pid %d (was %d), %d starts", v.ID, v.State, v.PID, before5b[i].PID, v.Starts)
		}
	}
	runCtx, runCancel = context.WithCancel(ctx)
	runWG.Go(func() { cl.Run(runCtx) })
	waitAcked(t, w, w.count()+10)

	// 6. The controller is gone; db-3 dies, writes go on through db-1 and
	// db-2, then they die too. A new controller's cluster recovers every
	// position through the agents and bootstraps the most advanced (db-1
	// or db-2, not db-3); db-3 rejoins by IST from its recovered position.
	runCancel()
	runWG.Wait()
	pid := map[string]int{}
	for _, v := range cl.Members() {
		pid[v.ID] = v.PID
	}
	if err := syscall.Kill(pid["db-3"], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitAcked(t, w, w.count()+20) // db-1 and db-2 go on without db-3
	syscall.Kill(pid["db-1"], syscall.SIGKILL)
	syscall.Kill(pid["db-2"], syscall.SIGKILL)
	cl.Close()
	for _, d := range dbs {
		eventually(t, 20*time.Second, "the agent of "+d.member.ID+" reports it stopped", func() bool {
			return !agentRunning(t, client, agents[d.member.ID], d.member.ID)
		})
	}
	mark := logs.mark()
	d3off := logSize(t, d3)
	t0 = time.Now()
	cl = newCluster()
	sctx, scancel = context.WithTimeout(ctx, 5*time.Minute)
	err = cl.Start(sctx)
	scancel()
	if err != nil {
		t.Fatalf("start after losing db-3, then db-1 and db-2: %v", err)
	}
	runCtx, runCancel = context.WithCancel(ctx)
	runWG.Go(func() { cl.Run(runCtx) })
	// Start returns at the first synced member; Run sees db-3's join through.
	eventually(t, 5*time.Minute, "every member synced after the new start", func() bool {
		for _, v := range cl.Members() {
			if v.State != galera.StateSynced || v.Status == nil || v.Status.ClusterSize != 3 {
				return false
			}
		}
		return true
	})
	t.Logf("a new cluster over the agents synced %v after start", time.Since(t0).Round(time.Millisecond))
	if !logs.hasSince(mark, "database plan", map[string]string{"action": "bootstrap", "reason": "db-3 at"}) {
		t.Errorf("no bootstrap of the most advanced member ahead of db-3 was planned")
	}
	if logs.hasSince(mark, "database plan", map[string]string{"action": "bootstrap", "members": "db-3"}) {
		t.Errorf("db-3, which missed the last writes, was bootstrapped")
	}
	if pos := logs.valueSince(mark, "recovered position", "db-3", "position"); pos == "" {
		t.Errorf("no recovered position for db-3")
	} else if lg := logSince(t, d3, d3off); !strings.Contains(lg, "SST received: "+pos) || !strings.Contains(lg, "IST received") {
		t.Errorf("db-3 did not rejoin by IST from its recovered position %s:\n%s", pos, lastLines(lg, 30))
	}
	waitAcked(t, w, w.count()+10)
	runCancel()
	runWG.Wait()
	cancel()
	wg.Wait()
	checkAcked(t, w, map[string]*sql.DB{"db-1": db1, "db-2": db2, "db-3": db3})
	t.Logf("%d writes acknowledged, every one on every member", w.count())
}

func waitAgent(t *testing.T, c *hosts.Host, a galera.Agent, d *dbHost) {
	t.Helper()
	eventually(t, 20*time.Second, "db-agent on "+d.h.Name+" answers", func() bool {
		select {
		case <-d.agent.Done():
			t.Fatalf("db-agent on %s exited: %v", d.h.Name, d.agent.Err())
		default:
		}
		req, _ := http.NewRequest(http.MethodGet, a.URL+api.DBAgentPathMembers+d.member.ID, nil)
		token.SetBearer(req.Header, a.Token)
		resp, err := c.HTTPClient().Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// agentRunning asks a member's agent whether the member runs.
func agentRunning(t *testing.T, c *hosts.Host, a galera.Agent, id string) bool {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, a.URL+api.DBAgentPathMembers+id, nil)
	token.SetBearer(req.Header, a.Token)
	resp, err := c.HTTPClient().Do(req)
	if err != nil {
		return true
	}
	defer resp.Body.Close()
	var st api.DBAgentMember
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&st) != nil {
		return true
	}
	return st.Running
}

// writer inserts rows 1, 2, ... through one member and records which were
// acknowledged and when.
type writer struct {
	db *sql.DB

	mu       sync.Mutex
	acked    []int
	at       []time.Time
	attempts []attempt // every INSERT sent, for the pause's timeline
}

func (w *writer) run(ctx context.Context) {
	for id := 1; ctx.Err() == nil; id++ {
		ictx, cancel := context.WithTimeout(ctx, 20*time.Second)
		start := time.Now()
		_, err := w.db.ExecContext(ictx, "INSERT INTO acked VALUES (?, NOW(3))", id)
		cancel()
		end := time.Now()
		w.mu.Lock()
		w.attempts = append(w.attempts, attempt{id: id, start: start, end: end, err: err})
		if err == nil {
			w.acked, w.at = append(w.acked, id), append(w.at, end)
		}
		w.mu.Unlock()
		if err == nil {
			continue
		}
		// Not acknowledged: its outcome is unknown, it is not counted.
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (w *writer) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// maxGapSince is the longest time without an acknowledged write from since
// until the last one.
func (w *writer) maxGapSince(since time.Time) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	var gap time.Duration
	prev := since
	for _, at := range w.at {
		if at.Before(since) {
			continue
		}
		gap = max(gap, at.Sub(prev))
		prev = at
	}
	return max(gap, time.Since(prev))
}

func waitAcked(t *testing.T, w *writer, n int) {
	t.Helper()
	eventually(t, 60*time.Second, fmt.Sprintf("%d writes acknowledged", n), func() bool { return w.count() >= n })
}

// checkAcked: every acknowledged write is on every member.
func checkAcked(t *testing.T, w *writer, dbs map[string]*sql.DB) {
	t.Helper()
	w.mu.Lock()
	acked := slices.Clone(w.acked)
	w.mu.Unlock()
	for id, db := range dbs {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		rows, err := db.QueryContext(ctx, "SELECT id FROM acked")
		if err != nil {
			cancel()
			t.Fatalf("read through %s: %v", id, err)
		}
		have := map[int]bool{}
		for rows.Next() {
			var n int
			rows.Scan(&n)
			have[n] = true
		}
		rows.Close()
		cancel()
		var lost []int
		for _, a := range acked {
			if !have[a] {
				lost = append(lost, a)
			}
		}
		if len(lost) > 0 {
			t.Errorf("%s lacks %d acknowledged writes: %v", id, len(lost), lost[:min(len(lost), 20)])
		}
	}
}

func exec(t *testing.T, db *sql.DB, q string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func count(t *testing.T, db *sql.DB) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM acked").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func logPath(d *dbHost) string { return filepath.Join(d.member.Dir, "mariadbd.log") }

func logSize(t *testing.T, d *dbHost) int64 {
	fi, err := os.Stat(logPath(d))
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func logSince(t *testing.T, d *dbHost, off int64) string {
	b, err := os.ReadFile(logPath(d))
	if err != nil {
		t.Fatal(err)
	}
	return string(b[min(off, int64(len(b))):])
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// eventually polls cond every 200 ms until it holds, failing t after timeout.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", timeout, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// recorder keeps the cluster's log records (and passes them to t.Log).
type recorder struct {
	mu   sync.Mutex
	recs []map[string]string
}

func (r *recorder) handler(t *testing.T) slog.Handler {
	return &recHandler{r: r, t: t}
}

func (r *recorder) mark() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.recs)
}

// hasSince: a record since mark with msg whose attributes contain want's values.
func (r *recorder) hasSince(mark int, msg string, want map[string]string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range r.recs[mark:] {
		ok := rec["msg"] == msg
		for k, v := range want {
			ok = ok && strings.Contains(rec[k], v)
		}
		if ok {
			return true
		}
	}
	return false
}

// valueSince is attribute key of the last record since mark with msg for member.
func (r *recorder) valueSince(mark int, msg, member, key string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	v := ""
	for _, rec := range r.recs[mark:] {
		if rec["msg"] == msg && rec["member"] == member {
			v = rec[key]
		}
	}
	return v
}

func (r *recorder) has(msg, key, val string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range r.recs {
		if rec["msg"] == msg && strings.Contains(rec[key], val) {
			return true
		}
	}
	return false
}

type recHandler struct {
	r *recorder
	t *testing.T
}

func (h *recHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *recHandler) WithGroup(string) slog.Handler            { return h }
func (h *recHandler) Handle(_ context.Context, rec slog.Record) error {
	m := map[string]string{"msg": rec.Message}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s", rec.Level, rec.Message)
	rec.Attrs(func(a slog.Attr) bool {
		m[a.Key] = a.Value.String()
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	h.r.mu.Lock()
	h.r.recs = append(h.r.recs, m)
	h.r.mu.Unlock()
	if rec.Level >= slog.LevelInfo {
		h.t.Log(b.String())
	}
	return nil
}
