package filesync

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestLinkable(t *testing.T) {
	tests := []struct {
		mode uint32
		want bool
	}{
		{0o644, true}, {0o755, true}, {0o600, true}, {0o444, true},
		{0o664, false}, {0o775, false}, {0o646, false}, {0o666, false},
		{0o4755, false}, {0o2755, false}, {0o1644, false},
	}
	for _, tt := range tests {
		if got := linkable(tt.mode); got != tt.want {
			t.Errorf("linkable(%04o) = %v, want %v", tt.mode, got, tt.want)
		}
	}
}

func nlink(t testing.TB, p string) uint64 {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return uint64(fi.Sys().(*syscall.Stat_t).Nlink)
}

func sameFile(t testing.TB, a, b string) bool {
	t.Helper()
	fa, err := os.Lstat(a)
	if err != nil {
		t.Fatal(err)
	}
	fb, err := os.Lstat(b)
	if err != nil {
		t.Fatal(err)
	}
	return os.SameFile(fa, fb)
}

// poolAgent adds an agent whose docroot is linked from pool, bootstrapped
// and running.
func (c *cluster) poolAgent(name, pool string) *testAgent {
	ta := newTestAgent(c.t, c.srv.url, c.base, name)
	ta.stop()
	ta.cfg.LinkPool = pool
	ta.open()
	ta.bootstrap()
	ta.start()
	return ta
}

// TestLinkedDocroot: two docroots bootstrapped with a link pool share the
// inodes of the files nobody but the agent may write and copy the others;
// an update replaces a linked file by a new one (never writes into the
// shared inode), also when only its mode or mtime changes.
func TestLinkedDocroot(t *testing.T) {
	c := newCluster(t)
	origin := c.agent("node-a")
	core, script, upload := "wp-includes/version.php", "wp-admin/run.sh", "wp-content/uploads/a.jpg"
	origin.write(core, "<?php $v = 1;")
	origin.write(script, "#!/bin/sh")
	origin.write(upload, "JPEG")
	for p, m := range map[string]os.FileMode{core: 0o644, script: 0o755, upload: 0o664} {
		if err := os.Chmod(origin.path(p), m); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "the origin's files with their modes in the store", func() bool {
		for p, m := range map[string]uint32{core: 0o644, script: 0o755, upload: 0o664} {
			if e, ok := c.srv.srv.Store().Lookup(p); !ok || e.Mode != m {
				return false
			}
		}
		return true
	})
	pool := filepath.Join(c.base, "pool")
	b, d := c.poolAgent("node-b", pool), c.poolAgent("node-d", pool)

	if diff := cmp.Diff(treeOf(t, origin.docroot), treeOf(t, b.docroot)); diff != "" {
		t.Fatalf("linked docroot differs from the origin's (-origin +b):\n%s", diff)
	}
	if diff := cmp.Diff(treeOf(t, origin.docroot), treeOf(t, d.docroot)); diff != "" {
		t.Fatalf("linked docroot differs from the origin's (-origin +d):\n%s", diff)
	}
	for _, p := range []string{core, script} {
		if !sameFile(t, b.path(p), d.path(p)) || nlink(t, b.path(p)) != 3 {
			t.Errorf("%s: not one inode linked from the pool into both docroots (links %d)", p, nlink(t, b.path(p)))
		}
	}
	if sameFile(t, b.path(upload), d.path(upload)) || nlink(t, b.path(upload)) != 1 {
		t.Errorf("%s (0664, PHP may write it) is shared between docroots: links %d", upload, nlink(t, b.path(upload)))
	}
	if fi, err := os.Stat(pool); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("pool %s: %v, mode %v; want 0700", pool, err, fi.Mode())
	}

	// An update of a linked file: a new inode on every node, the old one
	// (still linked by the pool) unchanged.
	oldInode := filepath.Join(c.base, "old-version.php")
	if err := os.Link(b.path(core), oldInode); err != nil {
		t.Fatal(err)
	}
	origin.write(core, "<?php $v = 2;")
	b.waitContent(core, "<?php $v = 2;")
	d.waitContent(core, "<?php $v = 2;")
	if got, _ := os.ReadFile(oldInode); string(got) != "<?php $v = 1;" {
		t.Errorf("the old linked inode was written in place: %q", got)
	}
	if !sameFile(t, b.path(core), d.path(core)) {
		t.Errorf("the updated %s is not linked from the pool on both nodes", core)
	}

	// A mode-only change: replaced, not chmod-ed in place.
	shared := filepath.Join(c.base, "shared-version.php")
	if err := os.Link(b.path(core), shared); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(origin.path(core), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the mode change on both nodes", func() bool {
		fb, errb := os.Stat(b.path(core))
		fd, errd := os.Stat(d.path(core))
		return errb == nil && errd == nil && fb.Mode().Perm() == 0o600 && fd.Mode().Perm() == 0o600
	})
	if fi, err := os.Stat(shared); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("the shared inode's mode changed in place: %v %v", fi.Mode(), err)
	}
}

