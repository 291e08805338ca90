package filesync

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeStream hands out changes, then blocks until the test ends.
type fakeStream struct {
	cs  []Change
	end chan struct{}
}

func (s *fakeStream) Next() (Change, error) {
	if len(s.cs) == 0 {
		<-s.end
		return Change{}, errors.New("stream cut")
	}
	c := s.cs[0]
	s.cs = s.cs[1:]
	return c, nil
}

func (s *fakeStream) Buffered() bool { return len(s.cs) > 0 }

// fakeFetches stands for the files role: each fetch waits for release,
// then writes the blob's content (its hash's name) or fails.
type fakeFetches struct {
	mu       sync.Mutex
	inFlight int
	max      int
	calls    map[string]int
	fail     map[string]bool
	release  chan struct{}
}

func (f *fakeFetches) get(root *os.Root) func(ctx context.Context, hash, name string) error {
	return func(ctx context.Context, hash, name string) error {
		f.mu.Lock()
		f.inFlight++
		f.max = max(f.max, f.inFlight)
		f.calls[hash]++
		f.mu.Unlock()
		defer func() {
			f.mu.Lock()
			f.inFlight--
			f.mu.Unlock()
		}()
		select {
		case <-f.release:
		case <-ctx.Done():
			return ctx.Err()
		}
		if f.fail[hash] {
			return errors.New("files role: 503")
		}
		return root.WriteFile(name, []byte("blob "+hash), 0o600)
	}
}

// prefetchRig is a prefetcher on a temporary docroot fed by a fakeStream.
type prefetchRig struct {
	a      *Agent
	p      *prefetcher
	f      *fakeFetches
	st     *fakeStream
	next   func() (Change, error)
	cancel context.CancelFunc
}

// setup, if not nil, runs before the prefetcher reads.
func newPrefetchRig(t *testing.T, n int, limit int64, cs []Change, setup func(*prefetchRig)) *prefetchRig {
	t.Helper()
	root, err := os.OpenRoot(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	if err := root.MkdirAll(fetchDir, 0o700); err != nil {
		t.Fatal(err)
	}
	rules, err := compileRules(DefaultRules())
	if err != nil {
		t.Fatal(err)
	}
	a := &Agent{cfg: AgentConfig{NodeID: "node-b"}, rules: rules, root: root, logger: testLogger(t)}
	ctx, cancel := context.WithCancel(context.Background())
	r := &prefetchRig{a: a, cancel: cancel,
		f:  &fakeFetches{calls: map[string]int{}, fail: map[string]bool{}, release: make(chan struct{})},
		st: &fakeStream{cs: cs, end: make(chan struct{})},
	}
	r.p = newPrefetcher(ctx, a, n, limit)
	r.p.get = r.f.get(root)
	a.pre.Store(r.p)
	if setup != nil {
		setup(r)
	}
	r.next, _ = r.p.read(r.st, 4*n)
	return r
}

// close stops the rig as streamOnce stops its prefetcher.
func (r *prefetchRig) close() {
	r.p.stop(func() { close(r.st.end) })
	r.cancel()
}

func (r *prefetchRig) stats() (inFlight, max int) {
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	return r.f.inFlight, r.f.max
}

// apply is the applier's side for one change: it takes c's blob if it was
// fetched ahead and passes c. It returns the taken file's content, "" if
// the applier would have to fetch the blob itself.
func (r *prefetchRig) apply(t *testing.T, c Change) string {
	t.Helper()
	got := ""
	if c.Op == OpPut {
		tmp := fmt.Sprintf("taken-%d", c.Seq)
		if r.a.takeFetched(context.Background(), c.Hash, tmp, 0o644, time.Unix(0, c.MTime)) {
			b, err := r.a.root.ReadFile(tmp)
			if err != nil {
				t.Fatal(err)
			}
			fi, _ := r.a.root.Stat(tmp)
			if fi.Mode().Perm() != 0o644 || fi.ModTime().UnixNano() != c.MTime {
				t.Errorf("seq %d: taken file has mode %o, mtime %d; want 644, %d", c.Seq, fi.Mode().Perm(), fi.ModTime().UnixNano(), c.MTime)
			}
			got = string(b)
		}
	}
	r.a.passed(c.Seq)
	return got
}

func puts(n int, size int64) []Change {
	cs := make([]Change, n)
	for i := range cs {
		cs[i] = Change{Seq: uint64(i + 1), Op: OpPut, Path: fmt.Sprintf("up/f%d", i), Mode: 0o644, Size: size, Hash: fmt.Sprintf("h%02d", i), MTime: int64(i+1) * 1e9, Origin: "node-a"}
	}
	return cs
}

// stagedFiles lists what the stage's fetch directory holds.
func stagedFiles(t *testing.T, root *os.Root) []string {
	t.Helper()
	es, err := fs.ReadDir(root.FS(), fetchDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

// TestPrefetchBoundedFetches: at most Prefetch blobs are fetched at once,
// however far the stream runs ahead, and every blob reaches the applier in
// log order.
func TestPrefetchBoundedFetches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cs := puts(40, 10)
		r := newPrefetchRig(t, 4, 1<<20, cs, nil)
		defer r.close()
		synctest.Wait() // the reader is blocked on a slot, the fetches on release
		if in, _ := r.stats(); in != 4 {
			t.Fatalf("fetches in flight with Prefetch 4: %d, want 4", in)
		}
		close(r.f.release)
		for _, want := range cs {
			c, err := r.next()
			if err != nil {
				t.Fatal(err)
			}
			if c.Seq != want.Seq {
				t.Fatalf("next: seq %d, want %d", c.Seq, want.Seq)
			}
			if got := r.apply(t, c); got != "blob "+c.Hash {
				t.Errorf("seq %d: took %q, want the blob fetched ahead", c.Seq, got)
			}
		}
		if _, m := r.stats(); m != 4 {
			t.Errorf("most fetches in flight: %d, want 4", m)
		}
		if s := stagedFiles(t, r.a.root); len(s) != 0 {
			t.Errorf("staged blobs left after all were taken: %v", s)
		}
	})
}

