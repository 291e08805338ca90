package filesync

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// cluster is a server and running agents on one temporary directory.
type cluster struct {
	t    testing.TB
	base string
	srv  *testServer
}

func newCluster(t testing.TB) *cluster {
	base := t.TempDir()
	return &cluster{t: t, base: base, srv: startServer(t, filepath.Join(base, "files"), "", nil)}
}

// agent adds a bootstrapped, running agent.
func (c *cluster) agent(name string) *testAgent {
	ta := newTestAgent(c.t, c.srv.url, c.base, name)
	ta.bootstrap()
	ta.start()
	return ta
}

func TestPushStreamApplyAcrossAgents(t *testing.T) {
	c := newCluster(t)
	a, b := c.agent("node-a"), c.agent("node-b")

	a.write("wp-content/uploads/2024/01/photo.jpg", "JPEG data")
	b.waitContent("wp-content/uploads/2024/01/photo.jpg", "JPEG data")

	// A change made on B travels back to A.
	b.write("wp-content/uploads/2024/01/photo.jpg", "edited on b")
	a.waitContent("wp-content/uploads/2024/01/photo.jpg", "edited on b")

	// Modes travel, and node-local paths stay local.
	a.write("wp-content/plugins/hello/hello.php", "<?php // hello")
	if err := os.Chmod(a.path("wp-content/plugins/hello/hello.php"), 0o600); err != nil {
		t.Fatal(err)
	}
	a.write("wp-config.php", "<?php // node a secrets")
	a.write("wp-content/cache/page.html", "cached on a")
	a.write("wp-content/uploads/upload.tmp", "partial")
	waitFor(t, 10*time.Second, "the mode change on b", func() bool {
		fi, err := os.Stat(b.path("wp-content/plugins/hello/hello.php"))
		return err == nil && fi.Mode().Perm() == 0o600
	})
	for _, p := range []string{"wp-config.php", "wp-content/cache/page.html", "wp-content/uploads/upload.tmp"} {
		if _, ok := b.read(p); ok {
			t.Errorf("excluded %s reached node-b", p)
		}
	}

	// Deletion propagates, also of a whole directory.
	if err := os.Remove(a.path("wp-content/uploads/2024/01/photo.jpg")); err != nil {
		t.Fatal(err)
	}
	b.waitGone("wp-content/uploads/2024/01/photo.jpg")
	if err := os.RemoveAll(b.path("wp-content/plugins/hello")); err != nil {
		t.Fatal(err)
	}
	a.waitGone("wp-content/plugins/hello")
	waitFor(t, 10*time.Second, "both nodes at the server's seq", func() bool {
		seq := c.srv.srv.Store().Seq()
		return a.a.AppliedSeq() == seq && b.a.AppliedSeq() == seq && a.a.Pending() == 0 && b.a.Pending() == 0
	})
	if diff := cmp.Diff(treeOf(t, a.docroot), treeOf(t, b.docroot)); diff != "" {
		t.Errorf("docroots differ (-a +b):\n%s", diff)
	}

	// A third node bootstrapped from a snapshot is byte-identical: the
	// server snapshots, restarts from the snapshot, and serves it.
	a.write("wp-content/themes/t/style.css", "body{}")
	b.waitContent("wp-content/themes/t/style.css", "body{}")
	waitFor(t, 10*time.Second, "a's push to settle", func() bool { return a.a.Pending() == 0 })
	if err := c.srv.srv.Store().Snapshot(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := c.srv.srv.Store().Manifest()
	c.srv.kill()
	c.srv = startServer(t, filepath.Join(c.base, "files"), c.srv.addr, nil)
	if got := c.srv.srv.Store().Status().SnapshotSeq; got != want.Seq {
		t.Fatalf("restarted server's snapshot is at %d, want %d", got, want.Seq)
	}
	if diff := cmp.Diff(want, c.srv.srv.Store().Manifest()); diff != "" {
		t.Fatalf("manifest recovered from the snapshot (-want +got):\n%s", diff)
	}
	n3 := newTestAgent(t, c.srv.url, c.base, "node-c")
	writeFile(t, n3.path("stale/extra.txt"), "not in the manifest")
	writeFile(t, n3.path("wp-config.php"), "<?php // node c secrets")
	n3.bootstrap()
	if got, want := n3.a.AppliedSeq(), c.srv.srv.Store().Seq(); got != want {
		t.Errorf("node-c AppliedSeq = %d, want %d", got, want)
	}
	if diff := cmp.Diff(treeOf(t, a.docroot), treeOf(t, n3.docroot)); diff != "" {
		t.Errorf("bootstrapped docroot differs (-a +c):\n%s", diff)
	}
	if got, _ := n3.read("wp-config.php"); got != "<?php // node c secrets" {
		t.Errorf("bootstrap touched the node-local wp-config.php: %q", got)
	}
	// The running nodes reconnected to the restarted server.
	a.write("after-restart.txt", "still in sync")
	b.waitContent("after-restart.txt", "still in sync")
}

func TestDirectoryOf50FilesPropagates(t *testing.T) {
	c := newCluster(t)
	a, b := c.agent("node-a"), c.agent("node-b")
	dir := a.path("wp-content/plugins/big")
	tmp := filepath.Join(c.base, "unpack")
	for i := range 50 {
		writeFile(t, filepath.Join(tmp, "inc", fmt.Sprintf("f%02d.php", i)), fmt.Sprintf("<?php // file %d", i))
	}
	// Moved in at once, as a plugin installer does.
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		b.waitContent(fmt.Sprintf("wp-content/plugins/big/inc/f%02d.php", i), fmt.Sprintf("<?php // file %d", i))
	}
	// And 50 files written one by one in a new directory.
	for i := range 50 {
		a.write(fmt.Sprintf("wp-content/uploads/burst/%02d.txt", i), fmt.Sprint(i))
	}
	for i := range 50 {
		b.waitContent(fmt.Sprintf("wp-content/uploads/burst/%02d.txt", i), fmt.Sprint(i))
	}
	// A directory renamed: the old path goes, the new one arrives.
	if err := os.Rename(a.path("wp-content/uploads/burst"), a.path("wp-content/uploads/moved")); err != nil {
		t.Fatal(err)
	}
	b.waitContent("wp-content/uploads/moved/49.txt", "49")
	b.waitGone("wp-content/uploads/burst")
	// Files written into the moved directory are reported at their new path.
	a.write("wp-content/uploads/moved/new.txt", "after the move")
	b.waitContent("wp-content/uploads/moved/new.txt", "after the move")
	waitFor(t, 10*time.Second, "both nodes settled", func() bool {
		seq := c.srv.srv.Store().Seq()
		return a.a.AppliedSeq() == seq && b.a.AppliedSeq() == seq && a.a.Pending() == 0
	})
	if diff := cmp.Diff(treeOf(t, a.docroot), treeOf(t, b.docroot)); diff != "" {
		t.Errorf("docroots differ (-a +b):\n%s", diff)
	}
}