// TestLinkedMetadataReplaced: a file of the docroot that has other links and
// differs only in mode or mtime from a change is replaced, never changed in
// place (writeFile).
func TestLinkedMetadataReplaced(t *testing.T) {
	c := newCluster(t)
	ta := newTestAgent(t, c.srv.url, c.base, "node-a")
	ta.bootstrap()
	ta.write("f.php", "x")
	other := filepath.Join(c.base, "other")
	if err := os.Link(ta.path("f.php"), other); err != nil {
		t.Fatal(err)
	}
	mtime := time.Unix(1700000000, 0)
	ch := Change{Op: OpPut, Path: "f.php", Mode: 0o600, Size: 1, Hash: hashBytes([]byte("x")), MTime: mtime.UnixNano()}
	// The blob must be in the store for the replacement.
	ctx := context.Background()
	if _, _, err := c.srv.srv.Store().blobs.Put(ctx, ch.Hash, strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	ta.a.mu.Lock()
	err := ta.a.writeFile(ctx, ch)
	ta.a.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(other)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644 || fi.ModTime().Equal(mtime) {
		t.Errorf("the other link's inode changed: mode %v mtime %v", fi.Mode(), fi.ModTime())
	}
	got, err := os.Stat(ta.path("f.php"))
	if err != nil || got.Mode().Perm() != 0o600 || !got.ModTime().Equal(mtime) || os.SameFile(got, fi) {
		t.Errorf("f.php: %v, mode %v, mtime %v, same inode %v; want a new file 0600 at %v", err, got.Mode(), got.ModTime(), os.SameFile(got, fi), mtime)
	}
}

// TestPrunePool: entries no docroot links any more go once they have been
// unlinked for poolGrace; linked ones and young ones stay.
func TestPrunePool(t *testing.T) {
	c := newCluster(t)
	origin := c.agent("node-a")
	origin.write("keep.php", "<?php // kept")
	origin.write("gone.php", "<?php // gone")
	waitFor(t, 10*time.Second, "both files in the store", func() bool {
		_, k := c.srv.srv.Store().Lookup("keep.php")
		_, g := c.srv.srv.Store().Lookup("gone.php")
		return k && g
	})
	pool := filepath.Join(c.base, "pool")
	b := c.poolAgent("node-b", pool)
	b.stop()
	if err := os.Remove(b.path("gone.php")); err != nil {
		t.Fatal(err)
	}
	entries := func() int {
		n := 0
		filepath.WalkDir(pool, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				n++
			}
			return nil
		})
		return n
	}
	if got := entries(); got != 2 {
		t.Fatalf("pool entries %d, want 2", got)
	}
	b.open()
	if n := b.a.prunePool(time.Now()); n != 0 {
		t.Errorf("pruned %d entries unlinked just now, want 0", n)
	}
	if n := b.a.prunePool(time.Now().Add(poolGrace + time.Minute)); n != 1 || entries() != 1 {
		t.Errorf("after the grace: pruned %d, %d left; want 1 pruned (gone.php's), 1 left", n, entries())
	}
	if nlink(t, b.path("keep.php")) != 2 {
		t.Errorf("keep.php lost its pool entry")
	}
}

