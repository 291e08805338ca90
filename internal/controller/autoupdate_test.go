package controller

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/scalepress/scalepress/internal/config"
)

func TestAutoPick(t *testing.T) {
	files := map[string]sourceFile{
		"/feed/6.1.10.tgz": {Version: "6.1.10"},
		"/feed/6.1.11.tgz": {Version: "6.1.11"},
		"/feed/6.1.8.tgz":  {Version: "6.1.8"},
		"/feed/6.2.tgz":    {Version: "6.2"},
		"/feed/junk.zip":   {Problem: "not WordPress"},
	}
	tried := map[string]sourceFile{}
	for k, v := range files {
		tried[k] = v
	}
	tried["/feed/6.1.11.tgz"] = sourceFile{Version: "6.1.11", Tried: true}
	tests := []struct {
		name, current, policy string
		files                 map[string]sourceFile
		pick                  string
		asked                 []string
	}{
		{"minor takes the newest of its line", "6.1.9", config.AutoMinor, files, "/feed/6.1.11.tgz", []string{"/feed/6.2.tgz"}},
		{"all takes the newest", "6.1.9", config.AutoAll, files, "/feed/6.2.tgz", nil},
		{"off takes none", "6.1.9", config.AutoOff, files, "", []string{"/feed/6.1.10.tgz", "/feed/6.1.11.tgz", "/feed/6.2.tgz"}},
		{"a tried one is not tried again", "6.1.9", config.AutoMinor, tried, "/feed/6.1.10.tgz", []string{"/feed/6.2.tgz"}},
		{"nothing newer", "6.2", config.AutoAll, files, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pick, asked := autoPick(tt.current, tt.policy, tt.files)
			if pick != tt.pick {
				t.Errorf("pick %q, want %q", pick, tt.pick)
			}
			if diff := gocmp.Diff(tt.asked, asked); diff != "" {
				t.Errorf("asked (-want +got):\n%s", diff)
			}
		})
	}
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
	c.cfg.Releases.SourceDir, c.cfg.Releases.Auto = feed, config.AutoMinor
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
	if ch := doc.Releases[1].Change; ch != "core 6.1.9 → 6.1.10 (automatic, releases.auto: minor)" {
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
