package filesync

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSeed(t *testing.T) {
	ts := startServer(t, t.TempDir(), "", nil)
	src := t.TempDir()
	files := map[string]string{
		"index.php":                         "<?php // index",
		"wp-config.php":                     "secret",
		"wp-content/uploads/2026/11/a.jpg":  "jpeg",
		"wp-content/cache/page.html":        "cached",
		"wp-content/plugins/p/p.php":        "<?php // plugin",
		"wp-content/plugins/p/.filesync-x":  "temp",
		"wp-content/themes/t/style.css.tmp": "tmp",
	}
	for p, body := range files {
		full := filepath.Join(src, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("index.php", filepath.Join(src, "link.php")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := NewClient(ts.url, testToken(ControllerID), nil)
	n, err := Seed(ctx, c, src, DefaultRules())
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.Manifest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, e := range m.Entries {
		got[e.Path] = e.Hash != ""
	}
	want := map[string]bool{
		"index.php": true, "wp-content": false, "wp-content/uploads": false, "wp-content/uploads/2026": false,
		"wp-content/uploads/2026/11": false, "wp-content/uploads/2026/11/a.jpg": true,
		"wp-content/plugins": false, "wp-content/plugins/p": false, "wp-content/plugins/p/p.php": true,
		"wp-content/themes": false, "wp-content/themes/t": false,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("manifest (-want +got):\n%s", diff)
	}
	if n != len(want) {
		t.Errorf("Seed returned %d, want %d", n, len(want))
	}
	// A second seed of the same tree commits nothing new.
	st1, _ := c.Status(ctx)
	if _, err := Seed(ctx, c, src, DefaultRules()); err != nil {
		t.Fatal(err)
	}
	st2, _ := c.Status(ctx)
	if st1.Seq != st2.Seq {
		t.Errorf("second seed moved the log from %d to %d", st1.Seq, st2.Seq)
	}
}