// BenchmarkBootstrap is a node's docroot made three ways from a store of
// 2,600 files of 24 KB (the size of Debian's WordPress: 2,619 files, 63 MB):
// the copy of the site tree plus a bootstrap that hashes every file (the
// local launcher before ADR 29), a bootstrap that downloads every file (no
// pool: a node on another host, or the first on this one), and a bootstrap
// that links every file from a warm pool (ADR 29).
//
//	go test -run '^$' -bench BenchmarkBootstrap -benchtime 5x ./internal/filesync/
func BenchmarkBootstrap(b *testing.B) {
	base := b.TempDir()
	site := filepath.Join(base, "site")
	content := strings.Repeat("<?php // WordPress core file\n", 24<<10/29)
	for i := range 2600 {
		p := filepath.Join(site, fmt.Sprintf("wp-includes/d%02d/f%04d.php", i%100, i))
		writeFile(b, p, fmt.Sprintf("%s// %d\n", content, i))
	}
	srv := startServer(b, filepath.Join(base, "files"), "", nil)
	if _, err := Seed(context.Background(), NewClient(srv.url, testToken(ControllerID), nil), site, DefaultRules()); err != nil {
		b.Fatal(err)
	}
	pool := filepath.Join(base, "pool")
	n := 0
	agent := func(pool string) *testAgent {
		n++
		ta := newTestAgent(b, srv.url, base, fmt.Sprintf("node-%d", n))
		ta.stop()
		ta.cfg.LinkPool = pool
		ta.open()
		return ta
	}
	agent(pool).bootstrap() // warms the pool
	for _, mode := range []string{"copy+hash", "download", "linked"} {
		b.Run(mode, func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				var ta *testAgent
				switch mode {
				case "linked":
					ta = agent(pool)
				default:
					ta = agent("")
				}
				b.StartTimer()
				if mode == "copy+hash" {
					if err := copyTree(site, ta.docroot); err != nil {
						b.Fatal(err)
					}
				}
				ta.bootstrap()
				b.StopTimer()
				ta.stop()
				os.RemoveAll(filepath.Dir(ta.docroot))
				b.StartTimer()
			}
		})
	}
}

// copyTree copies the regular files of src into dst, as the local launcher
// did (wordpress.CopyTree).
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dst, rel)), 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
}

// newPoolRig is a prefetchRig whose agent has a link pool and a files role
// that counts blob GETs and refuses each (503): what download writes must
// come from the pool or the blobs fetched ahead. The fake fetches ahead
// are released at once.
func newPoolRig(t *testing.T, cs []Change, setup func(*prefetchRig)) (r *prefetchRig, pool string, gets *atomic.Int64) {
	t.Helper()
	gets = new(atomic.Int64)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		gets.Add(1)
		http.Error(w, "blob GETs are not expected here", http.StatusServiceUnavailable)
	}))
	t.Cleanup(hs.Close)
	pool = filepath.Join(t.TempDir(), "pool")
	r = newPrefetchRig(t, 4, 1<<20, cs, func(r *prefetchRig) {
		p, err := openLinkPool(pool)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		r.a.pool = p
		r.a.client = NewClient(hs.URL, "", nil)
		r.a.cfg.RequestTimeout = 10 * time.Second
		if setup != nil {
			setup(r)
		}
	})
	close(r.f.release)
	t.Cleanup(r.close)
	return r, pool, gets
}

// putPoolEntry writes the pool's entry for (hash, mode, mtime) as another
// node's agent on the host would have made it.
func putPoolEntry(t *testing.T, pool, hash string, mode uint32, mtime time.Time, content string) string {
	t.Helper()
	p := filepath.Join(pool, poolName(hash, mode, mtime))
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, fs.FileMode(mode)); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	return p
}

