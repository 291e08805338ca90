package e2e

import (
	"archive/zip"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The plugin of TestPluginUpdateAtomic: 200 files, of which first.php and
// last/last.php carry the version; check.php requires first.php, the 196
// fillers and last.php, and prints both versions.
const mixPluginFiles = 200

func mixPluginZip(t *testing.T, dir string, version int) string {
	t.Helper()
	p := filepath.Join(dir, fmt.Sprintf("mixcheck-%d.zip", version))
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	add := func(name, src string) {
		w, err := zw.Create("mixcheck/" + name)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, src)
	}
	add("mixcheck.php", fmt.Sprintf("<?php\n/*\nPlugin Name: mixcheck\nVersion: %d\n*/\n", version))
	add("first.php", fmt.Sprintf("<?php $mixcheck_first = '%d';\n", version))
	add("last/last.php", fmt.Sprintf("<?php $mixcheck_last = '%d';\n", version))
	check := "<?php\nrequire __DIR__ . '/first.php';\n"
	for i := range mixPluginFiles - 4 {
		add(fmt.Sprintf("inc/f%03d.php", i), fmt.Sprintf("<?php $mixcheck_fill[] = '%d-%d';\n", version, i))
		check += fmt.Sprintf("require __DIR__ . '/inc/f%03d.php';\n", i)
	}
	check += "require __DIR__ . '/last/last.php';\nheader('Cache-Control: no-store');\necho $mixcheck_first, ' ', $mixcheck_last;\n"
	add("check.php", check)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	os.Chmod(p, 0o644)
	return p
}

// upgraderPHP installs or updates a plugin from a local zip the way wp-admin's
// "Upload Plugin" → "Replace current with uploaded" does: WordPress's own
// Plugin_Upgrader with overwrite_package.
const upgraderPHP = `<?php
$_SERVER['HTTP_HOST'] = 'localhost';
$_SERVER['SERVER_NAME'] = 'localhost';
$_SERVER['SERVER_PORT'] = 80;
$_SERVER['REQUEST_URI'] = '/wp-admin/update.php';
$_SERVER['REQUEST_METHOD'] = 'POST';
define('WP_ADMIN', true);
require $argv[1] . '/wp-load.php';
require_once ABSPATH . 'wp-admin/includes/admin.php';
require_once ABSPATH . 'wp-admin/includes/class-wp-upgrader.php';
wp_set_current_user(1);
// The plugin's directory stays deleted 200 ms, as a large plugin's or a slow
// disk's would: requests arrive while its files are missing.
add_filter('upgrader_clear_destination', function ($removed) { usleep(200000); return $removed; });
$upgrader = new Plugin_Upgrader(new Automatic_Upgrader_Skin());
$r = $upgrader->install($argv[2], array('overwrite_package' => true));
if ($r !== true) {
    fwrite(STDERR, 'install: ' . (is_wp_error($r) ? $r->get_error_message() : var_export($r, true)) . "\n" . implode("\n", $upgrader->skin->get_upgrade_messages()) . "\n");
    exit(1);
}
echo "installed\n";
`

// upgradePlugin runs WordPress's upgrader with PHP CLI as the PHP user on
// one node's docroot.
func upgradePlugin(t *testing.T, script, docroot, zipPath string) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := []string{"php", "-d", "display_errors=stderr", script, docroot, zipPath}
	if os.Geteuid() == 0 {
		args = append([]string{"runuser", "-u", "www-data", "--"}, args...)
	}
	t0 := time.Now()
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "installed") {
		t.Fatalf("upgrader: %v\n%s", err, out)
	}
	return time.Since(t0)
}

// nodeChecks is what a checker saw on one node.
type nodeChecks struct {
	mu                sync.Mutex
	requests, ok      int
	mixes, errs       int
	firstBad, lastBad time.Time
	examples          []string
	seen              map[string]bool
}

func (c *nodeChecks) record(body string, status int, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requests++
	a, b, found := strings.Cut(body, " ")
	bad := ""
	switch {
	case err != nil:
		c.errs++
		bad = err.Error()
	case status != 200 || !found:
		c.errs++
		bad = fmt.Sprintf("status %d %.80q", status, body)
	case a != b:
		c.mixes++
		bad = "mix " + body
	default:
		c.ok++
		c.seen[body] = true
		return
	}
	now := time.Now()
	if c.firstBad.IsZero() {
		c.firstBad = now
	}
	c.lastBad = now
	if len(c.examples) < 5 {
		c.examples = append(c.examples, bad)
	}
}

