package filesync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scalepress/scalepress/internal/api"
)

// commitUnchecked appends c to the log without the push-time validation:
// a store written before a rule existed.
func commitUnchecked(t *testing.T, s *Store, c Change) uint64 {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	c.Seq = s.seq + 1
	if err := s.log.append(context.Background(), []Change{c}); err != nil {
		t.Fatal(err)
	}
	s.tree.apply(c)
	s.pushTail(c)
	s.seq = c.Seq
	close(s.notify)
	s.notify = make(chan struct{})
	return c.Seq
}

func readJournal(t *testing.T, ta *testAgent) []api.FilesQuarantine {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(ta.cfg.StateDir, api.FilesQuarantineFile))
	if err != nil {
		t.Fatal(err)
	}
	var out []api.FilesQuarantine
	for l := range strings.Lines(string(data)) {
		var q api.FilesQuarantine
		if err := json.Unmarshal([]byte(l), &q); err != nil {
			t.Fatalf("journal line %q: %v", l, err)
		}
		q.Time, q.Error = time.Time{}, strings.TrimPrefix(q.Error[strings.LastIndex(q.Error, ": ")+1:], " ")
		out = append(out, q)
	}
	return out
}

// TestQuarantineSkipsAChangeThatKeepsFailing puts a record no filesystem
// can hold (a 256-byte name, from before push-time validation) in the log:
// every node quarantines it after QuarantineAfter attempts, later changes
// still arrive, a restart does not retry it, and a new node bootstraps.
func TestQuarantineSkipsAChangeThatKeepsFailing(t *testing.T) {
	c := newCluster(t)
	a, b := c.agent("node-a"), c.agent("node-b")
	s := c.srv.srv.Store()
	poison := "wp-content/uploads/" + strings.Repeat("x", 256) + ".txt"
	h := putBlob(t, s, "poison")
	pseq := commitUnchecked(t, s, Change{Op: OpPut, Path: poison, Mode: 0o644, Size: 6, Hash: h, MTime: 1e18, Origin: ControllerID})

	a.write("after.txt", "later")
	b.waitContent("after.txt", "later")
	waitFor(t, 10*time.Second, "both nodes at the server's seq", func() bool {
		seq := s.Seq()
		return a.a.AppliedSeq() == seq && b.a.AppliedSeq() == seq
	})
	want := []api.FilesQuarantine{{Seq: pseq, Op: "put", Path: poison, Error: "file name too long", Attempts: 5}}
	for _, ta := range []*testAgent{a, b} {
		if got := ta.a.Quarantined(); got != 1 {
			t.Errorf("%s: Quarantined() = %d, want 1", ta.cfg.NodeID, got)
		}
		if diff := cmp.Diff(want, readJournal(t, ta)); diff != "" {
			t.Errorf("%s: journal (-want +got):\n%s", ta.cfg.NodeID, diff)
		}
	}

	// After a restart the change is neither retried nor counted again.
	b.restart()
	b.start()
	a.write("after-restart.txt", "still moving")
	b.waitContent("after-restart.txt", "still moving")
	if got := b.a.Quarantined(); got != 1 || len(readJournal(t, b)) != 1 {
		t.Errorf("after a restart: Quarantined() = %d, journal %v; want 1 and one line", got, readJournal(t, b))
	}

	// A new node bootstraps although the manifest names the poison: each
	// attempt fails until the path is quarantined, like the stream's.
	n3 := newTestAgent(t, c.srv.url, c.base, "node-c")
	var errs []string
	for range n3.cfg.QuarantineAfter {
		err := n3.a.Bootstrap(context.Background())
		if err == nil {
			break
		}
		errs = append(errs, err.Error())
	}
	if len(errs) != n3.cfg.QuarantineAfter-1 {
		t.Fatalf("bootstrap failed %d times (%v), want %d then success", len(errs), errs, n3.cfg.QuarantineAfter-1)
	}
	if got, _ := n3.read("after-restart.txt"); got != "still moving" || n3.a.Quarantined() != 1 {
		t.Errorf("node-c after bootstrap: after-restart.txt %q, Quarantined() %d", got, n3.a.Quarantined())
	}
	// Bootstrapping again (after a restart) does not retry it.
	n3.restart()
	if err := n3.a.Bootstrap(context.Background()); err != nil {
		t.Errorf("a second bootstrap retried the quarantined change: %v", err)
	}
	if j := readJournal(t, n3); len(j) != 1 {
		t.Errorf("journal after a second bootstrap: %v", j)
	}

	// A later change that sets the path anew (here: removing its parent)
	// ends the quarantine.
	a.write("wp-content/uploads/keep.txt", "x")
	b.waitContent("wp-content/uploads/keep.txt", "x")
	if err := os.RemoveAll(a.path("wp-content/uploads")); err != nil {
		t.Fatal(err)
	}
	b.waitGone("wp-content/uploads")
	waitFor(t, 10*time.Second, "node-b to end the quarantine", func() bool {
		j := readJournal(t, b)
		return len(j) == 2 && j[1].Released && j[1].Path == poison
	})
	b.a.mu.Lock()
	frozen := len(b.a.quar.frozen)
	b.a.mu.Unlock()
	if frozen != 0 || b.a.Quarantined() != 1 {
		t.Errorf("after the release: %d frozen paths, Quarantined() %d; want 0 and 1 (a counter)", frozen, b.a.Quarantined())
	}
}

