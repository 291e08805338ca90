package filesync

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/scalepress/scalepress/internal/api"
	"golang.org/x/sys/unix"
)

const testUnit = "wp-content/plugins/mix"

// unitVersion is the push that makes testUnit version v: files f00..fNN
// (N grows with v, so a version drops or adds files) and first.php and
// last.php, which both name the version.
func unitVersion(t *testing.T, s *Store, v int) PushRequest {
	t.Helper()
	cs := []Change{{Op: OpMkdir, Path: testUnit, Mode: 0o755}, {Op: OpMkdir, Path: testUnit + "/inc", Mode: 0o755}}
	add := func(p, content string) {
		c := storeBlob(t, s, p, content)
		c.MTime = int64(v) * 1e9
		cs = append(cs, c)
	}
	add(testUnit+"/first.php", fmt.Sprintf("version=%d", v))
	add(testUnit+"/inc/last.php", fmt.Sprintf("version=%d", v))
	for i := range 10 + v {
		add(fmt.Sprintf("%s/inc/f%02d.php", testUnit, i), fmt.Sprintf("v%d file %d", v, i))
	}
	if v%2 == 0 {
		add(testUnit+"/even.php", "even")
	}
	return unitPush(testUnit, cs...)
}

func commitUnit(t *testing.T, s *Store, v int) uint64 {
	t.Helper()
	resp, err := s.Commit(context.Background(), unitVersion(t, s, v))
	if err != nil {
		t.Fatal(err)
	}
	return resp.Seq
}

// versionOf says which version the tree at testUnit in docroot is, or
// describes the mix it is.
func versionOf(t *testing.T, docroot string, want map[int]map[string]string) string {
	t.Helper()
	got := make(map[string]string)
	for p, d := range treeOf(t, docroot) {
		if p == testUnit || isBelow(p, testUnit) {
			got[p] = d
		}
	}
	for v, w := range want {
		if cmp.Equal(w, got) {
			return fmt.Sprintf("v%d", v)
		}
	}
	return fmt.Sprintf("a mix: %v", got)
}

// request reads first.php and last.php of the unit as a PHP request of
// the node would: through the request gate, as the auto_prepend_file does.
// between runs after the first read.
func request(docroot string, between func()) (first, last string, err error) {
	dir := filepath.Join(docroot, api.SwapStageDir)
	g, err := os.Open(filepath.Join(dir, api.SwapGateFile))
	if err != nil {
		return "", "", err
	}
	unix.Flock(int(g.Fd()), unix.LOCK_SH)
	unix.Flock(int(g.Fd()), unix.LOCK_UN)
	g.Close()
	u, err := os.Open(filepath.Join(dir, api.SwapInUseFile))
	if err != nil {
		return "", "", err
	}
	defer u.Close() // the end of the request releases the lock
	unix.Flock(int(u.Fd()), unix.LOCK_SH)
	b1, err := os.ReadFile(filepath.Join(docroot, testUnit, "first.php"))
	if err != nil {
		return "", "", err
	}
	if between != nil {
		between()
	}
	b2, err := os.ReadFile(filepath.Join(docroot, testUnit, "inc", "last.php"))
	return string(b1), string(b2), err
}

// TestAgentUnitSwapIsAtomicForRequests: while units are swapped in over
// and over, requests that read two files of the unit never see two
// versions, nor a missing file; the tree is always exactly one version.
func TestAgentUnitSwapIsAtomicForRequests(t *testing.T) {
	c := newCluster(t)
	s := c.srv.srv.Store()
	commitUnit(t, s, 1)
	b := c.agent("node-b")
	b.waitApplied(s.Seq())

	var mixes, missing, requests atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				first, last, err := request(b.docroot, nil)
				requests.Add(1)
				switch {
				case err != nil:
					missing.Add(1)
					t.Errorf("request: %v", err)
				case first != last:
					mixes.Add(1)
					t.Errorf("a request read %q and %q", first, last)
				}
			}
		})
	}
	for v := 2; v <= 11; v++ {
		b.waitApplied(commitUnit(t, s, v))
	}
	close(stop)
	wg.Wait()
	want := map[int]map[string]string{}
	c2 := newTestAgent(t, c.srv.url, c.base, "node-ref")
	c2.bootstrap()
	ref := make(map[string]string)
	for p, d := range treeOf(t, c2.docroot) {
		if p == testUnit || isBelow(p, testUnit) {
			ref[p] = d
		}
	}
	want[11] = ref
	if got := versionOf(t, b.docroot, want); got != "v11" {
		t.Errorf("node-b's unit after the swaps is %s, want v11 as bootstrapped", got)
	}
	t.Logf("%d requests during 10 swaps: %d mixes, %d missing", requests.Load(), mixes.Load(), missing.Load())
	if n, _ := filepath.Glob(filepath.Join(b.docroot, api.SwapStageDir, "[0-9]*")); len(n) > 0 {
		t.Errorf("stage left behind: %v", n)
	}

	// The swapped-in tree is watched: a local change in it is pushed.
	b.write(testUnit+"/inc/local.php", "written by php on b")
	waitFor(t, 10*time.Second, "the local change in the swapped-in tree to reach files", func() bool {
		_, ok := s.Lookup(testUnit + "/inc/local.php")
		return ok
	})
}

