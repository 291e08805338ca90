package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// sql runs a statement as root over the first DB member's socket.
func (s *stack) sql(t *testing.T, stmt string) string {
	t.Helper()
	out, err := exec.Command("mariadb", "--no-defaults", "--socket="+filepath.Join(s.dir, "db", "db-1", "run", "mysqld.sock"),
		"-uroot", "--batch", "--skip-column-names", "-e", stmt).CombinedOutput()
	if err != nil {
		t.Fatalf("sql %q: %v: %s", stmt, err, out)
	}
	return strings.TrimSpace(string(out))
}

// questions is MariaDB's count of statements received.
func (s *stack) questions(t *testing.T) int {
	f := strings.Fields(s.sql(t, "SHOW GLOBAL STATUS LIKE 'Questions'"))
	n, _ := strconv.Atoi(f[len(f)-1])
	return n
}

// redisInfo reads one field of redis INFO.
func redisInfo(t *testing.T, addr, password, field string) int {
	t.Helper()
	info := mustRedis(t, addr, password, "INFO", "stats").(string)
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	t.Fatalf("redis INFO has no %s", field)
	return 0
}

func TestCaching(t *testing.T) {
	s := newStack(t, 48, 2)
	s.up(t)
	st := s.status(t)
	pw, _ := os.ReadFile(st.Admin.PasswordFile)
	password := strings.TrimSpace(string(pw))

	t.Run("the second anonymous GET is a hit, without internal headers", func(t *testing.T) {
		b := newBrowser(t)
		b.get(s.site + "/")
		p := b.get(s.site + "/")
		if p.header.Get("X-Cache") != "HIT" || p.header.Get("Age") == "" {
			t.Errorf("second GET: X-Cache %q Age %q", p.header.Get("X-Cache"), p.header.Get("Age"))
		}
		if p.header.Get("X-Scalepress-Tags") != "" || p.header.Get("X-Scalepress-Node") != "" {
			t.Errorf("internal headers reached the client: %v", p.header)
		}
		css := "/wp-includes/css/buttons.min.css"
		b.get(s.site + css)
		c := b.do("GET", s.site+css, nil, map[string]string{"Range": "bytes=0-99"})
		if c.status != 206 || len(c.body) != 100 || c.header.Get("X-Cache") != "HIT" {
			t.Errorf("range on a cached asset: %d, %d bytes, X-Cache %q", c.status, len(c.body), c.header.Get("X-Cache"))
		}
	})

	b := newBrowser(t)
	if p := b.login(s.site, "admin", password); !strings.Contains(p.url, "/wp-admin/") {
		t.Fatalf("login failed: %s", p.url)
	}

	t.Run("a logged-in user is never served from cache", func(t *testing.T) {
		for range 2 {
			p := b.get(s.site + "/")
			if p.header.Get("X-Cache") != "BYPASS" || !strings.Contains(p.body, `id="wpadminbar"`) {
				t.Fatalf("logged in: X-Cache %q, admin bar present %v", p.header.Get("X-Cache"), strings.Contains(p.body, "wpadminbar"))
			}
		}
	})

	nonce := b.restNonce(s.site)
	var created post
	t.Run("publishing shows on the next GET of the cached home page", func(t *testing.T) {
		anon := newBrowser(t)
		anon.get(s.site + "/")
		if p := anon.get(s.site + "/"); p.header.Get("X-Cache") != "HIT" {
			t.Fatalf("home not cached: %q", p.header.Get("X-Cache"))
		}
		title := uniqueTitle("Cached then purged")
		created = b.publish(s.site, nonce, title, "Body of the purge test.")
		mustContain(t, "home after publish", anon.get(s.site+"/"), title)
		anon.get(created.Link)
		if p := anon.get(created.Link); p.header.Get("X-Cache") != "HIT" {
			t.Errorf("permalink not cached: %q", p.header.Get("X-Cache"))
		}
	})

	t.Run("an approved comment shows on the cached post at once", func(t *testing.T) {
		text := uniqueTitle("A comment")
		body, _ := json.Marshal(map[string]any{"post": created.ID, "content": text, "status": "approved"})
		p := b.do("POST", s.site+"/wp-json/wp/v2/comments", strings.NewReader(string(body)),
			map[string]string{"Content-Type": "application/json", "X-WP-Nonce": nonce})
		if p.status != 201 {
			t.Fatalf("comment: %d %.300s", p.status, p.body)
		}
		mustContain(t, "post after comment", newBrowser(t).get(created.Link), text)
	})

	t.Run("redis down: pages still served; redis back: the object cache is used again", func(t *testing.T) {
		st := s.status(t)
		if err := kill(st.Redis.PID, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		stopped := true
		defer func() {
			if stopped {
				kill(st.Redis.PID, syscall.SIGCONT)
			}
		}()
		for i := range 3 {
			p := b.get(s.site + fmt.Sprintf("/?s=redis-down-%d", i)) // uncached: PHP runs
			if p.status != 200 || !strings.Contains(p.body, "wp-block") {
				t.Fatalf("with redis down: status %d", p.status)
			}
		}
		kill(st.Redis.PID, syscall.SIGCONT)
		stopped = false
		time.Sleep(1500 * time.Millisecond) // the drop-in's retry interval
		before := redisInfo(t, st.Redis.Addr, s.redisPassword(t), "keyspace_hits")
		for i := range 3 {
			b.get(s.site + fmt.Sprintf("/?s=redis-back-%d", i))
		}
		if after := redisInfo(t, st.Redis.Addr, s.redisPassword(t), "keyspace_hits"); after <= before {
			t.Errorf("redis keyspace hits %d -> %d: the object cache is not used after redis returned", before, after)
		}
	})

	t.Run("the object cache cuts database queries", func(t *testing.T) {
		st := s.status(t)
		perPage := func() float64 {
			// A cookie that makes the edge bypass its cache, so PHP runs.
			hdr := map[string]string{"Cookie": "wordpress_logged_in_x=invalid"}
			anon := newBrowser(t)
			anon.do("GET", s.site+"/", nil, hdr) // warm
			q0 := s.questions(t)
			for range 5 {
				anon.do("GET", s.site+"/", nil, hdr)
			}
			return float64(s.questions(t)-q0) / 5
		}
		with := perPage()
		for _, n := range st.Nodes {
			os.Rename(filepath.Join(n.Docroot, "wp-content", "object-cache.php"), filepath.Join(n.Docroot, "wp-content", "object-cache.php.off"))
		}
		without := perPage()
		for _, n := range st.Nodes {
			os.Rename(filepath.Join(n.Docroot, "wp-content", "object-cache.php.off"), filepath.Join(n.Docroot, "wp-content", "object-cache.php"))
		}
		t.Logf("DB statements per warm home page: %.1f with the object cache, %.1f without", with, without)
		if with >= without {
			t.Errorf("object cache does not reduce queries: %.1f with, %.1f without", with, without)
		}
	})

	t.Run("purge requests: bad input is refused and names what is wrong", func(t *testing.T) {
		if r := s.cli(t, "purge", "--tag", "bad tag!"); r.code != 2 || !strings.Contains(r.stderr, `"bad tag!"`) {
			t.Errorf("purge of a bad tag: exit %d %q", r.code, r.stderr)
		}
		if r := s.cli(t, "purge", "--tag", "home", "--all"); r.code != 2 {
			t.Errorf("purge with two targets: exit %d %q", r.code, r.stderr)
		}
		for _, tc := range []struct {
			name, auth, body string
			want             int
		}{
			{"no token", "", `{"tags":["home"]}`, 401},
			{"wrong token", "Bearer nope", `{"tags":["home"]}`, 401},
		} {
			p := b.do("POST", s.api+"/v1/purge", strings.NewReader(tc.body), map[string]string{"Authorization": tc.auth, "Content-Type": "application/json"})
			if p.status != tc.want {
				t.Errorf("%s: %d, want %d", tc.name, p.status, tc.want)
			}
		}
		secret, _ := os.ReadFile(filepath.Join(s.dir, "secrets", "purge-secret"))
		auth := "Bearer " + strings.TrimSpace(string(secret))
		p := b.do("POST", s.api+"/v1/purge", strings.NewReader(`{"urls":["not a url"]}`), map[string]string{"Authorization": auth, "Content-Type": "application/json"})
		if p.status != 400 || !strings.Contains(p.body, "urls[0]") {
			t.Errorf("purge of a bad URL: %d %q", p.status, p.body)
		}
		p = b.do("POST", s.site+"/_scalepress/purge", strings.NewReader(`{"all":true}`), map[string]string{"Content-Type": "application/json"})
		if p.status != 401 {
			t.Errorf("edge purge without token: %d", p.status)
		}
	})

	t.Run("load and metrics", func(t *testing.T) {
		r := runBin(t, "load", "--url", s.site+"/", "--rate", "20", "--duration", "1s")
		if r.code != 0 || !strings.Contains(r.stdout, "200=20") || !strings.Contains(r.stdout, "p99") {
			t.Errorf("load: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		if r := runBin(t, "load", "--url", s.site+"/", "--rate", "0"); r.code != 2 || !strings.Contains(r.stderr, "--rate") {
			t.Errorf("load --rate 0: exit %d %q", r.code, r.stderr)
		}
		for url, want := range map[string]string{
			s.api + "/metrics":                                    `scalepress_nodes{state="in-service"} 2`,
			s.site + "/_scalepress/edge/metrics":                  "scalepress_edge_node_in_flight",
			"http://" + st.Nodes[0].Addr + "/_scalepress/metrics": "scalepress_node_php_busy",
		} {
			if p := newBrowser(t).get(url); p.status != 200 || !strings.Contains(p.body, want) {
				t.Errorf("%s: %d, want %q in\n%.500s", url, p.status, want, p.body)
			}
		}
		checkStackMetrics(t, s)
	})

	t.Run("every node frozen: a cached page is served STALE, an uncached one a clear 503", func(t *testing.T) {
		anon := newBrowser(t)
		anon.get(s.site + "/")
		st := s.status(t)
		var frozen []int
		for _, n := range st.Nodes {
			for _, pid := range n.PIDs {
				if kill(pid, syscall.SIGSTOP) == nil {
					frozen = append(frozen, pid)
				}
			}
		}
		defer func() {
			for _, pid := range frozen {
				kill(pid, syscall.SIGCONT)
			}
		}()
		// The edge's health checks (2 s interval, fall 3) find every node
		// down, well before the controller replaces them (15 s).
		t0 := time.Now()
		for {
			var es struct {
				Balancer struct {
					Nodes []struct{ Healthy bool }
				}
			}
			p := anon.get(s.site + "/_scalepress/edge/status")
			json.Unmarshal([]byte(p.body), &es)
			healthy := 0
			for _, n := range es.Balancer.Nodes {
				if n.Healthy {
					healthy++
				}
			}
			if healthy == 0 && len(es.Balancer.Nodes) > 0 {
				break
			}
			if time.Since(t0) > 12*time.Second {
				t.Fatalf("the edge still counts %d healthy nodes %s after freezing them all", healthy, time.Since(t0))
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Logf("edge saw every node down after %s", time.Since(t0).Round(time.Millisecond))
		if r := s.cli(t, "purge", "--tag", "home"); r.code != 0 { // the page is now stale
			t.Fatalf("purge: %d %s", r.code, r.stderr)
		}
		p := anon.get(s.site + "/")
		if p.status != 200 || p.header.Get("X-Cache") != "STALE" {
			t.Errorf("cached page with every node frozen: %d X-Cache %q", p.status, p.header.Get("X-Cache"))
		}
		u := anon.get(s.site + "/never-cached-page/")
		if u.status != 503 {
			t.Errorf("uncached page with every node frozen: %d %.200s", u.status, u.body)
		}
	})
}
