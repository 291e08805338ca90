package filesync

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scalepress/scalepress/internal/fileperm"
)

// TestApplierStaysInsideTheDocroot: symlinks that PHP (or an attacker)
// left in the docroot are replaced, never followed out of it.
func TestApplierStaysInsideTheDocroot(t *testing.T) {
	base := t.TempDir()
	ts := startServer(t, filepath.Join(base, "files"), "", nil)
	outside := filepath.Join(base, "outside")
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	ta := newTestAgent(t, ts.url, base, "node-a")
	ta.bootstrap()
	// A directory symlink and a file symlink pointing out of the docroot.
	if err := os.MkdirAll(ta.path("wp-content"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, ta.path("wp-content/uploads")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(outside, "secret"), "outside")
	if err := os.Symlink(filepath.Join(outside, "secret"), ta.path("index.php")); err != nil {
		t.Fatal(err)
	}

	s := ts.srv.Store()
	putFile(t, s, "wp-content/uploads/x.jpg", "jpeg")
	putFile(t, s, "index.php", "<?php // index")
	ta.start()
	ta.waitContent("wp-content/uploads/x.jpg", "jpeg")
	ta.waitContent("index.php", "<?php // index")
	if fi, err := os.Lstat(ta.path("wp-content/uploads")); err != nil || !fi.IsDir() {
		t.Errorf("wp-content/uploads is %v, %v; want a real directory", fi.Mode(), err)
	}
	if got, _ := os.ReadFile(filepath.Join(outside, "secret")); string(got) != "outside" {
		t.Errorf("the file outside the docroot was written: %q", got)
	}
	if _, err := os.Stat(filepath.Join(outside, "x.jpg")); err == nil {
		t.Error("the applier wrote through a symlink out of the docroot")
	}

	// A symlink PHP creates is never pushed.
	if err := os.Symlink("index.php", ta.path("link.php")); err != nil {
		t.Fatal(err)
	}
	ta.write("after.txt", "marker")
	waitFor(t, 10*time.Second, "the marker to be committed", func() bool { _, ok := s.Lookup("after.txt"); return ok })
	if _, ok := s.Lookup("link.php"); ok {
		t.Error("a symlink was pushed")
	}
}

// TestRescanFindsLocalChanges is the full rescan that follows lost file
// events (fsnotify.ErrEventOverflow): it compares the docroot with the
// index and queues every difference.
func TestRescanFindsLocalChanges(t *testing.T) {
	base := t.TempDir()
	ts := startServer(t, filepath.Join(base, "files"), "", nil)
	s := ts.srv.Store()
	putFile(t, s, "same.txt", "same")
	putFile(t, s, "changed.txt", "old")
	putFile(t, s, "gone/a.txt", "a")
	putFile(t, s, "gone/b/c.txt", "c")
	putFile(t, s, "mode.sh", "#!/bin/sh")
	ta := newTestAgent(t, ts.url, base, "node-a")
	ta.bootstrap()
	a := ta.a

	ta.write("changed.txt", "new")
	ta.write("new/.filesync-crashed.tmp", "left by a crash")
	ta.write("new/file.txt", "fresh")
	ta.write("wp-content/cache/x", "excluded")
	if err := os.RemoveAll(ta.path("gone")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(ta.path("mode.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Touching without changing content is not a change.
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(ta.path("same.txt"), later, later); err != nil {
		t.Fatal(err)
	}
	a.mu.Lock()
	a.scanned = true
	a.mu.Unlock()
	a.rescan()

	var got []string
	for _, q := range a.queue.head(100) {
		got = append(got, q.Change.Op.String()+" "+q.Change.Path)
	}
	sort.Strings(got)
	// wp-content is new (only its excluded cache is not).
	want := []string{"delete gone", "mkdir new", "mkdir wp-content", "put changed.txt", "put mode.sh", "put new/file.txt"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("queued by the rescan (-want +got):\n%s", diff)
	}
	if _, ok := ta.read("new/.filesync-crashed.tmp"); ok {
		t.Error("the rescan left a stale temporary file")
	}
	// A second rescan finds nothing new.
	before := a.Pending()
	a.rescan()
	if a.Pending() != before {
		t.Errorf("a second rescan queued %d more changes", a.Pending()-before)
	}
	// And the queue commits.
	for a.Pending() > 0 {
		if err := a.pushOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := s.Lookup("gone/b/c.txt"); ok {
		t.Error("gone/b/c.txt still in the store")
	}
	if e, _ := s.Lookup("mode.sh"); e.Mode != 0o755 {
		t.Errorf("mode.sh has mode %o in the store, want 755", e.Mode)
	}
}

// TestMadeParentsFollowThePolicy: a directory the agent makes because a
// file arrived before its directory's own change is group-writable where
// PHP may write (else PHP could not add the next upload of the month there)
// and not elsewhere.
func TestMadeParentsFollowThePolicy(t *testing.T) {
	base := t.TempDir()
	ts := startServer(t, filepath.Join(base, "files"), "", nil)
	ta := newTestAgent(t, ts.url, base, "node-a")
	ta.stop()
	ta.cfg.Rules.Perms = fileperm.Policy{Writable: fileperm.Writable}
	ta.open()
	ta.bootstrap()
	s := ts.srv.Store()
	putFile(t, s, "wp-content/uploads/2026/12/a.jpg", "jpeg")
	putFile(t, s, "wp-includes/new/x.php", "<?php")
	ta.start()
	ta.waitContent("wp-content/uploads/2026/12/a.jpg", "jpeg")
	ta.waitContent("wp-includes/new/x.php", "<?php")
	for dir, want := range map[string]os.FileMode{
		"wp-content/uploads/2026":    0o775,
		"wp-content/uploads/2026/12": 0o775,
		"wp-includes/new":            0o755,
	} {
		fi, err := os.Stat(ta.path(dir))
		if err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v, %v; want mode %04o", dir, fi.Mode(), err, want)
		}
	}
}