// waitFetched waits until the fetch ahead of hash ended.
func waitFetched(t *testing.T, p *prefetcher, hash string) {
	t.Helper()
	p.mu.Lock()
	e, ok := p.blobs[hash]
	p.mu.Unlock()
	if !ok {
		t.Fatalf("%s was not fetched ahead", hash)
	}
	<-e.done
}

// TestDownloadOrder: download's order with a link pool and blobs fetched
// ahead (ADR 29, ADR 12): a file PHP may not write is linked from the pool
// — the pool's entry when it has one, else the blob fetched ahead becomes
// the entry, never a second GET and never a copy —, and a file PHP may
// write takes the blob fetched ahead. The files role refuses every GET, so
// a fetch in the wrong place fails the download.
func TestDownloadOrder(t *testing.T) {
	mtime := time.Unix(1700000000, 0)
	put := func(p string, mode uint32) Change {
		return Change{Seq: 1, Op: OpPut, Path: p, Mode: mode, Size: 8, Hash: "h00", MTime: mtime.UnixNano(), Origin: "node-a"}
	}
	tests := []struct {
		name string
		c    Change
		// entryAfterFetch: another agent on the host makes the pool's
		// entry after this one fetched the blob ahead.
		entryAfterFetch bool
		want            string // content
		wantLinked      bool   // the file is the pool's entry
		wantAhead       int64  // blobs taken from the stage
	}{
		{"linkable, fetched ahead, not in the pool", put("wp-includes/a.php", 0o644), false, "blob h00", true, 1},
		{"linkable, fetched ahead, then in the pool", put("wp-includes/a.php", 0o644), true, "pool h00", true, 0},
		{"writable by PHP, fetched ahead", put("wp-content/uploads/a.jpg", 0o664), false, "blob h00", false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, pool, gets := newPoolRig(t, []Change{tt.c}, nil)
			c, err := r.next()
			if err != nil {
				t.Fatal(err)
			}
			waitFetched(t, r.p, c.Hash)
			entry := filepath.Join(pool, poolName(c.Hash, c.Mode, mtime))
			if tt.entryAfterFetch {
				putPoolEntry(t, pool, c.Hash, c.Mode, mtime, "pool h00")
			}
			if err := r.a.download(context.Background(), c.Hash, "f.tmp", c.Mode, mtime); err != nil {
				t.Fatalf("download: %v", err)
			}
			r.a.passed(c.Seq)
			tmp := filepath.Join(r.a.root.Name(), "f.tmp")
			b, err := os.ReadFile(tmp)
			if err != nil {
				t.Fatal(err)
			}
			fi, err := os.Lstat(tmp)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.want || uint32(fi.Mode().Perm()) != c.Mode || !fi.ModTime().Equal(mtime) {
				t.Errorf("file: %q mode %o mtime %v, want %q mode %o mtime %v", b, fi.Mode().Perm(), fi.ModTime(), tt.want, c.Mode, mtime)
			}
			linked := false
			if _, err := os.Lstat(entry); err == nil {
				linked = sameFile(t, tmp, entry)
			}
			if linked != tt.wantLinked || (tt.wantLinked && nlink(t, tmp) != 2) || (!tt.wantLinked && nlink(t, tmp) != 1) {
				t.Errorf("linked from the pool: %v (links %d), want %v", linked, nlink(t, tmp), tt.wantLinked)
			}
			if !tt.wantLinked {
				if _, err := os.Lstat(entry); err == nil {
					t.Errorf("a file PHP may write has a pool entry %s", entry)
				}
			}
			if n := gets.Load(); n != 0 {
				t.Errorf("blob GETs by download: %d, want 0 (the pool or the stage has it)", n)
			}
			if n := r.a.fetchedAhead.Load(); n != tt.wantAhead {
				t.Errorf("blobs taken from the stage: %d, want %d", n, tt.wantAhead)
			}
			if d := cmp.Diff(map[string]int{"h00": 1}, r.f.calls); d != "" {
				t.Errorf("fetches ahead (-want +got):\n%s", d)
			}
			if s := stagedFiles(t, r.a.root); len(s) != 0 {
				t.Errorf("staged blobs left after the change passed: %v", s)
			}
		})
	}
}