// TestPrefetchBoundedBytes: blobs are fetched ahead only while their
// bytes fit in PrefetchBytes; the rest are left to the applier, and the
// bytes come back as the applier passes changes.
func TestPrefetchBoundedBytes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cs := puts(5, 10)
		r := newPrefetchRig(t, 8, 25, cs, nil)
		defer r.close()
		synctest.Wait()
		if in, _ := r.stats(); in != 2 {
			t.Fatalf("fetches in flight with 25 bytes for blobs of 10: %d, want 2", in)
		}
		close(r.f.release)
		var got []string
		for range cs {
			c, err := r.next()
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, r.apply(t, c))
		}
		want := []string{"blob h00", "blob h01", "", "", ""}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("blobs taken (-want +got):\n%s", d)
		}
		r.p.mu.Lock()
		left := r.p.bytes
		r.p.mu.Unlock()
		if left != 0 {
			t.Errorf("bytes still counted after every change passed: %d", left)
		}
	})
}

// TestPrefetchSkips: a failed fetch leaves the blob to the applier; the
// node's own changes and files already in place are not fetched; a blob
// two puts share is fetched once and given to both; a blob the applier
// did not take (the change was skipped) is removed when it passes.
func TestPrefetchSkips(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cs := puts(6, 10)
		cs[1].Origin = "node-b" // our own: its content is here
		cs[3].Hash = cs[2].Hash // the same content twice
		r := newPrefetchRig(t, 8, 1<<20, cs, func(r *prefetchRig) {
			// A replay: the docroot holds cs[5]'s size and mtime already.
			if err := r.a.root.MkdirAll("up", 0o755); err != nil {
				t.Fatal(err)
			}
			if err := r.a.root.WriteFile(cs[5].Path, []byte("0123456789"), 0o644); err != nil {
				t.Fatal(err)
			}
			mt := time.Unix(0, cs[5].MTime)
			if err := r.a.root.Chtimes(cs[5].Path, mt, mt); err != nil {
				t.Fatal(err)
			}
			r.f.fail[cs[0].Hash] = true
		})
		defer r.close()
		synctest.Wait()
		close(r.f.release)
		var got []string
		for i := range cs {
			c, err := r.next()
			if err != nil {
				t.Fatal(err)
			}
			if i == 4 {
				synctest.Wait()
				if s := stagedFiles(t, r.a.root); len(s) != 1 || s[0] != cs[4].Hash {
					t.Errorf("staged before the skipped change passed: %v, want [%s]", s, cs[4].Hash)
				}
				r.a.passed(c.Seq) // skipped by the applier: not taken
				got = append(got, "skipped")
				continue
			}
			got = append(got, r.apply(t, c))
		}
		want := []string{"", "", "blob h02", "blob h02", "skipped", ""}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("blobs taken (-want +got):\n%s", d)
		}
		wantCalls := map[string]int{"h00": 1, "h02": 1, "h04": 1}
		if d := cmp.Diff(wantCalls, r.f.calls); d != "" {
			t.Errorf("fetches by hash (-want +got):\n%s", d)
		}
		if s := stagedFiles(t, r.a.root); len(s) != 0 {
			t.Errorf("staged blobs left: %v", s)
		}
	})
}