// TestAgentUnitSwapWaitsForRequests: a request in flight (it holds the
// gate) that read one file of the old tree reads the other from the old
// tree too: the swap waits for it.
func TestAgentUnitSwapWaitsForRequests(t *testing.T) {
	c := newCluster(t)
	s := c.srv.srv.Store()
	commitUnit(t, s, 1)
	b := c.agent("node-b")
	b.waitApplied(s.Seq())

	staged, swapped := make(chan struct{}), make(chan struct{})
	b.a.mu.Lock()
	b.a.testHookStage = func(step string) error {
		switch step {
		case stepStaged:
			close(staged)
		case stepSwapped:
			close(swapped)
		}
		return nil
	}
	b.a.mu.Unlock()
	first, last, err := request(b.docroot, func() {
		seq := commitUnit(t, s, 2)
		<-staged
		select {
		case <-swapped:
			t.Errorf("the unit was swapped while a request was in flight")
		case <-time.After(300 * time.Millisecond):
			// The swap waits for this request (absence of the swap; the
			// swap itself takes microseconds).
		}
		_ = seq
	})
	if err != nil || first != "version=1" || last != "version=1" {
		t.Errorf("the request in flight read %q and %q (%v), want version=1 twice", first, last, err)
	}
	<-swapped
	b.waitApplied(s.Seq())
	if first, last, err := request(b.docroot, nil); err != nil || first != "version=2" || last != "version=2" {
		t.Errorf("a request after the swap read %q and %q (%v), want version=2 twice", first, last, err)
	}
}

// TestAgentUnitKillPoints stops a unit's apply at each of its steps as a
// crash would, then opens the agent again: the live tree is always the
// old or the new version whole, and after the restart the new one, with
// the stage cleared. The killed agent goes on running until it is stopped
// (the hook is no real crash): its watcher may report the swapped-in files
// as local changes meanwhile, the interleaving that
// TestAgentUnitRecoveryWithEchoedLocalChanges makes every time.
func TestAgentUnitKillPoints(t *testing.T) {
	for _, step := range []string{stepStaged, stepSwapped, stepRemoved} {
		t.Run(step, func(t *testing.T) {
			c := newCluster(t)
			s := c.srv.srv.Store()
			commitUnit(t, s, 1)
			ref := c.agent("node-ref")
			ref.waitApplied(s.Seq())
			b := c.agent("node-b")
			b.waitApplied(s.Seq())
			want := map[int]map[string]string{1: unitTree(t, ref.docroot)}

			killed := make(chan struct{})
			var once sync.Once
			b.a.mu.Lock()
			b.a.testHookStage = func(got string) error {
				if got != step {
					return nil
				}
				once.Do(func() { close(killed) })
				return errKilled
			}
			b.a.mu.Unlock()
			commitUnit(t, s, 2)
			ref.waitApplied(s.Seq())
			want[2] = unitTree(t, ref.docroot)
			<-killed
			b.stop() // the crash: what the killed apply left stays
			got := versionOf(t, b.docroot, want)
			if strings.HasPrefix(got, "a mix") {
				t.Fatalf("killed after %q: the live unit is %s", step, got)
			}
			t.Logf("killed after %q: the live unit is %s", step, got)

			b.open()
			b.start()
			b.waitApplied(s.Seq())
			if got := versionOf(t, b.docroot, want); got != "v2" {
				t.Errorf("after the restart the unit is %s, want v2", got)
			}
			if n, _ := filepath.Glob(filepath.Join(b.docroot, api.SwapStageDir, "[0-9]*")); len(n) > 0 {
				t.Errorf("stage left behind after the restart: %v", n)
			}
		})
	}
}

func unitTree(t *testing.T, docroot string) map[string]string {
	t.Helper()
	out := make(map[string]string)
	for p, d := range treeOf(t, docroot) {
		if p == testUnit || isBelow(p, testUnit) {
			out[p] = d
		}
	}
	return out
}