// TestPrefetchSkipsPooled: a put the pool can link (linkable mode, the
// pool holds its content with that mode and mtime) is not fetched ahead;
// a put PHP may write, or one whose pool entry has another mtime, is. The
// pooled put is then linked with no GET.
func TestPrefetchSkipsPooled(t *testing.T) {
	mtime := time.Unix(1700000000, 0)
	cs := []Change{
		{Seq: 1, Op: OpPut, Path: "wp-includes/a.php", Mode: 0o644, Size: 8, Hash: "h00", MTime: mtime.UnixNano(), Origin: "node-a"},
		{Seq: 2, Op: OpPut, Path: "wp-content/uploads/b.jpg", Mode: 0o664, Size: 8, Hash: "h01", MTime: mtime.UnixNano(), Origin: "node-a"},
		{Seq: 3, Op: OpPut, Path: "wp-includes/c.php", Mode: 0o644, Size: 8, Hash: "h02", MTime: mtime.UnixNano(), Origin: "node-a"},
	}
	var entry string
	r, _, gets := newPoolRig(t, cs, func(r *prefetchRig) {
		pool := r.a.pool.Name()
		entry = putPoolEntry(t, pool, "h00", 0o644, mtime, "pool h00")
		putPoolEntry(t, pool, "h01", 0o664, mtime, "pool h01")                  // never linked: 0664
		putPoolEntry(t, pool, "h02", 0o644, mtime.Add(time.Second), "pool h02") // another mtime
	})
	var got []string
	for range cs {
		c, err := r.next()
		if err != nil {
			t.Fatal(err)
		}
		if c.Seq == 1 {
			if err := r.a.download(context.Background(), c.Hash, "a.tmp", c.Mode, mtime); err != nil {
				t.Fatalf("download of the pooled file: %v", err)
			}
			if !sameFile(t, filepath.Join(r.a.root.Name(), "a.tmp"), entry) {
				t.Errorf("the pooled file is not linked from the pool")
			}
			r.a.passed(c.Seq)
			got = append(got, "linked")
			continue
		}
		got = append(got, r.apply(t, c))
	}
	if d := cmp.Diff([]string{"linked", "blob h01", "blob h02"}, got); d != "" {
		t.Errorf("contents (-want +got):\n%s", d)
	}
	if d := cmp.Diff(map[string]int{"h01": 1, "h02": 1}, r.f.calls); d != "" {
		t.Errorf("fetches ahead (-want +got):\n%s", d)
	}
	if n := gets.Load(); n != 0 {
		t.Errorf("blob GETs: %d, want 0", n)
	}
}