// blobGate is a proxy in front of a files role that holds the GETs of
// some blobs until the GETs of others were served, fails some once, and
// counts the stream requests.
type blobGate struct {
	mu      sync.Mutex
	gets    map[string]int
	streams int
	hold    map[string]bool // held until every blob of wait was served
	wait    map[string]bool
	served  chan struct{} // closed when every blob of wait was served
	failOne map[string]bool
	timeout bool
}

func (g *blobGate) start(t *testing.T, target string) string {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(u) }}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hash, isBlob := strings.CutPrefix(r.URL.Path, "/v1/blobs/")
		g.mu.Lock()
		if strings.HasPrefix(r.URL.Path, "/v1/stream") {
			g.streams++
		}
		if !isBlob || r.Method != http.MethodGet {
			g.mu.Unlock()
			rp.ServeHTTP(w, r)
			return
		}
		g.gets[hash]++
		fail := g.failOne[hash] && g.gets[hash] == 1
		hold := g.hold[hash]
		g.mu.Unlock()
		if fail {
			http.Error(w, "injected failure", http.StatusServiceUnavailable)
			return
		}
		if hold {
			select {
			case <-g.served:
			case <-time.After(10 * time.Second): // a guard: the test fails, it does not wait
				g.mu.Lock()
				g.timeout = true
				g.mu.Unlock()
			}
		}
		rp.ServeHTTP(w, r)
		g.mu.Lock()
		if g.wait[hash] {
			delete(g.wait, hash)
			if len(g.wait) == 0 {
				close(g.served)
			}
		}
		g.mu.Unlock()
	}))
	t.Cleanup(hs.Close)
	return hs.URL
}