// TestAgentUnitDeleteAndInstall: a unit that did not exist appears whole,
// and a unit push of only its delete removes it.
func TestAgentUnitDeleteAndInstall(t *testing.T) {
	c := newCluster(t)
	s := c.srv.srv.Store()
	b := c.agent("node-b")
	b.waitApplied(commitUnit(t, s, 3))
	if first, last, err := request(b.docroot, nil); err != nil || first != "version=3" || last != first {
		t.Fatalf("installed unit read %q %q (%v)", first, last, err)
	}
	resp, err := s.Commit(context.Background(), unitPush(testUnit, Change{Op: OpDelete, Path: testUnit}))
	if err != nil {
		t.Fatal(err)
	}
	b.waitApplied(resp.Seq)
	if _, err := os.Lstat(b.path(testUnit)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the deleted unit is still there: %v", err)
	}
}

// TestAgentUnitFromMarker: while PHP's marker for a plugin exists, the
// agent pushes nothing of the plugin; when it goes, the agent pushes the
// plugin's tree as one unit, which the other node swaps in whole.
func TestAgentUnitFromMarker(t *testing.T) {
	c := newCluster(t)
	s := c.srv.srv.Store()
	a, b := c.agent("node-a"), c.agent("node-b")
	for i := range 5 {
		a.write(fmt.Sprintf("%s/inc/f%d.php", testUnit, i), "v1")
	}
	a.write(testUnit+"/first.php", "version=1")
	a.write(testUnit+"/inc/last.php", "version=1")
	b.waitContent(testUnit+"/inc/last.php", "version=1")
	b.waitContent(testUnit+"/inc/f4.php", "v1")

	marker := filepath.Join(a.docroot, api.SwapStageDir, api.SwapUnitsDir, "plugins.mix")
	writeFile(t, marker, "")
	// WordPress's upgrader: delete the old directory, copy the new one.
	if err := os.RemoveAll(a.path(testUnit)); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		a.write(fmt.Sprintf("%s/inc/g%d.php", testUnit, i), "v2")
	}
	a.write(testUnit+"/first.php", "version=2")
	a.write(testUnit+"/inc/last.php", "version=2")
	// A change outside the unit, made after: once it is in files, the
	// unit's changes would have been too, had they not been held.
	a.write("wp-content/uploads/after.txt", "after")
	waitFor(t, 10*time.Second, "the upload to reach files", func() bool {
		_, ok := s.Lookup("wp-content/uploads/after.txt")
		return ok
	})
	if e, ok := s.Lookup(testUnit + "/first.php"); !ok || e.Hash != hashBytes([]byte("version=1")) {
		t.Fatalf("files changed the unit while its marker existed: first.php %+v %v", e, ok)
	}
	seqBefore := s.Seq()

	if err := os.Remove(marker); err != nil {
		t.Fatal(err)
	}
	b.waitContent(testUnit+"/first.php", "version=2")
	if first, last, err := request(b.docroot, nil); err != nil || first != "version=2" || last != first {
		t.Errorf("node-b after the unit: %q %q %v", first, last, err)
	}
	recs := logSince(t, s, seqBefore)
	if len(recs) == 0 || recs[0].Op != OpDelete || recs[0].Path != testUnit {
		t.Fatalf("log after the marker went: %+v, want one group starting with a delete of %s", recs, testUnit)
	}
	for _, r := range recs {
		if r.Group != recs[len(recs)-1].Group || r.Group == 0 {
			t.Errorf("record %+v is not of the unit's group", r)
		}
	}
	if diff := cmp.Diff(unitTree(t, a.docroot), unitTree(t, b.docroot)); diff != "" {
		t.Errorf("the unit differs between the nodes (-a +b):\n%s", diff)
	}
	waitFor(t, 10*time.Second, "node-a to settle", func() bool { return a.a.Pending() == 0 && a.a.AppliedSeq() == s.Seq() })
	if s.Seq() != seqBefore+uint64(len(recs)) {
		t.Errorf("node-a pushed more after its unit: seq %d, want %d", s.Seq(), seqBefore+uint64(len(recs)))
	}
}

