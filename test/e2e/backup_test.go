package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scalepress/scalepress/test/tools"
)

// TestBackupRestore (block 71): a site with posts, a comment, a media upload
// and an active plugin; a backup taken while the site serves uncached
// pages and takes writes (zero failed requests, no write pause over a
// second); more posts, then one deleted by mistake; restore --at a moment
// between the two into a new directory; down the original, up the
// restored one: the deleted post is back, the later post is there, the
// media file is byte-identical, the plugin is active, the admin logs in
// with the same password. A damaged backup is refused by verify, a time
// the binary logs do not reach by restore, both leaving nothing behind.
func TestBackupRestore(t *testing.T) {
	t.Run("directory", func(t *testing.T) { backupRestore(t, 71, false) })
	t.Run("s3", func(t *testing.T) { backupRestore(t, 79, true) })
}

// backupRestore runs the scenario on block with the backups in a
// directory, or in a versitygw bucket (s3://backups/site).
func backupRestore(t *testing.T, block int, s3 bool) {
	s := newStack(t, block, 2)
	cfg, _ := os.ReadFile(s.config)
	backupCfg := "backup:\n  binlog_interval: 1s\n"
	var gwData string
	if s3 {
		gw := tools.StartVersitygw(t, fmt.Sprintf("127.%d.5.1:0", block))
		gw.MakeBucket(t, "backups")
		gwData = gw.Data
		keys := t.TempDir()
		ak, sk := filepath.Join(keys, "access"), filepath.Join(keys, "secret")
		os.WriteFile(ak, []byte(gw.AccessKey+"\n"), 0o600)
		os.WriteFile(sk, []byte(gw.SecretKey+"\n"), 0o600)
		backupCfg += fmt.Sprintf("  to: s3://backups/site\n  s3:\n    endpoint: %s\n    access_key_file: %s\n    secret_key_file: %s\n", gw.Endpoint, ak, sk)
	}
	os.WriteFile(s.config, append(cfg, []byte(backupCfg)...), 0o644)
	s.up(t)
	password := adminPassword(t, s)
	b := newBrowser(t)
	if p := b.login(s.site, "admin", password); !strings.Contains(p.url, "/wp-admin/") {
		t.Fatalf("login landed on %s", p.url)
	}
	nonce := b.restNonce(s.site)

	// Content before the backup.
	kept := b.publish(s.site, nonce, uniqueTitle("kept post"), "kept body")
	victim := b.publish(s.site, nonce, uniqueTitle("victim post"), "the post deleted by mistake")
	comment, _ := json.Marshal(map[string]any{"post": kept.ID, "content": "e2e backup comment", "status": "approved"})
	if p := b.do("POST", s.site+"/wp-json/wp/v2/comments", bytes.NewReader(comment), map[string]string{"Content-Type": "application/json", "X-WP-Nonce": nonce}); p.status != http.StatusCreated {
		t.Fatalf("comment: %d %.300s", p.status, p.body)
	}
	jpeg := tinyJPEG(t, 71)
	mediaURL := b.uploadMedia(s.site, nonce, "backup-e2e.jpg", jpeg)
	st := s.status(t)
	docroots := inServiceDocroots(st)
	var one string
	for _, d := range docroots {
		one = d
		break
	}
	plugin := filepath.Join(one, "wp-content", "plugins", "e2e-backup")
	os.MkdirAll(plugin, 0o775)
	os.WriteFile(filepath.Join(plugin, "e2e-backup.php"), []byte("<?php\n/*\nPlugin Name: e2e backup\n*/\nadd_action('wp_footer', function () { echo '<!-- e2e-backup-plugin-active -->'; });\n"), 0o664)
	waitEverywhere(t, docroots, "wp-content/plugins/e2e-backup/e2e-backup.php", true, 10*time.Second)
	activate, _ := json.Marshal(map[string]string{"status": "active"})
	if p := b.do("POST", s.site+"/wp-json/wp/v2/plugins/e2e-backup/e2e-backup", bytes.NewReader(activate), map[string]string{"Content-Type": "application/json", "X-WP-Nonce": nonce}); p.status != http.StatusOK {
		t.Fatalf("activate plugin: %d %.300s", p.status, p.body)
	}
	mustContain(t, "a search page with the plugin active", b.get(s.site+"/?s=plugin-check"), "e2e-backup-plugin-active")

	// The backup, under uncached reads and a stream of posts and commits.
	load := startLoad(searches(s.site, "backup"), 10)
	poster := startPoster(t, s.site, password)
	probe := startWriteProbe(t, s)
	poster.waitAcks(t, 2, 30*time.Second)
	t0 := time.Now()
	r := s.cli(t, "backup")
	took := time.Since(t0)
	if r.code != 0 {
		t.Fatalf("backup: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
	time.Sleep(time.Second) // writes after the backup ended belong to the window
	ok, failed, failures := load.Stop()
	_, postErrs := poster.finish()
	gap, commits, probeErrs := probe.stop()
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	id := lines[len(lines)-1]
	t.Logf("backup %s took %s: %s", id, took.Round(time.Millisecond), lines[0])
	t.Logf("during it: %d searches ok, %d failed; %d posts failed; %d probe commits, longest gap %s", ok, failed, len(postErrs), commits, gap.Round(time.Millisecond))
	if failed > 0 || len(postErrs) > 0 || len(probeErrs) > 0 {
		t.Errorf("requests failed during the backup: searches %v, posts %v, writes %v", failures, postErrs, probeErrs)
	}
	if gap > time.Second {
		t.Errorf("writes paused %s during the backup, over the 1s bound", gap)
	}
	var list struct {
		Target  string `json:"target"`
		Backups []struct {
			ID   string `json:"id"`
			Size int64  `json:"size"`
		} `json:"backups"`
	}
	if r := s.cli(t, "backups", "--json"); r.code != 0 || json.Unmarshal([]byte(r.stdout), &list) != nil || len(list.Backups) != 1 || list.Backups[0].ID != id {
		t.Fatalf("backups --json: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}

	// After the backup: a new post, then the deletion by mistake, a second
	// apart (binary log times have one-second steps).
	later := b.publish(s.site, nonce, uniqueTitle("later post"), "published after the backup")
	laterAt := time.Now()
	for time.Now().Truncate(time.Second).Equal(laterAt.Truncate(time.Second)) {
		time.Sleep(50 * time.Millisecond)
	}
	at := time.Now().Truncate(time.Second)
	if p := b.do("DELETE", fmt.Sprintf("%s/wp-json/wp/v2/posts/%d?force=true", s.site, victim.ID), nil, map[string]string{"X-WP-Nonce": nonce}); p.status != http.StatusOK {
		t.Fatalf("delete: %d %.300s", p.status, p.body)
	}
	if p := b.get(fmt.Sprintf("%s/?p=%d&s=gone", s.site, victim.ID)); strings.Contains(p.body, "the post deleted by mistake") {
		t.Fatalf("the deleted post is still served")
	}
	waitArchived(t, s, at.Add(2*time.Second), 30*time.Second)

	// Verify, then refusals that leave nothing behind.
	target := list.Target
	if r := s.cli(t, "backup", "--verify", id); r.code != 0 || !strings.Contains(r.stdout, "is good") {
		t.Fatalf("backup --verify: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
	parent, err := os.MkdirTemp("", "scalepress-e2e-restore-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(parent, 0o755) // service users (mysql, www-data) must reach it
	t.Cleanup(func() { os.RemoveAll(parent) })
	backupPath := target + "/" + id
	if r := runBin(t, "restore", backupPath, "--config", s.config, "--dir", filepath.Join(parent, "future"), "--at", time.Now().Add(time.Hour).UTC().Format(time.RFC3339)); r.code == 0 || !strings.Contains(r.stderr, "archived up to") {
		t.Errorf("restore --at an hour ahead: exit %d: %s", r.code, r.stderr)
	}
	if r := runBin(t, "restore", backupPath, "--config", s.config, "--dir", s.dir); r.code == 0 || !strings.Contains(r.stderr, "exists") {
		t.Errorf("restore over the running environment: exit %d: %s", r.code, r.stderr)
	}

	// Restore to the moment between the later post and the deletion.
	newDir := filepath.Join(parent, "restored")
	t0 = time.Now()
	if r := runBin(t, "restore", backupPath, "--config", s.config, "--dir", newDir, "--at", at.UTC().Format(time.RFC3339)); r.code != 0 {
		t.Fatalf("restore --at: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
	restoreTook := time.Since(t0)
	if es, _ := os.ReadDir(parent); len(es) != 1 {
		t.Errorf("beside the restored directory: %v, want only it", es)
	}
	if r := s.cli(t, "down"); r.code != 0 {
		t.Fatalf("down: %s", r.stderr)
	}
	restored := &stack{dir: newDir, config: filepath.Join(newDir, "scalepress.yaml"), site: s.site, api: s.api}
	t.Cleanup(func() { restored.cli(t, "down") })
	t0 = time.Now()
	restored.up(t)
	t.Logf("restore took %s, up of the restored environment %s", restoreTook.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))

	rb := newBrowser(t)
	if got := adminPassword(t, restored); got != password {
		t.Errorf("restored admin password differs")
	}
	if p := rb.login(s.site, "admin", password); !strings.Contains(p.url, "/wp-admin/") {
		t.Fatalf("the admin does not log in to the restored site: landed on %s", p.url)
	}
	for _, c := range []struct {
		what string
		id   int
		want string
	}{
		{"the post deleted by mistake", victim.ID, "the post deleted by mistake"},
		{"the post from before the backup", kept.ID, "e2e backup comment"},
		{"the post from after the backup", later.ID, "published after the backup"},
	} {
		p := rb.get(fmt.Sprintf("%s/?p=%d", s.site, c.id))
		if p.status != 200 || !strings.Contains(p.body, c.want) {
			t.Errorf("%s (post %d) on the restored site: status %d, lacks %q", c.what, c.id, p.status, c.want)
		}
	}
	resp, err := http.Get(mediaURL)
	if err != nil {
		t.Fatal(err)
	}
	media, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(media, jpeg) {
		t.Errorf("media on the restored site: status %d, %d bytes, identical %v", resp.StatusCode, len(media), bytes.Equal(media, jpeg))
	}
	mustContain(t, "a search page of the restored site", rb.get(s.site+"/?s=plugin-check"), "e2e-backup-plugin-active")

	// A damaged backup is refused by verify.
	db := filepath.Join(target, id, "db.xbstream")
	if s3 {
		db = filepath.Join(gwData, "backups", "site", id, "db.xbstream")
	}
	f, err := os.OpenFile(db, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("damage"), 4096)
	f.Close()
	if r := restored.cli(t, "backup", "--verify", id, "--to", target); r.code != 1 || !strings.Contains(r.stderr, "checksum mismatch") {
		t.Errorf("verify of a damaged backup: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
}

// waitArchived waits until the binary log archive reaches until.
func waitArchived(t *testing.T, s *stack, until time.Time, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get(s.api + "/metrics")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, l := range strings.Split(string(body), "\n") {
				if v, ok := strings.CutPrefix(l, "scalepress_binlog_archived_until_timestamp_seconds "); ok {
					if n, _ := strconv.ParseFloat(strings.TrimSpace(v), 64); n >= float64(until.Unix()) {
						return
					}
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the binary log archive did not reach %s in %s", until.Format(time.RFC3339), timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// writeProbe commits a row through the router every 20 ms and records the
// longest time between two commits.
type writeProbe struct {
	stopc chan struct{}
	done  chan struct{}
	mu    sync.Mutex
	gap   time.Duration
	n     int
	errs  []string
}

func startWriteProbe(t *testing.T, s *stack) *writeProbe {
	db := s.memberDB(t, s.status(t).DB.Router)
	if _, err := db.Exec("CREATE TABLE IF NOT EXISTS e2e_probe (id INT AUTO_INCREMENT PRIMARY KEY, at DATETIME(6))"); err != nil {
		t.Fatal(err)
	}
	p := &writeProbe{stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		last := time.Now()
		for {
			select {
			case <-p.stopc:
				return
			case <-time.After(20 * time.Millisecond):
			}
			_, err := db.Exec("INSERT INTO e2e_probe (at) VALUES (NOW(6))")
			now := time.Now()
			p.mu.Lock()
			if err != nil {
				p.errs = append(p.errs, err.Error())
			} else {
				p.gap, p.n, last = max(p.gap, now.Sub(last)), p.n+1, now
			}
			p.mu.Unlock()
		}
	}()
	return p
}

func (p *writeProbe) stop() (time.Duration, int, []string) {
	close(p.stopc)
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.gap, p.n, p.errs
}

// TestBackupGalera (block 78): with three members, the backup is copied
// from a member that is not the router's writer, desynced around the copy,
// so writes through the router never pause over a second and no member
// leaves the cluster; the restored environment forms a three-member
// cluster again from the one copied datadir (the others join by SST).
func TestBackupGalera(t *testing.T) {
	s := galeraStack(t, 78, 1)
	s.up(t)
	st := s.waitDB(t, "three synced members", 60*time.Second, allSynced(3))
	writer := st.DB.Writer
	probe := startWriteProbe(t, s)
	time.Sleep(500 * time.Millisecond)
	r := s.cli(t, "backup")
	gap, commits, probeErrs := probe.stop()
	if r.code != 0 {
		t.Fatalf("backup: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	id := lines[len(lines)-1]
	t.Logf("%s; writer %s; %d commits through the router, longest gap %s", lines[0], writer, commits, gap.Round(time.Millisecond))
	if !strings.Contains(lines[0], "database from db-3") || writer == "db-3" {
		t.Errorf("backup copied from the wrong member (writer %s): %s", writer, lines[0])
	}
	if len(probeErrs) > 0 || gap > time.Second {
		t.Errorf("writes during the backup: errors %v, longest gap %s (bound 1s)", probeErrs, gap)
	}
	st = s.waitDB(t, "three synced members after the backup", 30*time.Second, allSynced(3))
	var posts string
	posts = s.sql(t, "SELECT COUNT(*) FROM wordpress.e2e_probe")

	parent, err := os.MkdirTemp("", "scalepress-e2e-restore-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(parent, 0o755)
	t.Cleanup(func() { os.RemoveAll(parent) })
	newDir := filepath.Join(parent, "restored")
	if r := runBin(t, "restore", filepath.Join(s.dir, "backups", id), "--dir", newDir); r.code != 0 {
		t.Fatalf("restore: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
	if r := s.cli(t, "down"); r.code != 0 {
		t.Fatalf("down: %s", r.stderr)
	}
	restored := &stack{dir: newDir, config: filepath.Join(newDir, "scalepress.yaml"), site: s.site, api: s.api}
	t.Cleanup(func() { restored.cli(t, "down") })
	restored.up(t)
	restored.waitDB(t, "three synced members in the restored environment", 120*time.Second, allSynced(3))
	got := restored.sql(t, "SELECT COUNT(*) FROM wordpress.e2e_probe")
	if n, _ := strconv.Atoi(got); n < 1 || n > mustAtoi(t, posts) {
		t.Errorf("restored probe rows %s, want between 1 and %s (the rows at the backup)", got, posts)
	}
	if p := newBrowser(t).get(s.site + "/?s=restored"); p.status != 200 {
		t.Errorf("restored site: status %d", p.status)
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return n
}
