package filesync

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// clock is an injected time source for a Store.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// gcStore is a store with an hour of grace on a clock the test sets.
func gcStore(t *testing.T, mutate func(*Config)) (*Store, *clock, string) {
	return gcStoreOn(t, testBackends()[0], mutate)
}

// gcStoreOn is gcStore on backend b.
func gcStoreOn(t *testing.T, b backend, mutate func(*Config)) (*Store, *clock, string) {
	t.Helper()
	dir := t.TempDir()
	s := openStoreOn(t, b, dir, func(c *Config) {
		c.GCGrace = time.Hour
		if mutate != nil {
			mutate(c)
		}
	})
	clk := &clock{t: time.Now()}
	s.now = clk.now
	return s, clk, dir
}

func putBlob(t *testing.T, s *Store, content string) string {
	t.Helper()
	h := hashBytes([]byte(content))
	if _, err := s.PutBlob(context.Background(), h, strings.NewReader(content), int64(len(content))); err != nil {
		t.Fatal(err)
	}
	return h
}

// ageBlob makes a stored blob look uploaded d ago.
func ageBlob(t *testing.T, dir, hash string, d time.Duration) {
	ageBlobOn(t, testBackends()[0], dir, hash, d)
}

// ageBlobOn makes a blob of backend b look uploaded d ago (on S3: the
// mtime of the file versitygw's posix backend keeps it in, which is the
// object's LastModified).
func ageBlobOn(t *testing.T, b backend, dir, hash string, d time.Duration) {
	t.Helper()
	at := time.Now().Add(-d)
	if err := os.Chtimes(b.blobFile(t, dir, hash), at, at); err != nil {
		t.Fatal(err)
	}
}

func hasBlob(t *testing.T, s *Store, h string) bool {
	t.Helper()
	ok, err := s.HasBlob(context.Background(), h)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// checkReferenced fails unless every file of the current tree has its blob.
func checkReferenced(t *testing.T, s *Store) {
	t.Helper()
	for _, e := range s.Manifest().Entries {
		if !e.Dir && !hasBlob(t, s, e.Hash) {
			t.Errorf("%s (seq %d) names blob %s, which is gone", e.Path, e.Seq, e.Hash[:8])
		}
	}
}

func TestGCRemovesOnlyUnreferencedOldBlobs(t *testing.T) {
	for _, b := range testBackends() {
		t.Run(b.name, func(t *testing.T) {
			s, clk, dir := gcStoreOn(t, b, nil)
			ctx := context.Background()
			start := clk.now()
			clk.set(start.Add(-2 * time.Hour)) // uploads happen two hours ago ...
			blobs := map[string]string{}
			for _, name := range []string{"referenced", "replaced", "never-committed", "young", "claimed"} {
				blobs[name] = putBlob(t, s, name+" content")
			}
			commit(t, s, Change{Op: OpPut, Path: "a.txt", Mode: 0o644, Size: int64(len("referenced content")), Hash: blobs["referenced"]})
			commit(t, s, Change{Op: OpPut, Path: "b.txt", Mode: 0o644, Size: int64(len("replaced content")), Hash: blobs["replaced"]})
			commit(t, s, Change{Op: OpDelete, Path: "b.txt"})
			for name, h := range blobs {
				if name != "young" {
					ageBlobOn(t, b, dir, h, 2*time.Hour)
				}
			}
			clk.set(start) // ... and now it is two hours later
			if ok, err := s.ClaimBlob(ctx, blobs["claimed"]); err != nil || !ok {
				t.Fatalf("ClaimBlob = %v, %v", ok, err) // a writer HEADs it before a push
			}
			before := s.Status().BlobBytes

			res, err := s.GC(ctx)
			if err != nil {
				t.Fatal(err)
			}
			freed := int64(len("replaced content") + len("never-committed content"))
			if diff := cmp.Diff(GCResult{Blobs: 5, Removed: 2, Freed: freed}, res); diff != "" {
				t.Errorf("GC (-want +got):\n%s", diff)
			}
			got := map[string]bool{}
			for name, h := range blobs {
				got[name] = hasBlob(t, s, h)
			}
			want := map[string]bool{"referenced": true, "replaced": false, "never-committed": false, "young": true, "claimed": true}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("blobs kept (-want +got):\n%s", diff)
			}
			if got := s.Status().BlobBytes; got != before-freed {
				t.Errorf("BlobBytes = %d after freeing %d of %d", got, freed, before)
			}
			checkReferenced(t, s)

			// Once their grace is over too, the young and the claimed blob go;
			// the referenced one never does.
			ageBlobOn(t, b, dir, blobs["young"], 2*time.Hour)
			clk.set(start.Add(2 * time.Hour))
			if res, err := s.GC(ctx); err != nil || res.Removed != 2 {
				t.Errorf("second GC = %+v, %v; want the young and the claimed blob removed", res, err)
			}
			if !hasBlob(t, s, blobs["referenced"]) {
				t.Error("the referenced blob was removed")
			}
		})
	}
}