// TestPluginUpdateAtomic (loopback block 81): a 200-file plugin is updated
// three times with WordPress's upgrader on node-1, while checkers request a
// PHP file of it that requires both version-carrying files, on every node,
// continuously, and one more request starts every 10 ms without waiting
// for the others. No response may be a mix of versions, nor an error
// (a file missing), on any node (issue 17, ADR 26). The upgrader keeps the
// plugin's directory deleted for 200 ms, so requests arrive on node-1 while
// its files are missing: the node agent must hold them at the request gate
// until the copy is done, not send them to WordPress's 404.
func TestPluginUpdateAtomic(t *testing.T) {
	s := newStack(t, 81, 2)
	s.up(t)
	st := s.status(t)
	if len(st.Nodes) != 2 {
		t.Fatalf("want 2 nodes, got %+v", st.Nodes)
	}
	work, err := os.MkdirTemp("", "scalepress-units-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(work)
	os.Chmod(work, 0o755)
	script := filepath.Join(work, "upgrade.php")
	if err := os.WriteFile(script, []byte(upgraderPHP), 0o644); err != nil {
		t.Fatal(err)
	}
	origin := st.Nodes[0].Docroot
	client := &http.Client{Timeout: 5 * time.Second}
	get := func(addr string) (string, int, error) {
		resp, err := client.Get("http://" + addr + "/wp-content/plugins/mixcheck/check.php")
		if err != nil {
			return "", 0, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), resp.StatusCode, err
	}
	waitVersion := func(v int) time.Duration {
		t.Helper()
		t0 := time.Now()
		want := fmt.Sprintf("%d %d", v, v)
		for _, n := range st.Nodes {
			for {
				body, code, err := get(n.Addr)
				if err == nil && code == 200 && body == want {
					break
				}
				if time.Since(t0) > 60*time.Second {
					t.Fatalf("%s does not serve version %d after 60 s: %d %q %v", n.ID, v, code, body, err)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		return time.Since(t0)
	}

	took := upgradePlugin(t, script, origin, mixPluginZip(t, work, 1))
	t.Logf("install of version 1 with the upgrader on %s: %s; every node serves it after %s more", st.Nodes[0].ID, took.Round(time.Millisecond), waitVersion(1).Round(time.Millisecond))

	checks := make(map[string]*nodeChecks)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, n := range st.Nodes {
		c := &nodeChecks{seen: make(map[string]bool)}
		checks[n.ID] = c
		for range 2 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					body, code, err := get(n.Addr)
					c.record(body, code, err)
				}
			})
		}
		wg.Go(func() {
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			running := make(chan struct{}, 32)
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				select {
				case running <- struct{}{}:
				default:
					continue // 32 waiting already
				}
				wg.Go(func() {
					defer func() { <-running }()
					body, code, err := get(n.Addr)
					c.record(body, code, err)
				})
			}
		})
	}
	for v := 2; v <= 4; v++ {
		took := upgradePlugin(t, script, origin, mixPluginZip(t, work, v))
		t.Logf("update to version %d with the upgrader on %s: %s; every node serves it after %s more", v, st.Nodes[0].ID, took.Round(time.Millisecond), waitVersion(v).Round(time.Millisecond))
	}
	time.Sleep(500 * time.Millisecond) // the checkers go on a little after the last update
	close(stop)
	wg.Wait()

	for _, n := range st.Nodes {
		c := checks[n.ID]
		window := time.Duration(0)
		if !c.firstBad.IsZero() {
			window = c.lastBad.Sub(c.firstBad)
		}
		t.Logf("%s: %d requests during 3 updates: %d consistent, %d mixed, %d failed (missing files); bad responses spread over %s; versions seen %v; examples %q",
			n.ID, c.requests, c.ok, c.mixes, c.errs, window.Round(time.Millisecond), c.seen, c.examples)
		if c.mixes > 0 || c.errs > 0 {
			t.Errorf("%s served %d responses mixing two versions of the plugin and %d failed ones, want none", n.ID, c.mixes, c.errs)
		}
		if c.ok == 0 {
			t.Errorf("%s: no check succeeded", n.ID)
		}
		// The requests the node agent held at the gate before it routed
		// them: on node-1, those that came while the plugin was deleted.
		resp, err := http.Get("http://" + n.Addr + "/_scalepress/metrics")
		if err != nil {
			t.Fatal(err)
		}
		m, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		waits := -1
		for line := range strings.Lines(string(m)) {
			if strings.HasPrefix(line, "scalepress_node_gate_waits_total{") {
				fmt.Sscanf(line[strings.LastIndexByte(line, ' ')+1:], "%d", &waits)
			}
		}
		t.Logf("%s: %d requests held at the request gate before their route was decided", n.ID, waits)
		if n.ID == st.Nodes[0].ID && waits < 1 {
			t.Errorf("%s held %d requests at the gate; want some: requests must have come while the upgrader had the plugin deleted, or this test does not test that", n.ID, waits)
		}
	}
}