// pushBlobs stores contents as blobs and returns their hashes.
func pushBlobs(t *testing.T, c *Client, contents ...string) []string {
	t.Helper()
	var hs []string
	for _, s := range contents {
		h := hashBytes([]byte(s))
		if err := c.PutBlob(context.Background(), h, strings.NewReader(s), int64(len(s))); err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
	return hs
}

// TestPrefetchAppliesInLogOrder: the blobs of later changes arrive first
// (the first ones are held until the later ones were served, which only
// fetching ahead can do), and the log's order still wins: a put after a
// put of the same path, a delete after a put.
func TestPrefetchAppliesInLogOrder(t *testing.T) {
	c := newCluster(t)
	w := NewClient(c.srv.url, testToken("node-a"), nil)
	slow := pushBlobs(t, w, "x version 1", "y, deleted next")
	fast := pushBlobs(t, w, "x version 2", "f0", "f1", "f2", "f3", "f4", "f5")
	g := &blobGate{gets: map[string]int{}, served: make(chan struct{}),
		hold: map[string]bool{slow[0]: true, slow[1]: true}, wait: map[string]bool{}}
	for _, h := range fast {
		g.wait[h] = true
	}
	b := newTestAgent(t, g.start(t, c.srv.url), c.base, "node-b")
	b.bootstrap()
	b.start()

	changes := []Change{
		{Op: OpPut, Path: "up/x", Mode: 0o644, Size: 11, Hash: slow[0], MTime: 1e18},
		{Op: OpPut, Path: "up/y", Mode: 0o644, Size: 15, Hash: slow[1], MTime: 1e18},
		{Op: OpDelete, Path: "up/y"},
		{Op: OpPut, Path: "up/x", Mode: 0o644, Size: 11, Hash: fast[0], MTime: 2e18},
	}
	for i, h := range fast[1:] {
		changes = append(changes, Change{Op: OpPut, Path: fmt.Sprintf("up/f%d", i), Mode: 0o644, Size: 2, Hash: h, MTime: 1e18})
	}
	resp, err := w.Push(context.Background(), PushRequest{Origin: "node-a", Changes: changes})
	if err != nil {
		t.Fatal(err)
	}
	b.waitApplied(resp.Seq)
	g.mu.Lock()
	timedOut := g.timeout
	g.mu.Unlock()
	if timedOut {
		t.Error("the first blobs were held 10 s: the later ones were not fetched ahead")
	}
	if got, _ := b.read("up/x"); got != "x version 2" {
		t.Errorf("up/x = %q, want the later put's %q", got, "x version 2")
	}
	if _, ok := b.read("up/y"); ok {
		t.Error("up/y exists: the delete after its put lost")
	}
	for i := range 5 {
		if got, _ := b.read(fmt.Sprintf("up/f%d", i)); got != fmt.Sprintf("f%d", i) {
			t.Errorf("up/f%d = %q", i, got)
		}
	}
	if s := stagedFiles(t, b.a.root); len(s) != 0 {
		t.Errorf("staged blobs left: %v", s)
	}
}

// TestPrefetchFailedFetchRetriedInOrder: a blob whose fetch ahead failed
// is fetched again by the applier in turn, with no reconnect of the
// stream and no change skipped.
func TestPrefetchFailedFetchRetriedInOrder(t *testing.T) {
	c := newCluster(t)
	w := NewClient(c.srv.url, testToken("node-a"), nil)
	hs := pushBlobs(t, w, "first", "second", "third")
	g := &blobGate{gets: map[string]int{}, failOne: map[string]bool{hs[1]: true}}
	b := newTestAgent(t, g.start(t, c.srv.url), c.base, "node-b")
	b.bootstrap()
	b.start()
	waitFor(t, 10*time.Second, "node-b's stream", func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.streams == 1
	})
	var changes []Change
	for i, h := range hs {
		changes = append(changes, Change{Op: OpPut, Path: fmt.Sprintf("up/%d", i), Mode: 0o644, Size: int64(len([]string{"first", "second", "third"}[i])), Hash: h, MTime: 1e18})
	}
	resp, err := w.Push(context.Background(), PushRequest{Origin: "node-a", Changes: changes})
	if err != nil {
		t.Fatal(err)
	}
	b.waitApplied(resp.Seq)
	if got, _ := b.read("up/1"); got != "second" {
		t.Errorf("up/1 = %q, want %q", got, "second")
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gets[hs[1]] != 2 {
		t.Errorf("GETs of the blob that failed once: %d, want 2 (the fetch ahead, the applier's)", g.gets[hs[1]])
	}
	if g.streams != 1 {
		t.Errorf("stream requests: %d, want 1 (a failed fetch ahead is no reason to reconnect)", g.streams)
	}
	if b.a.Quarantined() != 0 {
		t.Errorf("quarantined: %d", b.a.Quarantined())
	}
}

// TestPrefetchStageClearedAtOpen: blobs a killed agent had fetched ahead
// are removed when it opens again; the stage's other files stay.
func TestPrefetchStageClearedAtOpen(t *testing.T) {
	c := newCluster(t)
	b := newTestAgent(t, c.srv.url, c.base, "node-b")
	b.bootstrap()
	left := b.path(fetchDir + "/0123abcd")
	writeFile(t, left, "fetched ahead, never applied")
	marker := b.path(unitsDir + "/plugins.akismet")
	writeFile(t, marker, "")
	b.restart()
	if _, err := os.Lstat(left); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a blob fetched ahead survived the agent's open: %v", err)
	}
	if _, err := os.Lstat(marker); err != nil {
		t.Errorf("a unit marker went with the blobs fetched ahead: %v", err)
	}
}