// TestGCSparesABlobACommitIsAboutToName runs a collection at the worst
// moment of a commit: its blob checked, its record not yet in the tree.
func TestGCSparesABlobACommitIsAboutToName(t *testing.T) {
	for _, b := range testBackends() {
		t.Run(b.name, func(t *testing.T) {
			s, clk, dir := gcStoreOn(t, b, nil)
			start := clk.now()
			clk.set(start.Add(-2 * time.Hour))
			h := putBlob(t, s, "old content")
			ageBlobOn(t, b, dir, h, 2*time.Hour)
			clk.set(start) // unreferenced, old, its claim expired: a candidate
			var res GCResult
			var gcErr error
			s.testHookCommit = func() {
				s.testHookCommit = nil
				res, gcErr = s.GC(context.Background())
			}
			commit(t, s, Change{Op: OpPut, Path: "reused.txt", Mode: 0o644, Size: int64(len("old content")), Hash: h})
			if gcErr != nil || res.Removed != 0 {
				t.Errorf("GC during the commit = %+v, %v; want nothing removed", res, gcErr)
			}
			checkReferenced(t, s)
		})
	}
}

// TestGCRefusesACommitOfABlobBeingRemoved commits (and uploads) a blob the
// collector has chosen and is removing.
func TestGCRefusesACommitOfABlobBeingRemoved(t *testing.T) {
	for _, b := range testBackends() {
		t.Run(b.name, func(t *testing.T) {
			s, clk, dir := gcStoreOn(t, b, nil)
			ctx := context.Background()
			start := clk.now()
			clk.set(start.Add(-2 * time.Hour))
			h := putBlob(t, s, "old content")
			ageBlobOn(t, b, dir, h, 2*time.Hour)
			clk.set(start)
			seq := s.Seq()
			var commitErr, putErr error
			s.testHookGC = func() {
				_, commitErr = s.Commit(ctx, PushRequest{Origin: "test", Changes: []Change{
					{Op: OpPut, Path: "reused.txt", Mode: 0o644, Size: int64(len("old content")), Hash: h, Origin: "test"}}})
				_, putErr = s.PutBlob(ctx, h, strings.NewReader("old content"), int64(len("old content")))
			}
			res, err := s.GC(ctx)
			if err != nil || res.Removed != 1 {
				t.Fatalf("GC = %+v, %v", res, err)
			}
			var rej *RejectError
			if !errors.As(commitErr, &rej) || rej.Rule != RuleBlob {
				t.Errorf("commit during the removal = %v, want a RejectError for rule %s (upload it again)", commitErr, RuleBlob)
			}
			if !errors.Is(putErr, errCollecting) {
				t.Errorf("upload during the removal = %v, want errCollecting (503)", putErr)
			}
			if s.Seq() != seq {
				t.Errorf("log moved from %d to %d", seq, s.Seq())
			}
			checkReferenced(t, s)
			// Afterwards the upload and the commit go through.
			s.testHookGC = nil
			putBlob(t, s, "old content")
			commit(t, s, Change{Op: OpPut, Path: "reused.txt", Mode: 0o644, Size: int64(len("old content")), Hash: h})
			checkReferenced(t, s)
		})
	}
}

