package controller

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/scalepress/scalepress/internal/config"
	"github.com/scalepress/scalepress/internal/release"
)

func TestAutoPick(t *testing.T) {
	files := map[string]sourceFile{
		"/feed/6.1.10.tgz":      {Kind: "core", Version: "6.1.10"},
		"/feed/6.1.11.tgz":      {Kind: "core", Version: "6.1.11"},
		"/feed/6.1.8.tgz":       {Kind: "core", Version: "6.1.8"},
		"/feed/6.2.tgz":         {Kind: "core", Version: "6.2"},
		"/feed/6.1.12-RC1.tgz":  {Kind: "core", Version: "6.1.12-RC1"},
		"/feed/junk.zip":        {Problem: "not WordPress"},
		"/feed/demo.1.4.zip":    {Kind: "plugin", Name: "demo", Version: "1.4"},
		"/feed/demo.1.10.zip":   {Kind: "plugin", Name: "demo", Version: "1.10"},
		"/feed/demo.2.0.zip":    {Kind: "plugin", Name: "demo", Version: "2.0"},
		"/feed/other.1.0.zip":   {Kind: "plugin", Name: "other", Version: "1.0"},
		"/feed/t.1.5.zip":       {Kind: "theme", Name: "t", Version: "1.5"},
		"/feed/t.1.5beta.zip":   {Kind: "theme", Name: "t", Version: "1.6beta"},
		"/feed/nover.1.1.zip":   {Kind: "plugin", Name: "nover", Version: "1.1"},
		"/feed/demo.0.9.zip":    {Kind: "plugin", Name: "demo", Version: "0.9"},
		"/feed/tried.1.11.zip":  {Kind: "plugin", Name: "demo", Version: "1.11", Tried: true},
		"/feed/tried.6.1.13.gz": {Kind: "core", Version: "6.1.13", Tried: true},
	}
	cur := release.Inventory{Core: "6.1.9",
		Plugins: []release.Component{{Name: "demo", Version: "1.0"}, {Name: "nover"}},
		Themes:  []release.Component{{Name: "t", Version: "1"}}}
	minor := config.AutoPolicy{Core: config.AutoMinor, Plugins: config.AutoMinor, Themes: config.AutoMinor}
	all := config.AutoPolicy{Core: config.AutoAll, Plugins: config.AutoAll, Themes: config.AutoAll}
	always := []autoVerdict{
		{Path: "/feed/other.1.0.zip", Absent: true},
		{Path: "/feed/6.1.12-RC1.tgz", Why: "a pre-release never rolls out by itself"},
		{Path: "/feed/t.1.5beta.zip", Why: "a pre-release never rolls out by itself"},
	}
	withAlways := func(vs ...autoVerdict) []autoVerdict {
		out := append(slices.Clone(always), vs...)
		slices.SortFunc(out, func(a, b autoVerdict) int { return strings.Compare(a.Path, b.Path) })
		return out
	}
	tests := []struct {
		name   string
		policy config.AutoPolicy
		picks  []string
		asked  []autoVerdict
	}{
		{"minor takes the newest of each line, core first", minor,
			[]string{"/feed/6.1.11.tgz", "/feed/demo.1.10.zip", "/feed/t.1.5.zip"},
			withAlways(
				autoVerdict{Path: "/feed/6.2.tgz", Why: "releases.auto.core: minor takes only the running 6.1 line"},
				autoVerdict{Path: "/feed/demo.2.0.zip", Why: "releases.auto.plugins: minor takes only the running 1.x line"},
				autoVerdict{Path: "/feed/nover.1.1.zip", Why: "releases.auto.plugins: minor takes only the running (unknown: the installed copy has no Version header) line"},
			)},
		{"all takes the newest", all,
			[]string{"/feed/6.2.tgz", "/feed/demo.2.0.zip", "/feed/nover.1.1.zip", "/feed/t.1.5.zip"}, withAlways()},
		{"per kind: plugins off", config.AutoPolicy{Core: config.AutoAll, Plugins: config.AutoOff, Themes: config.AutoMinor},
			[]string{"/feed/6.2.tgz", "/feed/t.1.5.zip"},
			withAlways(
				autoVerdict{Path: "/feed/demo.1.10.zip", Why: "releases.auto.plugins: off"},
				autoVerdict{Path: "/feed/demo.1.4.zip", Why: "releases.auto.plugins: off"},
				autoVerdict{Path: "/feed/demo.2.0.zip", Why: "releases.auto.plugins: off"},
				autoVerdict{Path: "/feed/nover.1.1.zip", Why: "releases.auto.plugins: off"},
				autoVerdict{Path: "/feed/tried.1.11.zip", Why: "releases.auto.plugins: off"},
			)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			picks, asked := autoPick(cur, tt.policy, files)
			if diff := gocmp.Diff(tt.picks, picks); diff != "" {
				t.Errorf("picks (-want +got):\n%s", diff)
			}
			if diff := gocmp.Diff(tt.asked, asked); diff != "" {
				t.Errorf("asked (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("nothing newer", func(t *testing.T) {
		top := release.Inventory{Core: "7.0", Plugins: []release.Component{{Name: "demo", Version: "9"}}}
		picks, asked := autoPick(top, all, map[string]sourceFile{"/feed/6.2.tgz": files["/feed/6.2.tgz"], "/feed/demo.2.0.zip": files["/feed/demo.2.0.zip"]})
		if len(picks) != 0 || len(asked) != 0 {
			t.Errorf("picks %v, asked %v; want none", picks, asked)
		}
	})
}

func coreTarball(t *testing.T, dir, version string) string {
	t.Helper()
	p := filepath.Join(dir, "wordpress-"+version+".tar.gz")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	for name, content := range map[string]string{
		"wordpress/wp-includes/version.php": versionFile(version),
		"wordpress/index.php":               "<?php // front " + version,
	} {
		tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(content))})
		tw.Write([]byte(content))
	}
	tw.Close()
	gz.Close()
	f.Close()
	settled(t, p)
	return p
}

