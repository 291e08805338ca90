package e2e

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFoundation walks one environment through a user's first day: up, browse,
// log in, publish, status, down, up again, and a crash of the controller.
func TestFoundation(t *testing.T) {
	s := newStack(t, 42, 2)
	cold := s.up(t)
	t.Logf("cold up --detach took %s", cold.Round(time.Millisecond))

	var st = s.status(t)
	var password string
	title := uniqueTitle("Hello from the e2e test")
	var permalink string

	t.Run("home page is WordPress through the edge", func(t *testing.T) {
		b := newBrowser(t)
		p := b.get(s.site + "/")
		if p.status != 200 {
			t.Fatalf("GET / = %d", p.status)
		}
		mustContain(t, "home page", p, `<meta name="generator" content="WordPress`, "e2e site")
		if got := p.header.Get("X-Cache"); got != "MISS" && got != "HIT" {
			t.Errorf("X-Cache = %q, want MISS or HIT for an anonymous page", got)
		}
		if p.header.Get("X-Scalepress-Node") != "" {
			t.Error("internal node header reached the client")
		}
		// Static files come from the node's docroot, PHP source never does.
		css := b.get(s.site + "/wp-includes/css/dashicons.min.css")
		if css.status != 200 || !strings.Contains(css.header.Get("Content-Type"), "text/css") {
			t.Errorf("static css: %d %s", css.status, css.header.Get("Content-Type"))
		}
		if cfg := b.get(s.site + "/wp-config.php"); cfg.status != 403 || strings.Contains(cfg.body, "DB_PASSWORD") { // denied: ADR 9
			t.Errorf("wp-config.php: %d", cfg.status)
		}
	})

	t.Run("status reports the environment", func(t *testing.T) {
		if st.SiteURL != s.site || !st.Ready {
			t.Errorf("site_url %q ready %v", st.SiteURL, st.Ready)
		}
		if len(st.Nodes) != 2 {
			t.Fatalf("%d nodes, want 2", len(st.Nodes))
		}
		for _, n := range st.Nodes {
			if n.State != "in-service" || len(n.PIDs) < 2 {
				t.Errorf("node %s: state %s pids %v", n.ID, n.State, n.PIDs)
			}
		}
		if len(st.Edges) != 1 || !st.Edges[0].Healthy || st.Edges[0].PID == 0 {
			t.Errorf("edges %+v", st.Edges)
		}
		if st.DB == nil || len(st.DB.Members) != 1 || st.DB.Members[0].State != "synced" {
			t.Errorf("db %+v", st.DB)
		}
		if st.Redis == nil || st.Redis.State != "up" {
			t.Errorf("redis %+v", st.Redis)
		}
		fi, err := os.Stat(st.Admin.PasswordFile)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("admin password file %s: %v mode %v", st.Admin.PasswordFile, err, fi.Mode())
		}
		b, _ := os.ReadFile(st.Admin.PasswordFile)
		password = strings.TrimSpace(string(b))
		if len(password) < 16 {
			t.Fatalf("admin password %q too short", password)
		}
		human := s.cli(t, "status")
		if human.code != 0 || !strings.Contains(human.stdout, password) {
			t.Errorf("human status does not show the admin password: %s", human.stdout)
		}
	})

	t.Run("roles that need no root do not run as root", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Fatal("e2e runs as root, as CI does: this checks what runs as whom")
		}
		roles := map[string]int{"files": st.Files.PID, "dbrouter": st.DB.RouterPID}
		for _, e := range st.Edges {
			roles[e.ID] = e.PID
		}
		// Each node: its agent and its filesync agent; php-fpm's master is
		// root (it starts the workers as www-data), its workers www-data.
		for _, n := range st.Nodes {
			var agents, workers int
			for _, pid := range n.PIDs {
				u := userName(procUID(t, pid))
				switch cmd := cmdline(pid); {
				case strings.Contains(cmd, "php-fpm: master"):
					if u != "root" {
						t.Errorf("%s: php-fpm master runs as %s", n.ID, u)
					}
				case strings.Contains(cmd, "php-fpm: pool"):
					workers++
					if u != "www-data" {
						t.Errorf("%s: php-fpm worker %d runs as %s, want www-data", n.ID, pid, u)
					}
				case strings.Contains(cmd, " node --spec") || strings.Contains(cmd, " filesync --spec"):
					agents++
					if u != "scalepress" {
						t.Errorf("%s: %q runs as %s, want scalepress", n.ID, cmd, u)
					}
				}
			}
			if agents != 2 || workers == 0 {
				t.Errorf("%s: %d agents (node, filesync) and %d PHP workers among pids %v", n.ID, agents, workers, n.PIDs)
			}
		}
		// PHP may write uploads, never core files or wp-config.php.
		docroot := st.Nodes[0].Docroot
		for path, want := range map[string]bool{
			"wp-content/uploads":      true,
			"wp-content/plugins":      true,
			"wp-includes/version.php": false,
			"wp-includes":             false,
			"index.php":               false,
			"wp-config.php":           false,
			"wp-content":              false,
		} {
			err := exec.Command("runuser", "-u", "www-data", "--", "test", "-w", filepath.Join(docroot, path)).Run()
			if got := err == nil; got != want {
				t.Errorf("www-data can write %s: %v, want %v", path, got, want)
			}
		}
		for name, pid := range roles {
			if uid := procUID(t, pid); uid == 0 {
				t.Errorf("%s (pid %d) runs as root", name, pid)
			} else if u := userName(uid); u != "scalepress" {
				t.Errorf("%s (pid %d) runs as %s, want scalepress", name, pid, u)
			}
			spec := filepath.Join(s.dir, "run", "specs", name+".json")
			if fi, err := os.Stat(spec); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("spec %s: %v, mode %v; want 0600", spec, err, fi.Mode())
			}
		}
	})

	t.Run("control API: writes need the token and JSON, Host must be its own", func(t *testing.T) {
		tok, err := os.ReadFile(filepath.Join(s.dir, "secrets", "api-token"))
		if err != nil {
			t.Fatal(err)
		}
		before := s.status(t).Autoscaling
		for _, c := range []struct {
			name, path, host, ctype, token string
			want                           int
		}{
			{"cross-site form post", "/v1/scale", "", "text/plain", "", 415},
			{"the operator's token in a form post", "/v1/scale", "", "text/plain", string(tok), 415},
			{"JSON without a token", "/v1/scale", "", "application/json", "", 401},
			{"rebinding page with the token", "/v1/scale", "rebind.attacker.example:9090", "application/json", string(tok), 403},
			{"operator faking an edge acknowledgement", "/v1/upstreams/ack", "", "application/json", string(tok), 403},
			{"unauthenticated purge", "/v1/purge", "", "application/json", "", 401},
		} {
			req, _ := http.NewRequest("POST", s.api+c.path, strings.NewReader(`{"min": 1, "max": 1, "generation": 1, "all": true}`))
			req.Header.Set("Content-Type", c.ctype)
			if c.host != "" {
				req.Host = c.host
			}
			if c.token != "" {
				req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(c.token))
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.want || !strings.HasSuffix(string(body), "\n") || strings.Count(string(body), "\n") != 1 {
				t.Errorf("%s: %d %q, want %d with a one-line reason", c.name, resp.StatusCode, body, c.want)
			}
		}
		req, _ := http.NewRequest("GET", s.api+"/v1/status", nil)
		req.Host = "rebind.attacker.example:9090"
		if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 403 {
			t.Errorf("status read with a rebinding Host: %v %v, want 403", resp, err)
		}
		after := s.status(t)
		if *after.Autoscaling != *before {
			t.Errorf("refused writes changed autoscaling: %+v → %+v", before, after.Autoscaling)
		}
		// Every edge acknowledged the current node set with its own token.
		deadline := time.Now().Add(10 * time.Second)
		for {
			st := s.status(t)
			ok := st.UpstreamsGeneration > 0
			for _, e := range st.Edges {
				ok = ok && e.UpstreamsApplied == st.UpstreamsGeneration
			}
			if ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("edges did not acknowledge generation %d: %+v", st.UpstreamsGeneration, st.Edges)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})

	t.Run("admin logs in and publishes through the REST API", func(t *testing.T) {
		b := newBrowser(t)
		p := b.login(s.site, "admin", password)
		if p.status != 200 || !strings.Contains(p.url, "/wp-admin/") {
			t.Fatalf("login landed on %s (%d): %.300s", p.url, p.status, p.body)
		}
		mustContain(t, "wp-admin", p, "Dashboard")
		wrong := newBrowser(t).login(s.site, "admin", "not-the-password")
		if strings.Contains(wrong.url, "/wp-admin/") {
			t.Fatal("a wrong password logged in")
		}
		nonce := b.restNonce(s.site)
		created := b.publish(s.site, nonce, title, "Published by the end-to-end test.")
		permalink = created.Link
		if !strings.HasPrefix(permalink, s.site+"/") || strings.Contains(permalink, "?p=") {
			t.Errorf("permalink %q is not a pretty link on the site", permalink)
		}
		anon := newBrowser(t)
		mustContain(t, "home page", anon.get(s.site+"/"), title)
		pp := anon.get(permalink)
		if pp.status != 200 {
			t.Fatalf("permalink %s = %d", permalink, pp.status)
		}
		mustContain(t, "permalink", pp, title, "Published by the end-to-end test.")
	})

	t.Run("wp-cron runs from the controller on exactly one node", func(t *testing.T) {
		// A must-use plugin, as a site owner would install one, that schedules
		// an event and records which node ran it. WordPress's own page-load
		// cron is disabled, so only the controller's wp-cron can run it.
		plugin := `<?php
add_action('e2e_cron_event', function () {
    $log = get_option('e2e_cron_log', array());
    $log[] = $_SERVER['SERVER_ADDR'] . ' ' . microtime(true);
    update_option('e2e_cron_log', $log, false);
});
add_action('init', function () {
    if (!wp_next_scheduled('e2e_cron_event')) {
        wp_schedule_single_event(time() - 1, 'e2e_cron_event');
    }
});
add_action('rest_api_init', function () {
    register_rest_route('e2e/v1', '/cron', array('methods' => 'GET', 'permission_callback' => '__return_true',
        'callback' => function () { return get_option('e2e_cron_log', array()); }));
});
`
		for _, n := range st.Nodes {
			dir := filepath.Join(n.Docroot, "wp-content", "mu-plugins")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "e2e-cron.php"), []byte(plugin), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		b := newBrowser(t)
		deadline := time.Now().Add(45 * time.Second)
		var log []string
		for time.Now().Before(deadline) {
			p := b.get(s.site + "/wp-json/e2e/v1/cron") // also schedules the next event
			if p.status != 200 {
				t.Fatalf("cron log: %d %.200s", p.status, p.body)
			}
			log = nil
			if err := json.Unmarshal([]byte(p.body), &log); err != nil {
				t.Fatalf("cron log %q: %v", p.body, err)
			}
			if len(log) >= 2 {
				break
			}
			time.Sleep(time.Second)
		}
		if len(log) < 2 {
			t.Fatalf("the scheduled event ran %d times in 45 s with cron_interval 10s: %v", len(log), log)
		}
		first := strings.Fields(log[0])[0]
		for _, l := range log {
			if ip := strings.Fields(l)[0]; ip != first {
				t.Errorf("cron ran on %s and %s; want exactly one node: %v", first, ip, log)
			}
		}
	})

	t.Run("second up is refused while running", func(t *testing.T) {
		r := s.cli(t, "up", "--detach")
		if r.code == 0 || !strings.Contains(r.stderr, "already runs") {
			t.Errorf("second up: exit %d: %s", r.code, r.stderr)
		}
	})

	t.Run("down leaves no process", func(t *testing.T) {
		pids := allPIDs(s.status(t))
		r := s.cli(t, "down")
		if r.code != 0 {
			t.Fatalf("down: %d %s", r.code, r.stderr)
		}
		waitGone(t, pids, s.dir, 0) // down returns only when everything is gone
	})

	t.Run("up again keeps the post and the password", func(t *testing.T) {
		resume := s.up(t)
		t.Logf("resume up --detach took %s", resume.Round(time.Millisecond))
		b := newBrowser(t)
		mustContain(t, "home after resume", b.get(s.site+"/"), title)
		if p := b.login(s.site, "admin", password); !strings.Contains(p.url, "/wp-admin/") {
			t.Fatalf("admin password changed: login landed on %s", p.url)
		}
	})

	t.Run("kill -9 of the controller leaves no orphans", func(t *testing.T) {
		st := s.status(t)
		pids := allPIDs(st)
		if err := kill(st.Controller.PID, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitGone(t, pids, s.dir, 60*time.Second)
	})

	t.Run("up after a crash resumes", func(t *testing.T) {
		s.up(t)
		mustContain(t, "permalink after crash", newBrowser(t).get(permalink), title)
	})
}

// TestBadInput: each mistake gets a one-line cause, the contract's exit code,
// and leaves nothing running.
func TestBadInput(t *testing.T) {
	t.Run("unknown config key", func(t *testing.T) {
		dir := t.TempDir()
		cfg := filepath.Join(dir, "bad.yaml")
		os.WriteFile(cfg, []byte("nodes:\n  count: 2\n  cuont: 3\n"), 0o644)
		r := runBin(t, "up", "--detach", "--dir", dir, "--config", cfg)
		if r.code != 2 || !strings.Contains(r.stderr, "bad.yaml:3") || !strings.Contains(r.stderr, `"cuont"`) {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
	t.Run("invalid value names the field", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "scalepress.yaml"), []byte("nodes:\n  count: 0\n"), 0o644)
		r := runBin(t, "up", "--detach", "--dir", dir)
		if r.code != 2 || !strings.Contains(r.stderr, "nodes.count") {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
	t.Run("unknown command and flag", func(t *testing.T) {
		if r := runBin(t, "upp"); r.code != 2 {
			t.Errorf("unknown command: exit %d", r.code)
		}
		if r := runBin(t, "up", "--detatch"); r.code != 2 {
			t.Errorf("unknown flag: exit %d", r.code)
		}
	})
	t.Run("port in use", func(t *testing.T) {
		s := newStack(t, 43, 1)
		ln, err := net.Listen("tcp", "127.43.0.1:8080")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		r := s.cli(t, "up", "--detach")
		if r.code != 1 || !strings.Contains(r.stderr, "127.43.0.1:8080 is already in use") {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
		if left := processesUsing(s.dir); len(left) > 0 {
			t.Errorf("left running: %v", left)
		}
	})
	t.Run("state dir from a newer version", func(t *testing.T) {
		s := newStack(t, 44, 1)
		os.WriteFile(filepath.Join(s.dir, "state.json"), []byte(`{"format": 99, "version": "9.0.0"}`), 0o644)
		r := s.cli(t, "up", "--detach")
		if r.code != 1 || !strings.Contains(r.stderr, "newer scalepress") {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
		if left := processesUsing(s.dir); len(left) > 0 {
			t.Errorf("left running: %v", left)
		}
	})
	t.Run("missing Debian package is named", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "scalepress.yaml"), []byte("wordpress:\n  source: /nonexistent/wordpress\n"), 0o644)
		r := runBin(t, "up", "--detach", "--dir", dir)
		if r.code != 1 || !strings.Contains(r.stderr, "Debian package wordpress") || !strings.Contains(r.stderr, "install-deps.sh") {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
	t.Run("MariaDB failing to start", func(t *testing.T) {
		s := newStack(t, 45, 1)
		// A datadir marked initialised but empty: mariadbd cannot open its privilege tables.
		data := filepath.Join(s.dir, "db", "db-1", "data")
		os.MkdirAll(data, 0o755)
		os.WriteFile(filepath.Join(data, ".scalepress-initialized"), []byte("x"), 0o644)
		t0 := time.Now()
		r := s.cli(t, "up", "--detach")
		if r.code != 1 || !strings.Contains(r.stderr, "db-1 exited while starting") || strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
		t.Logf("failed in %s: %s", time.Since(t0).Round(time.Millisecond), r.stderr)
		if left := processesUsing(s.dir); len(left) > 0 {
			t.Errorf("left running: %v", left)
		}
	})
	t.Run("php-fpm failing to start", func(t *testing.T) {
		s := newStack(t, 46, 1)
		// Something sits where php-fpm's socket must go.
		os.MkdirAll(filepath.Join(s.dir, "nodes", "node-1", "run", "php-fpm.sock", "in-the-way"), 0o755)
		r := s.cli(t, "up", "--detach")
		if r.code != 1 || !strings.Contains(r.stderr, "node-1 exited while starting") || !strings.Contains(r.stderr, "php-fpm") {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
		if left := processesUsing(s.dir); len(left) > 0 {
			t.Errorf("left running: %v", left)
		}
	})
	t.Run("init writes a config that up accepts", func(t *testing.T) {
		dir := t.TempDir()
		if r := runBin(t, "init", "--dir", dir); r.code != 0 {
			t.Fatalf("init: exit %d: %s", r.code, r.stderr)
		}
		b, err := os.ReadFile(filepath.Join(dir, "scalepress.yaml"))
		if err != nil || !strings.Contains(string(b), "# scalepress configuration") {
			t.Fatalf("init wrote %q: %v", b, err)
		}
		if r := runBin(t, "init", "--dir", dir); r.code != 2 || !strings.Contains(r.stderr, "--force") {
			t.Errorf("init over an existing config: exit %d %q", r.code, r.stderr)
		}
		// status loads the config first: exit 1 (nothing running), not 2 (bad config).
		if r := runBin(t, "status", "--dir", dir); r.code != 1 || !strings.Contains(r.stderr, "no environment is running") {
			t.Errorf("status with the written config: exit %d %q", r.code, r.stderr)
		}
	})
	t.Run("status of nothing", func(t *testing.T) {
		r := runBin(t, "status", "--dir", t.TempDir())
		if r.code != 1 || !strings.Contains(r.stderr, "no environment is running") {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
}