// TestUnitStageLinksKept: a unit applied by an agent with a link pool
// (ADR 26, ADR 29) links the files it keeps from the pool into its stage
// instead of copying them from the live tree, so that after the swap they
// are the pool's inodes. A kept file whose entry the pool lacks (pruned,
// or a new mtime, as a release gives every file) gets one made from the
// live file. A file PHP may write is copied even when the pool holds an
// entry for it; content, mode and mtime are what the records say.
func TestUnitStageLinksKept(t *testing.T) {
	const unit = "wp-content/plugins/locked"
	c := newCluster(t)
	s := c.srv.srv.Store()
	type file struct {
		name    string
		mode    uint32
		content string
	}
	version := func(v int) (PushRequest, map[string]Change) {
		files := []file{
			{"keep.php", 0o644, "kept"},
			{"inc/keep.sh", 0o755, "#!/bin/sh kept"},
			{"inc/writable.php", 0o664, "kept, PHP may write it"},
			{"gone.php", 0o644, "kept, its pool entry pruned"},
			{"touched.php", 0o644, "kept, with a new mtime"},
			{"change.php", 0o644, fmt.Sprintf("version %d", v)},
		}
		if v == 2 {
			files = append(files, file{"inc/new.php", 0o644, "new in v2"})
		}
		cs := []Change{{Op: OpMkdir, Path: unit, Mode: 0o755}, {Op: OpMkdir, Path: unit + "/inc", Mode: 0o755}}
		byName := make(map[string]Change)
		for _, f := range files {
			ch := storeBlob(t, s, unit+"/"+f.name, f.content)
			ch.Mode = f.mode
			if f.name == "touched.php" {
				ch.MTime += int64(v) * 1e9
			}
			byName[f.name] = ch
			cs = append(cs, ch)
		}
		return unitPush(unit, cs...), byName
	}
	commit := func(v int) map[string]Change {
		push, byName := version(v)
		resp, err := s.Commit(context.Background(), push)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("v%d committed at seq %d", v, resp.Seq)
		return byName
	}
	entry := func(pool string, ch Change) string {
		return filepath.Join(pool, poolName(ch.Hash, ch.Mode, time.Unix(0, ch.MTime)))
	}

	v1 := commit(1)
	pool := filepath.Join(c.base, "pool")
	b := c.poolAgent("node-b", pool)
	// The pool holds an entry for the writable file's content as if 0644
	// elsewhere, and one with its very mode 0664 (which no agent makes):
	// neither may be linked to it.
	w := v1["inc/writable.php"]
	putPoolEntry(t, pool, w.Hash, 0o644, time.Unix(0, w.MTime), "kept, PHP may write it")
	putPoolEntry(t, pool, w.Hash, 0o664, time.Unix(0, w.MTime), "kept, PHP may write it")
	if err := os.Remove(entry(pool, v1["gone.php"])); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"keep.php", "inc/keep.sh"} {
		if !sameFile(t, b.path(unit+"/"+n), entry(pool, v1[n])) {
			t.Fatalf("%s: bootstrap did not link it from the pool", n)
		}
	}
	unitDir, err := os.Lstat(b.path(unit))
	if err != nil {
		t.Fatal(err)
	}
	writable, err := os.Lstat(b.path(unit + "/inc/writable.php"))
	if err != nil {
		t.Fatal(err)
	}

	v2 := commit(2)
	b.waitApplied(s.Seq())

	// The unit was swapped in (a new directory, the writable file a new
	// copy), not applied record by record, which would keep every inode.
	if fi, err := os.Lstat(b.path(unit)); err != nil || os.SameFile(fi, unitDir) {
		t.Fatalf("%s was not swapped in as a unit (err %v)", unit, err)
	}
	if fi, err := os.Lstat(b.path(unit + "/inc/writable.php")); err != nil || os.SameFile(fi, writable) {
		t.Fatalf("inc/writable.php was not rebuilt in the stage (err %v)", err)
	}
	for n, ch := range v2 {
		p := b.path(unit + "/" + n)
		linked := false
		if fe, err := os.Lstat(entry(pool, ch)); err == nil {
			fp, err := os.Lstat(p)
			linked = err == nil && os.SameFile(fp, fe)
		}
		wantLinked := linkable(ch.Mode)
		if linked != wantLinked {
			t.Errorf("%s (mode %04o): linked from the pool %v, want %v (links %d)", n, ch.Mode, linked, wantLinked, nlink(t, p))
		}
		if !linkable(ch.Mode) && nlink(t, p) != 1 {
			t.Errorf("%s (mode %04o, PHP may write it) has %d links, want 1", n, ch.Mode, nlink(t, p))
		}
	}

	// Content, mode and mtime are the records', as a docroot bootstrapped
	// without a pool has them.
	ref := newTestAgent(t, c.srv.url, c.base, "node-ref")
	ref.bootstrap()
	want, got := make(map[string]string), make(map[string]string)
	for p, d := range treeOf(t, ref.docroot) {
		if p == unit || isBelow(p, unit) {
			want[p] = d
		}
	}
	for p, d := range treeOf(t, b.docroot) {
		if p == unit || isBelow(p, unit) {
			got[p] = d
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the swapped unit differs from a bootstrapped one (-want +got):\n%s", diff)
	}
}