// TestCheckSource: a minor release dropped into the source directory is
// rolled out once; a major one and a file that is not WordPress are each
// announced once.
func TestCheckSource(t *testing.T) {
	c, ff := releaseController(t)
	feed := t.TempDir()
	c.cfg.Releases.SourceDir, c.cfg.Releases.Auto = feed, config.AutoPolicy{Core: config.AutoMinor, Plugins: config.AutoMinor, Themes: config.AutoMinor}
	coreTarball(t, feed, "6.1.10")
	coreTarball(t, feed, "6.2")
	os.WriteFile(filepath.Join(feed, "junk.zip"), []byte("not a zip"), 0o644)
	settled(t, filepath.Join(feed, "junk.zip"))
	os.WriteFile(filepath.Join(feed, "arriving.zip"), []byte("half a zi"), 0o644) // being copied in: not read yet
	ctx := context.Background()
	for range 2 {
		if err := c.checkSource(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := ff.content("wp-includes/version.php"); got != versionFile("6.1.10") {
		t.Errorf("version.php = %q, want 6.1.10's", got)
	}
	if diff := gocmp.Diff([]string{"r1 superseded 6.1.9", "r2 live 6.1.10"}, statuses(t, c)); diff != "" {
		t.Errorf("releases (-want +got):\n%s", diff)
	}
	doc, _ := c.releasesDoc(ctx)
	if ch := doc.Releases[1].Change; ch != "core 6.1.9 → 6.1.10 (automatic, releases.auto.core: minor)" {
		t.Errorf("change %q", ch)
	}
	var major, junk int
	for _, e := range c.events.Since(ctx, 0, 0).Events {
		if strings.Contains(e.Message, "holds WordPress 6.2 (running") && strings.Contains(e.Message, "scalepress update core --from "+feed) {
			major++
		}
		if strings.Contains(e.Message, "junk.zip is not a WordPress release") {
			junk++
		}
	}
	// the second check runs with 6.1.10 current: 6.2 is announced once only
	for _, e := range c.events.Since(ctx, 0, 0).Events {
		if strings.Contains(e.Message, "arriving.zip") {
			t.Errorf("an archive still being written was read: %s", e.Message)
		}
	}
	if major != 1 || junk != 1 {
		t.Errorf("events: %d for the major release, %d for junk.zip; want 1 each", major, junk)
	}
}

// settled dates p back past sourceSettle, as a file copied in a while ago.
func settled(t *testing.T, p string) {
	t.Helper()
	old := time.Now().Add(-time.Minute)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
}

func pluginZip(t *testing.T, dir, name string, entries map[string]string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for _, n := range slices.Sorted(maps.Keys(entries)) {
		w, err := zw.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, entries[n])
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	settled(t, p)
	return p
}

// TestCheckSourcePlugins: a plugin and a theme of the running line dropped
// into the source directory roll out by themselves, each as its own
// release; a new major version, a plugin that is not installed and archives
// that update refuses (a path escaping the plugin's directory, not a plugin)
// are each announced once, saying why, and change nothing.
func TestCheckSourcePlugins(t *testing.T) {
	c, ff := releaseController(t)
	feed := t.TempDir()
	c.cfg.Releases.SourceDir = feed
	c.cfg.Releases.Auto = config.AutoPolicy{Core: config.AutoMinor, Plugins: config.AutoMinor, Themes: config.AutoMinor}
	plugin := func(v string) map[string]string {
		return map[string]string{"demo/demo.php": fmt.Sprintf(demoPlugin, v), "demo/inc/a.php": "<?php // " + v}
	}
	pluginZip(t, feed, "demo.1.1.zip", plugin("1.1"))
	pluginZip(t, feed, "demo.2.0.zip", plugin("2.0"))
	pluginZip(t, feed, "t.1.2.zip", map[string]string{"t/style.css": "/*\nTheme Name: T\nVersion: 1.2\n*/", "t/index.php": "<?php"})
	pluginZip(t, feed, "other.1.0.zip", map[string]string{"other/other.php": "<?php\n/* Plugin Name: Other\nVersion: 1.0 */"})
	pluginZip(t, feed, "evil.zip", map[string]string{"demo/demo.php": fmt.Sprintf(demoPlugin, "1.2"), "demo/../../../wp-config.php": "<?php // owned"})
	pluginZip(t, feed, "readme.zip", map[string]string{"demo/readme.txt": "not a plugin", "demo/x.php": "<?php"})
	ctx := context.Background()
	for range 2 {
		if err := c.checkSource(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := ff.content("wp-content/plugins/demo/inc/a.php"); got != "<?php // 1.1" {
		t.Errorf("the plugin's file is %q, want 1.1's", got)
	}
	if got := ff.content("wp-config.php"); got != "<?php // secrets" {
		t.Errorf("wp-config.php is %q: an archive escaping its directory was applied", got)
	}
	doc, err := c.releasesDoc(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range doc.Releases {
		got = append(got, r.ID+" "+r.Status+" "+r.Change)
	}
	want := []string{
		"r1 superseded the site as it was before the first update",
		"r2 superseded plugin demo 1.0 → 1.1 (automatic, releases.auto.plugins: minor)",
		"r3 live theme t 1 → 1.2 (automatic, releases.auto.themes: minor)",
	}
	if diff := gocmp.Diff(want, got); diff != "" {
		t.Errorf("releases (-want +got):\n%s", diff)
	}
	wantEvents := map[string]string{
		"demo.2.0.zip":  "holds plugin demo 2.0 (running 1.0); releases.auto.plugins: minor takes only the running 1.x line: it rolls out only when asked: scalepress update plugin demo --from " + feed + "/demo.2.0.zip",
		"other.1.0.zip": "holds plugin other 1.0, which is not installed: only installed plugins and themes update by themselves; scalepress update plugin other --from " + feed + "/other.1.0.zip installs it",
		"evil.zip":      `is not a WordPress release: bad release source: "demo/../../../wp-config.php" climbs out of the directory`,
		"readme.zip":    "is not a WordPress release: bad release source: " + feed + "/readme.zip is neither WordPress core",
	}
	for name, msg := range wantEvents {
		n := 0
		for _, e := range c.events.Since(ctx, 0, 0).Events {
			if strings.Contains(e.Message, name) && strings.Contains(e.Message, msg) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s: %d events saying %q, want 1; events:\n%s", name, n, msg, eventLines(c))
		}
	}
}

func eventLines(c *Controller) string {
	var b strings.Builder
	for _, e := range c.events.Since(context.Background(), 0, 0).Events {
		b.WriteString(e.Message + "\n")
	}
	return b.String()
}

// TestCheckSourceFirst: the first look, with nothing to roll out (so no
// release store yet), records what it saw: it is not read again.
func TestCheckSourceFirst(t *testing.T) {
	c, _ := releaseController(t)
	feed := t.TempDir()
	c.cfg.Releases.SourceDir = feed
	os.WriteFile(filepath.Join(feed, "junk.zip"), []byte("not a zip"), 0o644)
	settled(t, filepath.Join(feed, "junk.zip"))
	if err := c.checkSource(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(c.sourceStatePath()); err != nil {
		t.Errorf("no source state after the first look: %v", err)
	}
}
