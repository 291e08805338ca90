package e2e

import (
	"archive/zip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scalepress/scalepress/internal/api"
)

// newerCore copies Debian's WordPress core (links resolved, wp-content and
// wp-config.php left out: not core's) into a new directory, with
// $wp_version set to version, $wp_db_version set to db (unless 0) and the
// generator meta carrying mark.
func newerCore(t *testing.T, version string, db int, mark string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "wordpress")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	src := "/usr/share/wordpress"
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		n := e.Name()
		if n == "wp-content" || n == "wp-config.php" || strings.HasPrefix(n, ".") {
			continue
		}
		if out, err := exec.Command("cp", "-rL", filepath.Join(src, n), dst).CombinedOutput(); err != nil {
			t.Fatalf("cp -rL %s: %v: %s", n, err, out)
		}
	}
	edit := func(rel, old, new string) {
		t.Helper()
		p := filepath.Join(dst, rel)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		re := regexp.MustCompile(old)
		if !re.Match(b) {
			t.Fatalf("%s: %q not found", rel, old)
		}
		if err := os.WriteFile(p, re.ReplaceAll(b, []byte(new)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	edit("wp-includes/version.php", `\$wp_version = '[^']*';`, fmt.Sprintf("$$wp_version = '%s';", version))
	if db != 0 {
		edit("wp-includes/version.php", `\$wp_db_version = [0-9]+;`, fmt.Sprintf("$$wp_db_version = %d;", db))
	}
	if mark != "" {
		edit("wp-includes/general-template.php", `content="WordPress ' \. esc_attr\( get_bloginfo\( 'version' \) \) \. '"`,
			`content="WordPress ' . esc_attr( get_bloginfo( 'version' ) ) . ' `+mark+`"`)
	}
	return dst
}

func debianDBVersion(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/usr/share/wordpress/wp-includes/version.php")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`\$wp_db_version = ([0-9]+);`).FindSubmatch(b)
	if m == nil {
		t.Fatal("no $wp_db_version in Debian's version.php")
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// generator is the WordPress generator meta of an uncached page.
func generator(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`<meta name="generator" content="(WordPress [^"]*)"`).FindSubmatch(b)
	if m == nil {
		return fmt.Sprintf("(status %d, no generator meta)", resp.StatusCode)
	}
	return string(m[1])
}

func (s *stack) releases(t *testing.T) api.Releases {
	t.Helper()
	r := s.cli(t, "release", "--json")
	if r.code != 0 {
		t.Fatalf("release --json: exit %d: %s", r.code, r.stderr)
	}
	var doc api.Releases
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("release --json is not JSON: %v\n%s", err, r.stdout)
	}
	return doc
}

// waitNodesAt waits until every in-service node has applied seq and serves
// want as its generator (asked directly, uncached).
func (s *stack) waitNodesAt(t *testing.T, seq uint64, want string, timeout time.Duration) time.Duration {
	t.Helper()
	t0 := time.Now()
	for {
		st := s.status(t)
		done := len(st.Nodes) > 0
		var seen []string
		for _, n := range st.Nodes {
			if n.State != "in-service" {
				continue
			}
			g := generator(t, "http://"+n.Addr+"/?s=release-check")
			seen = append(seen, fmt.Sprintf("%s: seq %d, %q", n.ID, n.FilesSeq, g))
			if n.FilesSeq < seq || g != want {
				done = false
			}
		}
		if done {
			return time.Since(t0)
		}
		if time.Since(t0) > timeout {
			t.Fatalf("after %s, nodes are not all at seq %d serving %q: %v", timeout, seq, want, seen)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func zipFile(t *testing.T, names map[string]string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "plugin.zip")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for n, c := range names {
		w, _ := zw.Create(n)
		io.WriteString(w, c)
	}
	zw.Close()
	f.Close()
	return p
}

// checkCoreShared checks that after a release every file of wp-includes
// PHP may not write is one inode in both nodes' docroots, linked from the
// host's link pool: the release's unit gave every file a new mtime, and
// each node's stage linked the files it kept instead of copying them
// (ADR 29, "A unit's stage links what it keeps").
func checkCoreShared(t *testing.T, s *stack) {
	t.Helper()
	docroots := inServiceDocroots(s.status(t))
	one, two := docroots["node-1"], docroots["node-2"]
	if one == "" || two == "" {
		t.Fatalf("nodes in service: %v", docroots)
	}
	var files, copies int
	var first string
	filepath.WalkDir(filepath.Join(one, "wp-includes"), func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil || fi.Mode().Perm()&0o022 != 0 {
			return nil
		}
		files++
		rel, _ := filepath.Rel(one, p)
		other, err := os.Lstat(filepath.Join(two, rel))
		if err != nil || !os.SameFile(fi, other) || fi.Sys().(*syscall.Stat_t).Nlink < 3 {
			if copies++; first == "" {
				first = rel
			}
		}
		return nil
	})
	if files < 100 || copies != 0 {
		t.Errorf("after the release, %d of %d core files in wp-includes are not one inode linked from the pool into both docroots (first: %s)", copies, files, first)
	}
}

// TestReleaseUpdateRollback: a newer core built from Debian's tree goes to
// every node under uncached load with no failed request; bad input is
// refused with nothing changed; rollback to the first release restores its
// files and version.
func TestReleaseUpdateRollback(t *testing.T) {
	const block = 82
	s := newStack(t, block, 2)
	feed := t.TempDir()
	cfg, err := os.ReadFile(s.config)
	if err != nil {
		t.Fatal(err)
	}
	cfg = append(cfg, fmt.Sprintf("releases:\n  source_dir: %s\n  auto: minor\n  check_every: 10s\n", feed)...)
	if err := os.WriteFile(s.config, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	s.up(t)

	before := s.releases(t)
	old := before.Current.Core
	if old == "" || before.Current.ID != "" || len(before.Releases) != 0 {
		t.Fatalf("release before any update: %+v", before)
	}
	oldGen := "WordPress " + old
	if g := generator(t, s.site+"/?s=before"); g != oldGen {
		t.Fatalf("generator before the update %q, want %q", g, oldGen)
	}
	const newVersion = "6.1.99"
	newGen := "WordPress " + newVersion + " e2e-release"
	oldDB := debianDBVersion(t)
	src := newerCore(t, newVersion, oldDB+1, "e2e-release")

	t.Run("Site Health: updates are managed by scalepress", func(t *testing.T) {
		docroot := s.status(t).Nodes[0].Docroot
		script := filepath.Join(t.TempDir(), "health.php")
		os.WriteFile(script, []byte(`<?php
$_SERVER['HTTP_HOST'] = 'localhost'; $_SERVER['REQUEST_URI'] = '/';
require getenv('DOCROOT') . '/wp-load.php';
require_once ABSPATH . 'wp-admin/includes/class-wp-site-health.php';
$tests = WP_Site_Health::get_tests();
echo isset( $tests['async']['background_updates'] ) ? "wordpress-test\n" : "no-wordpress-test\n";
$t = $tests['direct']['scalepress_updates']['test'] ?? null;
echo is_callable( $t ) ? call_user_func( $t )['status'] : 'missing', "\n";
echo apply_filters( 'auto_update_core', true ) ? "core-auto\n" : "no-core-auto\n";
`), 0o644)
		cmd := exec.Command("php", script)
		cmd.Env = append(os.Environ(), "DOCROOT="+docroot)
		out, err := cmd.CombinedOutput()
		if want := "no-wordpress-test\ngood\nno-core-auto\n"; err != nil || !strings.HasSuffix(string(out), want) {
			t.Errorf("Site Health in WordPress: %v\n%s\nwant it to end %q", err, out, want)
		}
	})

	t.Run("bad input is refused and changes nothing", func(t *testing.T) {
		seq := s.status(t).Files.Seq
		notWP := t.TempDir()
		os.WriteFile(filepath.Join(notWP, "index.php"), []byte("<?php"), 0o644)
		slip := zipFile(t, map[string]string{"evil/evil.php": "<?php\n/* Plugin Name: Evil */", "evil/../../../wp-config.php": "<?php"})
		for _, tt := range []struct {
			args []string
			want string
		}{
			{[]string{"update", "core", "--from", notWP}, "is not WordPress: it has no wp-includes/version.php"},
			{[]string{"update", "core", "--from", newerCore(t, "6.0.1", 0, "")}, "is older than the current " + old + "; pass --force"},
			{[]string{"update", "plugin", "evil", "--from", slip}, "climbs out of the directory"},
			{[]string{"rollback", "r9"}, "there is no release r9"},
		} {
			r := s.cli(t, tt.args...)
			if r.code != 2 || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("%v: exit %d, stderr %q; want 2 saying %q", tt.args, r.code, r.stderr, tt.want)
			}
		}
		if after := s.status(t).Files.Seq; after != seq {
			t.Errorf("files seq moved from %d to %d", seq, after)
		}
		if doc := s.releases(t); len(doc.Releases) != 0 {
			t.Errorf("refusals recorded releases: %+v", doc.Releases)
		}
	})

	t.Run("update core: every node, no failed request", func(t *testing.T) {
		load := startLoad(searches(s.site, "release"), 10)
		t0 := time.Now()
		r := s.cli(t, "update", "core", "--from", src)
		if r.code != 0 {
			load.Stop()
			t.Fatalf("update core: exit %d: %s%s", r.code, r.stdout, r.stderr)
		}
		cmdTime := time.Since(t0)
		doc := s.releases(t)
		if doc.Current.ID != "r2" || doc.Current.Core != newVersion {
			t.Errorf("current after the update: %+v", doc.Current)
		}
		s.waitNodesAt(t, doc.Current.Seq, newGen, 60*time.Second)
		everywhere := time.Since(t0)
		time.Sleep(2 * time.Second) // load on the new release too
		ok, failed, failures := load.Stop()
		t.Logf("measured: update command %s, every node on the new release %s after the update began; load %d ok, %d failed",
			cmdTime.Round(time.Millisecond), everywhere.Round(time.Millisecond), ok, failed)
		if failed != 0 {
			t.Errorf("%d failed requests during the rollout: %v", failed, failures)
			t.Logf("events:\n%s", s.cli(t, "events").stdout)
		}
		if g := generator(t, s.site+"/?s=after"); g != newGen {
			t.Errorf("generator through the edge %q, want %q", g, newGen)
		}
		if os.Geteuid() == 0 { // a link pool only as root (TestLinkedDocroot)
			checkCoreShared(t, s)
		}
		var got []string
		for _, r := range doc.Releases {
			got = append(got, r.ID+" "+r.Status+" "+r.Core)
		}
		want := []string{"r1 superseded " + old, "r2 live " + newVersion}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("releases %v, want %v", got, want)
		}
		if want := fmt.Sprintf("%d → %d", oldDB, oldDB+1); doc.Current.DB != want {
			t.Errorf("database upgrade %q, want %q (wp_upgrade once)", doc.Current.DB, want)
		}
		if r := s.cli(t, "backups", "--json"); r.code != 0 || !strings.Contains(r.stdout, `"id"`) {
			t.Errorf("no backup before the database upgrade: exit %d: %s%s", r.code, r.stdout, r.stderr)
		}
		if r := s.cli(t, "update", "core", "--from", src); r.code != 2 || !strings.Contains(r.stderr, "at "+newVersion+" already") {
			t.Errorf("the same release again: exit %d %q, want 2 saying it is there already", r.code, r.stderr)
		}
	})

	t.Run("a broken release fails its canary; no user sees it", func(t *testing.T) {
		broken := newerCore(t, "6.2.0", 0, "broken")
		f, err := os.OpenFile(filepath.Join(broken, "wp-includes", "general-template.php"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(f, "\nscalepress_e2e_no_such_function();\n")
		f.Close()
		seq := s.status(t).Files.Seq
		load := startLoad(searches(s.site, "broken"), 10)
		t0 := time.Now()
		r := s.cli(t, "update", "core", "--from", broken)
		took := time.Since(t0)
		time.Sleep(time.Second)
		ok, failed, failures := load.Stop()
		t.Logf("measured: the broken release was refused by its canary in %s; load %d ok, %d failed", took.Round(time.Millisecond), ok, failed)
		if r.code != 1 || !strings.Contains(r.stderr, "canary") {
			t.Errorf("update with a broken core: exit %d, %q; want 1 naming the canary", r.code, r.stderr)
		}
		if failed != 0 {
			t.Errorf("%d failed requests while the broken release was tried: %v", failed, failures)
		}
		if after := s.status(t).Files.Seq; after != seq {
			t.Errorf("files seq moved from %d to %d: the broken release reached the store", seq, after)
		}
		doc := s.releases(t)
		last := doc.Releases[len(doc.Releases)-1]
		if last.ID != "r3" || last.Status != api.ReleaseFailed || !strings.Contains(last.Reason, "canary") ||
			!strings.Contains(last.Reason, "scalepress_e2e_no_such_function") {
			t.Errorf("the broken release is recorded as %+v, want r3 failed with the canary's reason naming the fatal", last)
		}
		if doc.Current.ID != "r2" {
			t.Errorf("current is %q, want r2 still", doc.Current.ID)
		}
		if g := generator(t, s.site+"/?s=after-broken"); g != newGen {
			t.Errorf("generator after the broken release %q, want %q", g, newGen)
		}
		if _, err := os.Stat(filepath.Join(s.dir, "canary")); !os.IsNotExist(err) {
			t.Errorf("the canary's directory is left behind: %v", err)
		}
	})

	t.Run("rollback to the first release restores its files and version", func(t *testing.T) {
		r := s.cli(t, "rollback", "r1")
		if r.code != 0 {
			t.Fatalf("rollback r1: exit %d: %s%s", r.code, r.stdout, r.stderr)
		}
		doc := s.releases(t)
		if doc.Current.ID != "r4" || doc.Current.Core != old || doc.Current.From != "r1" {
			t.Errorf("current after the rollback: %+v", doc.Current)
		}
		s.waitNodesAt(t, doc.Current.Seq, oldGen, 60*time.Second)
		st := s.status(t)
		for _, n := range st.Nodes {
			b, err := os.ReadFile(filepath.Join(n.Docroot, "wp-includes", "version.php"))
			if err != nil || !strings.Contains(string(b), "$wp_version = '"+old+"';") {
				t.Errorf("%s: version.php after the rollback: %v %.300s", n.ID, err, b)
			}
		}
		if doc.Releases[1].Status != api.ReleaseRolledBack {
			t.Errorf("r2 is %q after the rollback, want rolled-back", doc.Releases[1].Status)
		}
		out := s.cli(t, "release").stdout
		if !strings.Contains(out, "current release r4") || !strings.Contains(out, "WordPress "+old) {
			t.Errorf("release:\n%s", out)
		}
	})

	t.Run("automatic update: a minor release dropped into the source directory rolls out, a major one waits", func(t *testing.T) {
		// Dropped as a feed would: written elsewhere, then moved in.
		tarball := func(dir, name string) {
			t.Helper()
			tmp := filepath.Join(t.TempDir(), name)
			if out, err := exec.Command("tar", "czf", tmp, "-C", filepath.Dir(dir), filepath.Base(dir)).CombinedOutput(); err != nil {
				t.Fatalf("tar: %v: %s", err, out)
			}
			if out, err := exec.Command("mv", tmp, filepath.Join(feed, name)).CombinedOutput(); err != nil {
				t.Fatalf("mv: %v: %s", err, out)
			}
		}
		tarball(newerCore(t, "6.1.98", 0, "auto"), "wordpress-6.1.98.tar.gz")
		tarball(newerCore(t, "6.2.1", 0, "major"), "wordpress-6.2.1.tar.gz")
		t0 := time.Now()
		deadline := t0.Add(90 * time.Second)
		var doc api.Releases
		for {
			doc = s.releases(t)
			if doc.Current.Core == "6.1.98" || time.Now().After(deadline) {
				break
			}
			time.Sleep(time.Second)
		}
		if doc.Current.Core != "6.1.98" || !strings.Contains(doc.Current.Change, "automatic") {
			t.Fatalf("after %s the current release is %+v, want 6.1.98 rolled out automatically", time.Since(t0).Round(time.Second), doc.Current)
		}
		s.waitNodesAt(t, doc.Current.Seq, "WordPress 6.1.98 auto", 60*time.Second)
		t.Logf("measured: the automatic minor update was live %s after the archive was dropped", time.Since(t0).Round(time.Second))
		// The major release is announced by the same check or the next one.
		var events result
		for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(time.Second) {
			events = s.cli(t, "events")
			if strings.Contains(events.stdout, "holds WordPress 6.2.1") {
				break
			}
		}
		if !strings.Contains(events.stdout, "holds WordPress 6.2.1") || !strings.Contains(events.stdout, "scalepress update core --from") {
			t.Errorf("no event announcing the major release: exit %d %s\n%s", events.code, events.stderr, events.stdout)
		}
		if g := generator(t, s.site+"/?s=auto"); g != "WordPress 6.1.98 auto" {
			t.Errorf("generator %q after the automatic update", g)
		}
	})

	t.Run("update plugin from a zip: every node, recorded with its version", func(t *testing.T) {
		plugin := func(version string) string {
			return zipFile(t, map[string]string{
				"e2e-demo/e2e-demo.php":    "<?php\n/*\n * Plugin Name: E2E Demo\n * Version: " + version + "\n */\n",
				"e2e-demo/inc/version.php": "<?php return '" + version + "';\n",
			})
		}
		for _, v := range []string{"1.0", "1.1"} {
			r := s.cli(t, "update", "plugin", "e2e-demo", "--from", plugin(v))
			if r.code != 0 {
				t.Fatalf("update plugin e2e-demo %s: exit %d: %s%s", v, r.code, r.stdout, r.stderr)
			}
		}
		doc := s.releases(t)
		if doc.Current.Change != "plugin e2e-demo 1.0 → 1.1" {
			t.Errorf("change %q", doc.Current.Change)
		}
		found := false
		for _, p := range doc.Current.Plugins {
			found = found || p.Name == "e2e-demo" && p.Version == "1.1" && p.Title == "E2E Demo"
		}
		if !found {
			t.Errorf("plugins %+v, want e2e-demo 1.1", doc.Current.Plugins)
		}
		s.waitNodesAt(t, doc.Current.Seq, "WordPress 6.1.98 auto", 60*time.Second)
		for _, n := range s.status(t).Nodes {
			b, err := os.ReadFile(filepath.Join(n.Docroot, "wp-content/plugins/e2e-demo/inc/version.php"))
			if err != nil || !strings.Contains(string(b), "'1.1'") {
				t.Errorf("%s: the plugin's file: %v %q", n.ID, err, b)
			}
		}
		if r := s.cli(t, "update", "plugin", "e2e-demo", "--from", plugin("1.0")); r.code != 2 || !strings.Contains(r.stderr, "plugin e2e-demo 1.0 is older than the current 1.1") {
			t.Errorf("downgrade without --force: exit %d %q", r.code, r.stderr)
		}
	})

	t.Run("automatic plugin update: the running line rolls out through the canary, a major one and a bad zip wait", func(t *testing.T) {
		drop := func(name string, entries map[string]string) {
			t.Helper()
			tmp := zipFile(t, entries)
			if out, err := exec.Command("mv", tmp, filepath.Join(feed, name)).CombinedOutput(); err != nil {
				t.Fatalf("mv: %v: %s", err, out)
			}
		}
		plugin := func(version string) map[string]string {
			return map[string]string{
				"e2e-demo/e2e-demo.php":    "<?php\n/*\n * Plugin Name: E2E Demo\n * Version: " + version + "\n */\n",
				"e2e-demo/inc/version.php": "<?php return '" + version + "';\n",
			}
		}
		load := startLoad(searches(s.site, "auto-plugin"), 10)
		t0 := time.Now()
		drop("e2e-demo.2.0.zip", plugin("2.0"))
		drop("e2e-demo.1.2.zip", plugin("1.2"))
		drop("e2e-evil.zip", map[string]string{"e2e-demo/e2e-demo.php": plugin("1.3")["e2e-demo/e2e-demo.php"], "e2e-demo/../../../wp-config.php": "<?php // owned"})
		var doc api.Releases
		for deadline := t0.Add(90 * time.Second); ; time.Sleep(time.Second) {
			doc = s.releases(t)
			if strings.HasPrefix(doc.Current.Change, "plugin e2e-demo 1.1 → 1.2") || time.Now().After(deadline) {
				break
			}
		}
		if doc.Current.Change != "plugin e2e-demo 1.1 → 1.2 (automatic, releases.auto.plugins: minor)" {
			load.Stop()
			t.Fatalf("after %s the current release is %+v, want e2e-demo 1.2 rolled out automatically", time.Since(t0).Round(time.Second), doc.Current)
		}
		s.waitNodesAt(t, doc.Current.Seq, "WordPress 6.1.98 auto", 60*time.Second)
		ok, failed, failures := load.Stop()
		t.Logf("measured: the automatic plugin update was on every node %s after the zip was dropped; load %d ok, %d failed", time.Since(t0).Round(time.Second), ok, failed)
		if failed != 0 {
			t.Errorf("%d failed requests during the automatic plugin update: %v", failed, failures)
		}
		for _, n := range s.status(t).Nodes {
			b, err := os.ReadFile(filepath.Join(n.Docroot, "wp-content/plugins/e2e-demo/inc/version.php"))
			if err != nil || !strings.Contains(string(b), "'1.2'") {
				t.Errorf("%s: the plugin's file: %v %q", n.ID, err, b)
			}
			if b, err := os.ReadFile(filepath.Join(n.Docroot, "wp-config.php")); err != nil || strings.Contains(string(b), "owned") {
				t.Errorf("%s: wp-config.php: %v %.80q", n.ID, err, b)
			}
		}
		var events result
		want := []string{
			"release " + doc.Current.ID + " passed its canary checks",
			"holds plugin e2e-demo 2.0 (running 1.1); releases.auto.plugins: minor takes only the running 1.x line",
			"scalepress update plugin e2e-demo --from " + filepath.Join(feed, "e2e-demo.2.0.zip"),
			"e2e-evil.zip is not a WordPress release: bad release source: \"e2e-demo/../../../wp-config.php\" climbs out of the directory",
		}
		missing := want
		for end := time.Now().Add(30 * time.Second); len(missing) > 0 && time.Now().Before(end); time.Sleep(time.Second) {
			events = s.cli(t, "events")
			missing = nil
			for _, w := range want {
				if !strings.Contains(events.stdout, w) {
					missing = append(missing, w)
				}
			}
		}
		if len(missing) > 0 {
			t.Errorf("events lack %q:\n%s", missing, events.stdout)
		}
	})
}