// TestAgentUnitRecoveryWithEchoedLocalChanges is the interleaving
// TestAgentUnitKillPoints hit about once in ten runs: the apply stops
// after the swap, before the index is updated (the agent goes on running:
// the hook is not a real crash), and the watcher reports the swapped-in
// files, which differ from the index, as local changes: the queue holds a
// put of every new file, with the group's own content. After the restart
// those pending changes made the group "locally changed": it was applied
// record by record, whose delete removed the live tree and whose puts were
// skipped for the pending paths, leaving the unit without its files (the
// pushes of the echoes are no-ops in files, so nothing brought them back).
// Here the queue is given those echoes directly and the pusher is held, so
// the group always meets them.
func TestAgentUnitRecoveryWithEchoedLocalChanges(t *testing.T) {
	for _, step := range []string{stepSwapped, stepRemoved} {
		t.Run(step, func(t *testing.T) {
			c := newCluster(t)
			s := c.srv.srv.Store()
			commitUnit(t, s, 1)
			ref := c.agent("node-ref")
			ref.waitApplied(s.Seq())
			b := c.agent("node-b")
			b.waitApplied(s.Seq())
			want := map[int]map[string]string{1: unitTree(t, ref.docroot)}

			killed := make(chan struct{})
			var once sync.Once
			b.a.mu.Lock()
			b.a.testHookStage = func(got string) error {
				if got != step {
					return nil
				}
				once.Do(func() { close(killed) })
				return errKilled
			}
			b.a.mu.Unlock()
			commitUnit(t, s, 2)
			ref.waitApplied(s.Seq())
			want[2] = unitTree(t, ref.docroot)
			<-killed
			b.stop()
			if got := versionOf(t, b.docroot, want); got != "v2" {
				t.Fatalf("killed after %q: the live unit is %s, want v2", step, got)
			}
			head := s.Seq()
			echoes := unitEchoes(t, b.docroot)

			q, err := openQueue(filepath.Join(b.cfg.StateDir, "queue.jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			if err := q.add(echoes); err != nil {
				t.Fatal(err)
			}
			q.close()
			b.open()
			b.a.pushMu.Lock() // the echoes stay pending while the group is applied
			b.start()
			b.waitApplied(head)
			got := versionOf(t, b.docroot, want)
			b.a.pushMu.Unlock()
			if got != "v2" {
				t.Errorf("after the restart with %d echoed local changes queued the unit is %s, want v2", len(echoes), got)
			}
			waitFor(t, 10*time.Second, "node-b's echoes to be pushed", func() bool { return b.a.Pending() == 0 })
			if s.Seq() != head {
				t.Errorf("node-b's echoes changed files: seq %d, want %d", s.Seq(), head)
			}
			if got := versionOf(t, b.docroot, want); got != "v2" {
				t.Errorf("after the echoes were pushed the unit is %s, want v2", got)
			}
		})
	}
}

// unitEchoes are the local changes the watcher reports for the files of
// the unit in docroot when the index still holds the previous version.
func unitEchoes(t *testing.T, docroot string) []Change {
	t.Helper()
	var cs []Change
	err := filepath.WalkDir(filepath.Join(docroot, testUnit), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(docroot, p)
		cs = append(cs, Change{Op: OpPut, Path: filepath.ToSlash(rel), Mode: uint32(fi.Mode().Perm()), Size: fi.Size(), Hash: hashBytes(data), MTime: fi.ModTime().UnixNano()})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// TestAgentUnitKeepsPendingLocalWrite: a file PHP wrote under a unit that
// is not pushed yet when a group of the unit arrives wins (ADR 0026): the
// group is applied record by record, and its delete of the unit must not
// remove the file, or the pusher finds nothing to push and the write is
// lost on this node and in files.
func TestAgentUnitKeepsPendingLocalWrite(t *testing.T) {
	c := newCluster(t)
	s := c.srv.srv.Store()
	commitUnit(t, s, 1)
	b := c.agent("node-b")
	b.waitApplied(s.Seq())
	const local, content = testUnit + "/inc/local.php", "written by php on b"

	b.a.pushMu.Lock() // the local write stays pending while the group is applied
	b.write(local, content)
	waitFor(t, 10*time.Second, "node-b to queue its local write", func() bool { return b.a.Pending() > 0 })
	b.waitApplied(commitUnit(t, s, 2))
	got, ok := b.read(local)
	b.a.pushMu.Unlock()
	if !ok || got != content {
		t.Errorf("after the group node-b's pending local write is %q (present %v), want %q", got, ok, content)
	}
	if first, _ := b.read(testUnit + "/first.php"); first != "version=2" {
		t.Errorf("after the group first.php is %q, want version=2", first)
	}
	waitFor(t, 10*time.Second, "node-b's local write to reach files", func() bool {
		e, ok := s.Lookup(local)
		return ok && e.Hash == hashBytes([]byte(content))
	})
	ref := c.agent("node-ref")
	ref.waitContent(local, content)
}