// TestPoolEntryFrom: an entry made from a live file is linked to its name
// only if the bytes copied are the blob's: a live file whose content is not
// what the index says (PHP wrote it, keeping size and mtime) gives no
// entry, and nothing is left in the pool.
func TestPoolEntryFrom(t *testing.T) {
	c := newCluster(t)
	pool := filepath.Join(c.base, "pool")
	b := c.poolAgent("node-b", pool)
	if err := os.WriteFile(b.path("live.php"), []byte("written by PHP"), 0o644); err != nil {
		t.Fatal(err)
	}
	mtime := time.Unix(1700000000, 5)
	for _, tt := range []struct {
		name, hash string
		wantErr    error
	}{
		{"another content", hashBytes([]byte("the blob's content")), ErrHashMismatch},
		{"the content", hashBytes([]byte("written by PHP")), nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			name := poolName(tt.hash, 0o644, mtime)
			err := b.a.poolEntryFrom("live.php", name, tt.hash, 0o644, mtime)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("poolEntryFrom: %v, want %v", err, tt.wantErr)
			}
			fi, serr := os.Lstat(filepath.Join(pool, name))
			if tt.wantErr != nil {
				if serr == nil {
					t.Errorf("an entry was made for content that is not its blob")
				}
			} else if serr != nil || fi.Mode().Perm() != 0o644 || !fi.ModTime().Equal(mtime) {
				t.Errorf("entry %s: %v, mode %v, mtime %v; want 0644 and %v", name, serr, fi.Mode(), fi.ModTime(), mtime)
			}
			tmps, _ := filepath.Glob(filepath.Join(pool, "*", tempPrefix+"*"))
			if len(tmps) != 0 {
				t.Errorf("temporary files left in the pool: %v", tmps)
			}
		})
	}
}

// TestUnitStageTamperedLive: a kept file whose live copy is not what the
// index says (replaced with the same size and mtime, which the index's
// fast check cannot see) is neither pooled nor copied into the unit's
// stage: the blob is downloaded into the pool and linked.
func TestUnitStageTamperedLive(t *testing.T) {
	const unit = "wp-content/plugins/locked"
	c := newCluster(t)
	s := c.srv.srv.Store()
	const content, tampered = "<?php // the release's file", "<?php // written by attacks" // one size
	commit := func(v int) []Change {
		since := s.Seq()
		ch := storeBlob(t, s, unit+"/kept.php", content)
		ch.MTime += int64(v) * 1e9 // a release's new mtime
		changed := storeBlob(t, s, unit+"/version.php", fmt.Sprintf("<?php $v = %d;", v))
		if _, err := s.Commit(context.Background(), unitPush(unit, Change{Op: OpMkdir, Path: unit, Mode: 0o755}, ch, changed)); err != nil {
			t.Fatal(err)
		}
		cs, _, err := s.Changes(context.Background(), since, 100)
		if err != nil {
			t.Fatal(err)
		}
		return cs
	}
	commit(1)
	b := newTestAgent(t, c.srv.url, c.base, "node-b")
	b.stop()
	b.cfg.LinkPool = filepath.Join(c.base, "pool")
	b.open()
	b.bootstrap()
	live := b.path(unit + "/kept.php")
	fi, err := os.Lstat(live)
	if err != nil {
		t.Fatal(err)
	}
	// A new inode (the pool's entry is not touched), same size and mtime.
	if err := os.Remove(live); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(live, []byte(tampered), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(live, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}

	group := commit(2)
	if err := b.a.applyGroup(context.Background(), group); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(live); string(got) != content {
		t.Errorf("kept.php after the unit: %q, want the blob's %q", got, content)
	}
	var put Change
	for _, ch := range group {
		if ch.Path == unit+"/kept.php" {
			put = ch
		}
	}
	entry := filepath.Join(b.cfg.LinkPool, poolName(put.Hash, put.Mode, time.Unix(0, put.MTime)))
	if got, err := os.ReadFile(entry); err != nil || string(got) != content {
		t.Errorf("pool entry %s: %q, %v; want the blob's content", entry, got, err)
	} else if !sameFile(t, live, entry) {
		t.Errorf("kept.php is not linked from its pool entry")
	}
}