func TestServerDownQueuesChanges(t *testing.T) {
	base := t.TempDir()
	filesDir := filepath.Join(base, "files")
	srv := startServer(t, filesDir, "", nil)
	a := newTestAgent(t, srv.url, base, "node-a")
	a.bootstrap()
	a.start()
	b := newTestAgent(t, srv.url, base, "node-b")
	b.bootstrap()
	b.start()
	a.write("before.txt", "before")
	b.waitContent("before.txt", "before")

	srv.kill()
	a.write("wp-content/uploads/during-1.txt", "written while files is down")
	a.write("wp-content/uploads/during-2.txt", "also")
	if err := os.Remove(a.path("before.txt")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the local changes to be queued", func() bool { return a.a.Pending() >= 3 })
	// The node keeps serving its docroot.
	if got, _ := a.read("wp-content/uploads/during-1.txt"); got != "written while files is down" {
		t.Fatalf("docroot lost a local write: %q", got)
	}

	// The agent restarts while files is still down: the queue is on disk.
	a.restart()
	if got := a.a.Pending(); got < 3 {
		t.Fatalf("after a restart Pending() = %d, want >= 3", got)
	}
	a.start()

	srv2 := startServer(t, filesDir, srv.addr, nil)
	_ = srv2
	b.waitContent("wp-content/uploads/during-1.txt", "written while files is down")
	b.waitContent("wp-content/uploads/during-2.txt", "also")
	b.waitGone("before.txt")
	waitFor(t, 10*time.Second, "a's queue to drain", func() bool { return a.a.Pending() == 0 })
}

func TestChangesWhileAgentStoppedArePushed(t *testing.T) {
	c := newCluster(t)
	a, b := c.agent("node-a"), c.agent("node-b")
	a.write("keep.txt", "v1")
	a.write("drop.txt", "bye")
	b.waitContent("drop.txt", "bye")
	b.waitContent("keep.txt", "v1")

	a.stop()
	a.open()
	writeFile(t, a.path("keep.txt"), "v2 while stopped")
	writeFile(t, a.path("new/while-stopped.txt"), "new")
	if err := os.Remove(a.path("drop.txt")); err != nil {
		t.Fatal(err)
	}
	a.start()
	b.waitContent("keep.txt", "v2 while stopped")
	b.waitContent("new/while-stopped.txt", "new")
	b.waitGone("drop.txt")
}

func TestConflictingWritesConverge(t *testing.T) {
	c := newCluster(t)
	a, b := c.agent("node-a"), c.agent("node-b")
	a.write("shared.txt", "base")
	b.waitContent("shared.txt", "base")
	waitFor(t, 10*time.Second, "a's push to settle", func() bool { return a.a.Pending() == 0 })

	for round := range 5 {
		before := c.srv.srv.Store().Seq()
		// Both nodes write the same path at about the same time.
		va, vb := fmt.Sprintf("from a, round %d", round), fmt.Sprintf("from b, round %d", round)
		done := make(chan struct{})
		go func() { writeFile(t, a.path("shared.txt"), va); close(done) }()
		writeFile(t, b.path("shared.txt"), vb)
		<-done

		st := c.srv.srv.Store()
		waitFor(t, 10*time.Second, "both writes to be committed", func() bool { return st.Seq() >= before+2 })
		waitFor(t, 10*time.Second, "both nodes to settle", func() bool {
			seq := st.Seq()
			return a.a.Pending() == 0 && b.a.Pending() == 0 && a.a.AppliedSeq() == seq && b.a.AppliedSeq() == seq && st.Seq() == seq
		})
		e, ok := st.Lookup("shared.txt")
		if !ok {
			t.Fatal("shared.txt is gone from the store")
		}
		got, _ := a.read("shared.txt")
		gotB, _ := b.read("shared.txt")
		if got != gotB || hashBytes([]byte(got)) != e.Hash || (got != va && got != vb) {
			t.Fatalf("round %d: a has %q, b has %q, the store's last write (seq %d) has hash %s", round, got, gotB, e.Seq, e.Hash[:8])
		}
	}
}
