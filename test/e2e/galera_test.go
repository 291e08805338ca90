package e2e

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
)

// The Galera tests run a three-member cluster, each on its own loopback
// block, and talk to the members directly with the site's database user.

// galeraStack is a stack with db.members: 3.
func galeraStack(t *testing.T, block, nodes int) *stack {
	t.Helper()
	s := newStack(t, block, nodes)
	cfg := strings.Replace(stackConfig(block, nodes), "  members: 1\n", "  members: 3\n  gcache_size: 32M\n", 1)
	if !strings.Contains(cfg, "members: 3") {
		t.Fatal("stack config has no db.members line to change")
	}
	if err := os.WriteFile(s.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

// memberDB opens the site's database on one member (or the router).
func (s *stack) memberDB(t *testing.T, addr string) *sql.DB {
	t.Helper()
	pw, err := os.ReadFile(filepath.Join(s.dir, "secrets", "db-password"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = "wordpress", strings.TrimSpace(string(pw)), "tcp", addr, "wordpress"
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = 3*time.Second, 30*time.Second, 30*time.Second
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	t.Cleanup(func() { db.Close() })
	return db
}

// waitDB polls status until ok holds for the db section.
func (s *stack) waitDB(t *testing.T, what string, timeout time.Duration, ok func(*api.DBStatus) bool) api.Status {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := s.status(t)
		if st.DB != nil && ok(st.DB) {
			return st
		}
		if time.Now().After(deadline) {
			b, _ := json.MarshalIndent(st.DB, "", " ")
			t.Fatalf("%s: not within %s; db status:\n%s", what, timeout, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func allSynced(n int) func(*api.DBStatus) bool {
	return func(db *api.DBStatus) bool {
		if len(db.Members) != n {
			return false
		}
		for _, m := range db.Members {
			if m.State != "synced" || m.ClusterSize != n {
				return false
			}
		}
		return true
	}
}

func memberAddr(st api.Status, id string) string {
	for _, m := range st.DB.Members {
		if m.ID == id {
			return m.Addr
		}
	}
	return ""
}

func memberPID(st api.Status, id string) int {
	for _, m := range st.DB.Members {
		if m.ID == id {
			return m.PID
		}
	}
	return 0
}

func sqlErrNumber(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

// TestGaleraMultiMaster: every member accepts writes, every write is
// everywhere, and a conflict is an error the client sees, never a lost write.
func TestGaleraMultiMaster(t *testing.T) {
	s := galeraStack(t, 50, 1)
	t.Logf("cold up with 3 members took %s", s.up(t).Round(time.Millisecond))
	st := s.waitDB(t, "three synced members", 10*time.Second, allSynced(3))
	if st.DB.Writer != "db-1" || st.DB.RouterChoice != "db-1" || st.DB.RouterMode != "single" {
		t.Errorf("router: writer %q choice %q mode %q; want db-1, db-1, single", st.DB.Writer, st.DB.RouterChoice, st.DB.RouterMode)
	}
	uuid := st.DB.Members[0].StateUUID
	for _, m := range st.DB.Members {
		if m.StateUUID != uuid || m.StateUUID == "" || m.PID == 0 {
			t.Errorf("member %+v", m)
		}
	}
	ids := []string{"db-1", "db-2", "db-3"}
	dbs := map[string]*sql.DB{}
	for _, id := range ids {
		dbs[id] = s.memberDB(t, memberAddr(st, id))
	}
	ctx := context.Background()
	mustExec := func(db *sql.DB, q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	mustExec(dbs["db-1"], "CREATE TABLE e2e_mm (id INT AUTO_INCREMENT PRIMARY KEY, src VARCHAR(8) NOT NULL, n INT NOT NULL)")
	mustExec(dbs["db-1"], "CREATE TABLE e2e_counter (id INT PRIMARY KEY, v INT NOT NULL)")
	mustExec(dbs["db-1"], "INSERT INTO e2e_counter VALUES (1, 0), (2, 0)")

	t.Run("a row written on each member is read on every member", func(t *testing.T) {
		for _, id := range ids {
			mustExec(dbs[id], "INSERT INTO e2e_mm (src, n) VALUES (?, 0)", id)
		}
		router := s.memberDB(t, st.DB.Router)
		mustExec(router, "INSERT INTO e2e_mm (src, n) VALUES ('router', 0)")
		for _, id := range ids {
			conn, err := dbs[id].Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			// Read-your-writes on another member: wait for the apply.
			conn.ExecContext(ctx, "SET SESSION wsrep_sync_wait = 1")
			var got string
			if err := conn.QueryRowContext(ctx, "SELECT GROUP_CONCAT(src ORDER BY src) FROM e2e_mm").Scan(&got); err != nil {
				t.Fatal(err)
			}
			conn.Close()
			if got != "db-1,db-2,db-3,router" {
				t.Errorf("on %s: rows %q, want db-1,db-2,db-3,router", id, got)
			}
		}
	})

	t.Run("a conflicting commit fails with 1213, the other wins", func(t *testing.T) {
		tx, err := dbs["db-1"].BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, "UPDATE e2e_counter SET v = v + 1 WHERE id = 2"); err != nil {
			t.Fatal(err)
		}
		// db-2 commits a change of the same row while db-1's is open.
		mustExec(dbs["db-2"], "UPDATE e2e_counter SET v = 100 WHERE id = 2")
		err = tx.Commit()
		if err == nil {
			_, err = tx.ExecContext(ctx, "SELECT 1")
		}
		if sqlErrNumber(err) != 1213 {
			t.Fatalf("db-1's conflicting transaction ended with %v, want error 1213", err)
		}
		for _, id := range ids {
			var v int
			conn, _ := dbs[id].Conn(ctx)
			conn.ExecContext(ctx, "SET SESSION wsrep_sync_wait = 1")
			conn.QueryRowContext(ctx, "SELECT v FROM e2e_counter WHERE id = 2").Scan(&v)
			conn.Close()
			if v != 100 {
				t.Errorf("on %s: v = %d, want 100 (db-2's committed write)", id, v)
			}
		}
	})

	t.Run("concurrent writes on all members: no silent loss, same checksum everywhere", func(t *testing.T) {
		const perMember = 150
		var wg sync.WaitGroup
		var mu sync.Mutex
		okIncrements, conflicts := 0, 0
		var other []error
		for _, id := range ids {
			wg.Go(func() {
				for i := range perMember {
					if _, err := dbs[id].ExecContext(ctx, "INSERT INTO e2e_mm (src, n) VALUES (?, ?)", id, i); err != nil {
						mu.Lock()
						other = append(other, fmt.Errorf("%s insert: %w", id, err))
						mu.Unlock()
					}
					// Every member increments the same row: certification
					// conflicts are expected and must be reported.
					_, err := dbs[id].ExecContext(ctx, "UPDATE e2e_counter SET v = v + 1 WHERE id = 1")
					mu.Lock()
					switch {
					case err == nil:
						okIncrements++
					case sqlErrNumber(err) == 1213:
						conflicts++
					default:
						other = append(other, fmt.Errorf("%s update: %w", id, err))
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(other) > 0 {
			t.Fatalf("%d unexpected errors, first: %v", len(other), other[0])
		}
		t.Logf("%d increments acknowledged, %d refused with 1213 (certification conflicts)", okIncrements, conflicts)
		sums := map[string]string{}
		for _, id := range ids {
			conn, _ := dbs[id].Conn(ctx)
			conn.ExecContext(ctx, "SET SESSION wsrep_sync_wait = 1")
			var v, rows int
			conn.QueryRowContext(ctx, "SELECT v FROM e2e_counter WHERE id = 1").Scan(&v)
			conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM e2e_mm").Scan(&rows)
			var tbl string
			var sum1, sum2 sql.NullInt64
			conn.QueryRowContext(ctx, "CHECKSUM TABLE e2e_mm").Scan(&tbl, &sum1)
			conn.QueryRowContext(ctx, "CHECKSUM TABLE e2e_counter").Scan(&tbl, &sum2)
			conn.Close()
			if v != okIncrements {
				t.Errorf("on %s: counter %d, want %d (every acknowledged increment, no more)", id, v, okIncrements)
			}
			if rows != 4+3*perMember {
				t.Errorf("on %s: %d rows, want %d", id, rows, 4+3*perMember)
			}
			sums[id] = fmt.Sprintf("%d/%d", sum1.Int64, sum2.Int64)
		}
		if sums["db-1"] != sums["db-2"] || sums["db-1"] != sums["db-3"] {
			t.Errorf("CHECKSUM TABLE differs: %v", sums)
		}
	})
}

// poster publishes posts through the REST API as fast as it can and keeps
// what the site acknowledged (201 with an id).
type poster struct {
	b     *browser
	site  string
	nonce string

	mu    sync.Mutex
	acked []int
	ackAt []time.Time
	errs  []string
	stop  chan struct{}
	done  chan struct{}
}

func startPoster(t *testing.T, site, password string) *poster {
	b := newBrowser(t)
	if p := b.login(site, "admin", password); !strings.Contains(p.url, "/wp-admin/") {
		t.Fatalf("login landed on %s", p.url)
	}
	p := &poster{b: b, site: site, nonce: b.restNonce(site), stop: make(chan struct{}), done: make(chan struct{})}
	client := &http.Client{Jar: b.client.Jar, Timeout: 20 * time.Second}
	go func() {
		defer close(p.done)
		for i := 0; ; i++ {
			select {
			case <-p.stop:
				return
			default:
			}
			body, _ := json.Marshal(map[string]string{"title": fmt.Sprintf("galera post %d", i), "content": "x", "status": "publish"})
			req, _ := http.NewRequest("POST", site+"/wp-json/wp/v2/posts", strings.NewReader(string(body)))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-WP-Nonce", p.nonce)
			resp, err := client.Do(req)
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

func (p *poster) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.acked)
}

func (p *poster) waitAcks(t *testing.T, n int, timeout time.Duration) {
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

func (p *poster) finish() (acked []int, errs []string) {
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

func adminPassword(t *testing.T, s *stack) string {
	b, err := os.ReadFile(filepath.Join(s.dir, "secrets", "admin-password"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// checkPosts asserts that every acknowledged post is published on every member.
func checkPosts(t *testing.T, s *stack, st api.Status, acked []int) {
	t.Helper()
	if len(acked) == 0 {
		t.Fatal("no post was acknowledged")
	}
	in := strings.Trim(strings.Join(strings.Fields(fmt.Sprint(acked)), ","), "[]")
	for _, m := range st.DB.Members {
		db := s.memberDB(t, m.Addr)
		conn, err := db.Conn(context.Background())
		if err != nil {
			t.Fatalf("%s: %v", m.ID, err)
		}
		conn.ExecContext(context.Background(), "SET SESSION wsrep_sync_wait = 1")
		var n int
		if err := conn.QueryRowContext(context.Background(), "SELECT COUNT(*) FROM wp_posts WHERE post_status = 'publish' AND ID IN ("+in+")").Scan(&n); err != nil {
			t.Fatalf("%s: %v", m.ID, err)
		}
		conn.Close()
		if n != len(acked) {
			t.Errorf("%s has %d of the %d acknowledged posts", m.ID, n, len(acked))
		}
	}
}

func logSince(t *testing.T, path string, off int64) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if off > int64(len(b)) {
		off = 0
	}
	return string(b[off:])
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// localCommits is a member's count of transactions that it committed for
// its own clients (wsrep_local_commits): the writer's grows with the site's
// writes, the others' do not.
func localCommits(t *testing.T, db *sql.DB) int64 {
	t.Helper()
	var name string
	var n int64
	if err := db.QueryRow("SHOW GLOBAL STATUS LIKE 'wsrep_local_commits'").Scan(&name, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// maxGap is the longest time between two consecutive acknowledgements
// around at (from the last one before it), and the one after which it ended.
func maxGap(acks []time.Time, at time.Time) (gap time.Duration, after time.Time) {
	for i := 1; i < len(acks); i++ {
		if acks[i].Before(at) {
			continue
		}
		if d := acks[i].Sub(acks[i-1]); d > gap {
			gap, after = d, acks[i-1]
		}
	}
	return gap, after
}

// TestGaleraFailover: WordPress under a stream of posts; kill -9 of the
// member the router writes to; the site keeps taking posts, none that was
// acknowledged is lost, writes pause at most 10 s (docs/operations.md), and
// the member comes back by IST.
func TestGaleraFailover(t *testing.T) {
	s := galeraStack(t, 51, 1)
	s.up(t)
	st := s.waitDB(t, "three synced members", 10*time.Second, allSynced(3))
	writer := st.DB.Writer
	if writer != "db-1" {
		t.Fatalf("writer %q, want db-1", writer)
	}
	logPath := filepath.Join(s.dir, "logs", writer+".log")
	writerDB := s.memberDB(t, memberAddr(st, writer))
	p := startPoster(t, s.site, adminPassword(t, s))
	p.waitAcks(t, 5, 60*time.Second)

	// The member about to be killed is the one taking the site's writes.
	c0, n0 := localCommits(t, writerDB), p.count()
	p.waitAcks(t, n0+3, 30*time.Second)
	committed := localCommits(t, writerDB) - c0
	if committed < 3 {
		t.Fatalf("%s committed %d transactions of its own while %d posts were acknowledged: it is not the writer", writer, committed, p.count()-n0)
	}
	writerDB.Close()

	before := p.count()
	off := fileSize(logPath)
	killed := time.Now()
	if err := kill(memberPID(st, writer), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.waitAcks(t, before+10, 90*time.Second)
	p.mu.Lock()
	pause, from := maxGap(p.ackAt, killed)
	p.mu.Unlock()

	st = s.waitDB(t, "the killed member rejoins synced", 90*time.Second, allSynced(3))
	rejoined := time.Since(killed)
	p.waitAcks(t, p.count()+3, 30*time.Second) // writes go on after the rejoin too
	acked, errs := p.finish()
	p.mu.Lock()
	whole, wholeFrom := maxGap(p.ackAt, killed)
	p.mu.Unlock()
	t.Logf("%s committed %d transactions while 3 posts were acknowledged before its kill -9; writes paused %s (last acknowledgement %s before the kill); longest pause from the kill until after the rejoin %s (starting at kill%+.2fs); %d posts acknowledged, %d failed requests %.300q; %s synced again %s after the kill",
		writer, committed, pause.Round(10*time.Millisecond), killed.Sub(from).Round(10*time.Millisecond), whole.Round(10*time.Millisecond), wholeFrom.Sub(killed).Seconds(),
		len(acked), len(errs), errs, writer, rejoined.Round(100*time.Millisecond))
	if whole > 10*time.Second {
		t.Errorf("writes paused %s (the longest gap between acknowledged posts from the kill until after the rejoin), want at most 10 s", whole.Round(10*time.Millisecond))
	}
	if st.DB.Writer == writer || st.DB.Writer == "" {
		t.Errorf("writer after failover %q; want another member, kept while it stays synced", st.DB.Writer)
	}
	for _, m := range st.DB.Members {
		if m.ID == writer && m.Starts < 2 {
			t.Errorf("%s starts = %d, want a restart", writer, m.Starts)
		}
	}
	checkIST(t, s, writer, off)
	checkPosts(t, s, st, acked)
}

// crashAll simulates a power cut: the controller is frozen so that it cannot
// react, the given members are killed (in order, with pause between the
// groups), then the controller is killed too.
func crashController(t *testing.T, s *stack, st api.Status) {
	t.Helper()
	pids := allPIDs(st)
	if err := kill(st.Controller.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(t, pids, s.dir, 60*time.Second)
}

// TestGaleraCrashRecovery: kill -9 every member, then up: the cluster comes
// back from the most advanced member with every acknowledged post.
func TestGaleraCrashRecovery(t *testing.T) {
	s := galeraStack(t, 52, 1)
	s.up(t)
	st := s.waitDB(t, "three synced members", 10*time.Second, allSynced(3))
	password := adminPassword(t, s)
	ctrl := filepath.Join(s.dir, "logs", "controller.log")

	t.Run("all members at once: a plain restart re-forms the cluster", func(t *testing.T) {
		p := startPoster(t, s.site, password)
		p.waitAcks(t, 8, 60*time.Second)
		if err := kill(st.Controller.PID, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		for _, m := range st.DB.Members {
			kill(m.PID, syscall.SIGKILL)
		}
		acked, _ := p.finish()
		crashController(t, s, st)
		off := fileSize(ctrl)
		d := s.up(t)
		st = s.waitDB(t, "three synced members", 10*time.Second, allSynced(3))
		t.Logf("up after a crash of every member took %s; %d posts acknowledged before it", d.Round(time.Millisecond), len(acked))
		if lg := logSince(t, ctrl, off); !strings.Contains(lg, "action=start-all") {
			t.Errorf("no plain restart in the controller log:\n%s", grepLines(lg, "database plan"))
		}
		checkPosts(t, s, st, acked)
	})

	t.Run("members lost one after another, one datadir gone: bootstrap from the most advanced", func(t *testing.T) {
		p := startPoster(t, s.site, password)
		p.waitAcks(t, 5, 60*time.Second)
		if err := kill(st.Controller.PID, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		kill(memberPID(st, "db-3"), syscall.SIGKILL)
		n := p.count()
		p.waitAcks(t, n+5, 60*time.Second) // db-1 and db-2 go on without db-3
		kill(memberPID(st, "db-1"), syscall.SIGKILL)
		kill(memberPID(st, "db-2"), syscall.SIGKILL)
		acked, _ := p.finish()
		crashController(t, s, st)
		// db-2's disk is replaced: its data is gone.
		if err := os.RemoveAll(filepath.Join(s.dir, "db", "db-2", "data")); err != nil {
			t.Fatal(err)
		}
		off := fileSize(ctrl)
		db3off := fileSize(filepath.Join(s.dir, "logs", "db-3.log"))
		d := s.up(t)
		st = s.waitDB(t, "three synced members", 10*time.Second, allSynced(3))
		t.Logf("up after losing db-3, then db-1 and db-2 (db-2's data gone) took %s; %d posts acknowledged", d.Round(time.Millisecond), len(acked))
		lg := grepLines(logSince(t, ctrl, off), "database plan")
		if !strings.Contains(lg, "action=bootstrap members=[db-1]") || !strings.Contains(lg, "db-2 empty") || !strings.Contains(lg, "db-3 at") {
			t.Errorf("expected a bootstrap of db-1 ahead of db-3 and an empty db-2:\n%s", lg)
		}
		checkIST(t, s, "db-3", db3off)
		checkPosts(t, s, st, acked)
	})
}

// checkIST asserts that member id caught up by IST since log offset off:
// its state transfer kept its own recovered position (MariaDB logs "SST
// received: <position>" for that step, with no data sent) and the missing
// write-sets arrived as IST.
func checkIST(t *testing.T, s *stack, id string, off int64) {
	t.Helper()
	ctrl := grepLines(logSince(t, filepath.Join(s.dir, "logs", "controller.log"), 0), "recovered position")
	var pos string
	for _, l := range strings.Split(ctrl, "\n") {
		if strings.Contains(l, "member="+id+" ") {
			if _, p, ok := strings.Cut(l, "position="); ok {
				pos = strings.Fields(p)[0]
			}
		}
	}
	lg := logSince(t, filepath.Join(s.dir, "logs", id+".log"), off)
	if pos == "" || !strings.Contains(lg, "SST received: "+pos) || !strings.Contains(lg, "IST received") {
		t.Errorf("%s did not rejoin by IST from its recovered position %q; its log:\n%s", id, pos, grepLines(lg, "ST "))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