// TestGCUnderConcurrentPushes collects without a pause while writers
// upload and push through the API, reusing old contents (the agent's HEAD
// then commit) and replacing files (so that there is garbage). Every push
// must land, and every file of the tree must keep its blob.
func TestGCUnderConcurrentPushes(t *testing.T) {
	ts := startServer(t, t.TempDir(), "", func(c *Config) { c.GCGrace = 100 * time.Millisecond })
	s := ts.srv.Store()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var collected int
	gcDone := make(chan struct{})
	go func() {
		defer close(gcDone)
		for ctx.Err() == nil {
			res, err := s.GC(ctx)
			if err != nil && ctx.Err() == nil {
				t.Errorf("GC: %v", err)
				return
			}
			collected += res.Removed
		}
	}()
	const writers, rounds = 4, 40
	var wg sync.WaitGroup
	final := make([]string, writers)
	for w := range writers {
		wg.Go(func() {
			id := fmt.Sprintf("node-%d", w+1)
			c := NewClient(ts.url, testToken(id), nil)
			p := fmt.Sprintf("w%d/file.txt", w)
			for i := range rounds {
				content := fmt.Sprintf("writer %d round %d", w, i%7) // contents come back
				h := hashBytes([]byte(content))
				for attempt := 0; ; attempt++ {
					if attempt == 50 {
						t.Errorf("%s: round %d never landed", id, i)
						return
					}
					time.Sleep(time.Duration(attempt) * 2 * time.Millisecond) // the agent's backoff, shortened
					// Like the agent: HEAD, and upload only what is missing.
					if ok, err := c.HasBlob(ctx, h); err != nil || !ok {
						if err := c.PutBlob(ctx, h, strings.NewReader(content), int64(len(content))); err != nil {
							continue // 503 while it is being removed
						}
					}
					_, err := c.Push(ctx, PushRequest{Origin: id, Changes: []Change{{Op: OpPut, Path: p, Mode: 0o644, Size: int64(len(content)), Hash: h}}})
					var rej *RejectError
					if errors.As(err, &rej) && rej.Rule == RuleBlob {
						continue // removed between HEAD and push: upload again
					}
					if err != nil {
						t.Errorf("%s: push: %v", id, err)
						return
					}
					break
				}
				final[w] = content
			}
		})
	}
	wg.Wait()
	cancel()
	<-gcDone
	checkReferenced(t, s)
	for w, content := range final {
		e, ok := s.Lookup(fmt.Sprintf("w%d/file.txt", w))
		if !ok || e.Hash != hashBytes([]byte(content)) {
			t.Errorf("w%d/file.txt = %+v, want the content of the last push", w, e)
		}
	}
	t.Logf("%d blobs collected while %d writers pushed %d times each", collected, writers, rounds)
}

func TestQuota(t *testing.T) {
	s, clk, dir := gcStore(t, func(c *Config) { c.Rules.MaxFileSize, c.MaxRequestSize, c.QuotaBytes = 1000, 1000, 2000 })
	ctx := context.Background()
	a := putBlob(t, s, strings.Repeat("a", 1000))
	commit(t, s, Change{Op: OpPut, Path: "a.txt", Mode: 0o644, Size: 1000, Hash: a})
	b := putBlob(t, s, strings.Repeat("b", 900))
	commit(t, s, Change{Op: OpPut, Path: "b.txt", Mode: 0o644, Size: 900, Hash: b})

	over := strings.Repeat("c", 101)
	if _, err := s.PutBlob(ctx, hashBytes([]byte(over)), strings.NewReader(over), int64(len(over))); !errors.Is(err, ErrQuota) {
		t.Fatalf("PutBlob over the quota = %v, want ErrQuota", err)
	}
	if _, err := s.PutBlob(ctx, hashBytes([]byte("c")), strings.NewReader("c"), -1); !errors.Is(err, ErrQuota) {
		t.Errorf("PutBlob of unknown size (counted as MaxFileSize) = %v, want ErrQuota", err)
	}
	if hasBlob(t, s, hashBytes([]byte(over))) {
		t.Error("a refused blob was stored")
	}
	if tmps := blobTemps(t, dir); len(tmps) != 0 {
		t.Errorf("temporary files left: %v", tmps)
	}
	if _, err := s.PutBlob(ctx, a, strings.NewReader(strings.Repeat("a", 1000)), 1000); err != nil {
		t.Errorf("PutBlob of a stored blob needs no room: %v", err)
	}
	if got := s.Status(); got.BlobBytes != 1900 || got.QuotaBytes != 2000 {
		t.Errorf("Status = %+v, want 1900 of 2000 bytes", got)
	}
	// The used figure survives a restart.
	s.Close()
	s = openTestStore(t, dir, func(c *Config) {
		c.Rules.MaxFileSize, c.MaxRequestSize, c.QuotaBytes, c.GCGrace = 1000, 1000, 2000, time.Hour
	})
	s.now = clk.now
	if got := s.Status().BlobBytes; got != 1900 {
		t.Errorf("BlobBytes after reopening = %d, want 1900", got)
	}
	// Deleting a file and collecting its blob makes room.
	commit(t, s, Change{Op: OpDelete, Path: "b.txt"})
	ageBlob(t, dir, b, 2*time.Hour)
	clk.set(clk.now().Add(2 * time.Hour))
	if res, err := s.GC(ctx); err != nil || res.Freed != 900 {
		t.Fatalf("GC = %+v, %v", res, err)
	}
	putBlob(t, s, over)
}