// TestCollectedBlobOfASupersededChangeIsSkipped restarts a node that was
// away while a file was replaced and the old content collected: the
// replay skips the put whose blob is gone, quarantines nothing, and ends
// with the current content.
func TestCollectedBlobOfASupersededChangeIsSkipped(t *testing.T) {
	c := newCluster(t)
	b := c.agent("node-b")
	s := c.srv.srv.Store()
	b.stop()
	oldH := putBlob(t, s, "old")
	commit(t, s, Change{Op: OpPut, Path: "f.txt", Mode: 0o644, Size: 3, Hash: oldH, MTime: 1e18})
	commit(t, s, Change{Op: OpPut, Path: "f.txt", Mode: 0o644, Size: 3, Hash: putBlob(t, s, "new"), MTime: 1e18})
	s.now = func() time.Time { return time.Now().Add(2 * s.cfg.GCGrace) }
	if res, err := s.GC(context.Background()); err != nil || res.Removed != 1 || hasBlob(t, s, oldH) {
		t.Fatalf("GC = %+v, %v; want the old content removed", res, err)
	}
	b.open()
	b.start()
	b.waitContent("f.txt", "new")
	b.waitApplied(s.Seq())
	if got := b.a.Quarantined(); got != 0 {
		t.Errorf("Quarantined() = %d, want 0: a superseded change is skipped, not quarantined", got)
	}
}

// TestDownloadFailureIsNotTheChanges: when files cannot be reached, a
// download fails, but not for a reason of the change's own.
func TestDownloadFailureIsNotTheChanges(t *testing.T) {
	ts := startServer(t, t.TempDir(), "", nil)
	ta := newTestAgent(t, ts.url, t.TempDir(), "node-a")
	ts.kill()
	err := ta.a.download(context.Background(), hashBytes([]byte("x")), "x.tmp", 0o644, time.Now())
	if err == nil || ownFailure(err) {
		t.Errorf("download from a stopped files role = %v; ownFailure = %v, want an error that is not the change's", err, ownFailure(err))
	}
}

func TestOwnFailure(t *testing.T) {
	pathErr := func(errno syscall.Errno) error { return &fs.PathError{Op: "open", Path: "x", Err: errno} }
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"name too long", pathErr(syscall.ENAMETOOLONG), true},
		{"permission denied", pathErr(syscall.EACCES), true},
		{"not a directory", pathErr(syscall.ENOTDIR), true},
		{"blob missing for a live path", fmt.Errorf("download: %w", ErrBlobNotFound), true},
		{"corrupt blob", fmt.Errorf("download: %w", ErrHashMismatch), true},
		{"disk full", pathErr(syscall.ENOSPC), false},
		{"read-only filesystem", pathErr(syscall.EROFS), false},
		{"I/O error", pathErr(syscall.EIO), false},
		{"files unreachable", &remoteError{errors.New("connection refused")}, false},
		{"files answered 503", fmt.Errorf("download: %w", &remoteError{&StatusError{Code: 503}}), false},
		{"shutting down", context.Canceled, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ownFailure(tt.err); got != tt.want {
				t.Errorf("ownFailure(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

// TestQuarantinedPathIsNotPushed bootstraps a node from a store that lost
// the blob of a live file: the file is quarantined there, and the node's
// scan, which finds it missing, must not push its deletion to every node.
// A later change to the file applies and ends the quarantine.
func TestQuarantinedPathIsNotPushed(t *testing.T) {
	c := newCluster(t)
	a := c.agent("node-a")
	s := c.srv.srv.Store()
	a.write("wp-content/uploads/lost.jpg", "content whose blob is lost")
	waitFor(t, 10*time.Second, "the upload to land", func() bool { _, ok := s.Lookup("wp-content/uploads/lost.jpg"); return ok })
	e, _ := s.Lookup("wp-content/uploads/lost.jpg")
	if err := os.Remove(filepath.Join(c.base, "files", "blobs", e.Hash[:2], e.Hash)); err != nil {
		t.Fatal(err) // damage: the store lost a blob
	}

	n := newTestAgent(t, c.srv.url, c.base, "node-n")
	for i := 0; n.a.Bootstrap(context.Background()) != nil; i++ {
		if i == n.cfg.QuarantineAfter {
			t.Fatal("bootstrap never succeeded")
		}
	}
	n.start()
	a.write("later.txt", "x")
	n.waitContent("later.txt", "x")
	waitFor(t, 10*time.Second, "node-n to settle", func() bool { return n.a.AppliedSeq() == s.Seq() && n.a.Pending() == 0 })
	if _, ok := s.Lookup("wp-content/uploads/lost.jpg"); !ok {
		t.Fatal("node-n pushed the deletion of the file it could not write")
	}
	if _, ok := a.read("wp-content/uploads/lost.jpg"); !ok {
		t.Fatal("the file is gone from node-a")
	}
	if n.a.Quarantined() != 1 {
		t.Errorf("Quarantined() = %d, want 1", n.a.Quarantined())
	}

	a.write("wp-content/uploads/lost.jpg", "uploaded again")
	n.waitContent("wp-content/uploads/lost.jpg", "uploaded again")
	n.a.mu.Lock()
	frozen := len(n.a.quar.frozen)
	n.a.mu.Unlock()
	if frozen != 0 {
		t.Errorf("%d paths still frozen after a later change applied", frozen)
	}
}
