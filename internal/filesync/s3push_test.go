package filesync

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/scalepress/scalepress/internal/s3store"
)

// s3Counter is a reverse proxy in front of the gateway that counts the
// store's S3 requests by kind and the time they took.
type s3Counter struct {
	mu    sync.Mutex
	n     map[string]int
	spent map[string]time.Duration
	// fail, when set, answers the requests it picks with a 500 after
	// reading their body, instead of passing them on.
	fail func(*http.Request) bool
	// delay is added to every request.
	delay time.Duration
}

// counts returns the requests counted so far, by kind.
func (c *s3Counter) counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.n)
}

// since returns the requests counted after before, by kind.
func (c *s3Counter) since(before map[string]int) map[string]int {
	out := map[string]int{}
	for k, n := range c.counts() {
		if n > before[k] {
			out[k] = n - before[k]
		}
	}
	return out
}

func (c *s3Counter) kind(r *http.Request) string {
	what := "other"
	switch {
	case strings.Contains(r.URL.Path, "/blobs/"):
		what = "blob"
	case strings.Contains(r.URL.Path, "/log/"):
		what = "log"
	case strings.Contains(r.URL.Path, "/snap/"):
		what = "snap"
	}
	return r.Method + " " + what
}

func (c *s3Counter) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for k, n := range c.n {
		out = append(out, fmt.Sprintf("%s: %d (mean %v)", k, n, (c.spent[k]/time.Duration(n)).Round(10*time.Microsecond)))
	}
	slices.Sort(out)
	return strings.Join(out, "; ")
}

// countS3 puts a counting proxy between cfg's client and its gateway.
func countS3(t testing.TB, cfg *s3store.Config) *s3Counter {
	t.Helper()
	target, err := url.Parse(cfg.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	c := &s3Counter{n: map[string]int{}, spent: map[string]time.Duration{}}
	proxy := httputil.NewSingleHostReverseProxy(target)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		c.mu.Lock()
		fail, delay := c.fail, c.delay
		c.mu.Unlock()
		if delay > 0 {
			time.Sleep(delay) // a bucket that far away (a measurement's knob)
		}
		if fail != nil && fail(r) {
			io.Copy(io.Discard, r.Body)
			http.Error(w, "injected failure", http.StatusInternalServerError)
		} else {
			proxy.ServeHTTP(w, r)
		}
		k := c.kind(r)
		c.mu.Lock()
		c.n[k]++
		c.spent[k] += time.Since(start)
		c.mu.Unlock()
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	cfg.Endpoint = "http://" + ln.Addr().String()
	return c
}

// TestS3BurstLatency writes a burst of 500 files of 4 KiB (100 with
// -short) into node-a's docroot, one every 5 ms, with the store in S3
// (versitygw), checks that every one reaches node-b's, and logs the
// latency and the S3 requests the burst cost (measured, not asserted).
// For measurements: S3_BURST_DELAY (a Go duration) delays every S3
// request, as a bucket further away would; S3_BURST_PREFETCH sets node-b's
// Prefetch (0: each blob fetched when its change is applied),
// S3_BURST_UPLOADERS node-a's Uploaders.
func TestS3BurstLatency(t *testing.T) {
	n := 500
	if testing.Short() {
		n = 100
	}
	var delay time.Duration
	if v := os.Getenv("S3_BURST_DELAY"); v != "" {
		var err error
		if delay, err = time.ParseDuration(v); err != nil {
			t.Fatalf("S3_BURST_DELAY=%q: %v", v, err)
		}
	}
	prefetch := DefaultAgentConfig().Prefetch
	if v := os.Getenv("S3_BURST_PREFETCH"); v != "" {
		var err error
		if prefetch, err = strconv.Atoi(v); err != nil {
			t.Fatalf("S3_BURST_PREFETCH=%q: %v", v, err)
		}
	}
	base := t.TempDir()
	var counter *s3Counter
	srv := startServer(t, filepath.Join(base, "files"), "", func(cfg *Config) {
		cfg.S3 = testBackends()[1].s3(t, filepath.Join(base, "files"))
		counter = countS3(t, cfg.S3)
	})
	counter.mu.Lock()
	counter.delay = delay
	counter.mu.Unlock()
	c := &cluster{t: t, base: base, srv: srv}
	a := newTestAgent(t, c.srv.url, c.base, "node-a")
	if v := os.Getenv("S3_BURST_UPLOADERS"); v != "" {
		u, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("S3_BURST_UPLOADERS=%q: %v", v, err)
		}
		a.a.cfg.Uploaders = u
	}
	a.bootstrap()
	a.start()
	b := newTestAgent(t, c.srv.url, c.base, "node-b")
	b.a.cfg.Prefetch = prefetch
	b.bootstrap()
	b.start()
	if err := os.MkdirAll(a.path("burst"), 0o755); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the directory on node-b", func() bool {
		fi, err := os.Stat(b.path("burst"))
		return err == nil && fi.IsDir()
	})
	arrived := arrivals(t, b.path("burst"))
	before := counter.String()
	type write struct {
		name  string
		start time.Time
	}
	writes := make(chan write, n)
	go func() {
		for i := range n {
			data := make([]byte, 4096)
			rand.Read(data)
			name := fmt.Sprintf("f%04d.bin", i)
			start := time.Now()
			if err := os.WriteFile(a.path("burst/"+name), data, 0o644); err != nil {
				t.Error(err)
				return
			}
			writes <- write{name, start}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	started := make(map[string]time.Time, n)
	var seen []arrival
	lat := make([]time.Duration, 0, n)
	timeout := time.After(120 * time.Second)
	for len(lat) < n {
		select {
		case w := <-writes:
			started[w.name] = w.start
		case ar := <-arrived:
			seen = append(seen, ar)
		case <-timeout:
			t.Fatalf("only %d of %d files arrived", len(lat), n)
		}
		kept := seen[:0]
		for _, ar := range seen {
			if st, ok := started[ar.name]; ok {
				lat = append(lat, ar.at.Sub(st))
				delete(started, ar.name)
			} else {
				kept = append(kept, ar)
			}
		}
		seen = kept
	}
	slices.Sort(lat)
	t.Logf("S3 store, %d files of 4 KiB, one every 5 ms: p50 %v, p90 %v, p99 %v, max %v",
		n, percentile(lat, 0.50), percentile(lat, 0.90), percentile(lat, 0.99), lat[len(lat)-1])
	t.Logf("node-b: Prefetch %d, S3 requests delayed %s; blob GETs %d, fetched ahead %d", prefetch, delay, b.a.fetches.Load(), b.a.fetchedAhead.Load())
	waitFor(t, 10*time.Second, "node-a's queue to drain", func() bool { return a.a.Pending() == 0 })
	a.a.pushMu.Lock()
	t.Logf("node-a (Uploaders %d), per change p50/p99: %v", a.a.cfg.Uploaders, a.a.pstats.attrs())
	a.a.pushMu.Unlock()
	t.Logf("S3 requests before the burst: %s", before)
	t.Logf("S3 requests after the burst: %s", counter.String())
}

// countedS3Server starts a files role on S3 with its requests counted.
func countedS3Server(t *testing.T) (*testServer, *s3Counter) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "files")
	var counter *s3Counter
	ts := startServer(t, dir, "", func(cfg *Config) {
		cfg.S3 = testBackends()[1].s3(t, dir)
		counter = countS3(t, cfg.S3)
	})
	return ts, counter
}

// TestS3PushRequests: a push of a new small file costs the blob's PUT and
// the log's PUT, no HEAD ("is it there?") first: the blob's PUT is a
// conditional create that says whether it was there. A large blob (from
// headBeforePut) is asked for first, so that one stored already is not
// sent again. The store asks neither again whether the blob it has just
// stored is there nor how large it is (Commit after PutBlob stored it), and
// a blob stored twice is counted once against the quota.
func TestS3PushRequests(t *testing.T) {
	ts, counter := countedS3Server(t)
	c := NewClient(ts.url, testToken("node-a"), nil)
	ctx := context.Background()
	large := strings.Repeat("L", headBeforePut)
	tests := []struct {
		name, path, content string
		code                int // of the blob's PUT
		want                map[string]int
	}{
		{"new small blob", "wp-content/uploads/a.jpg", "a new blob", http.StatusCreated,
			map[string]int{"PUT blob": 1, "PUT log": 1}},
		{"small blob stored before", "wp-content/uploads/b.jpg", "a new blob", http.StatusOK,
			map[string]int{"PUT blob": 1, "PUT log": 1}},
		{"new large blob", "wp-content/uploads/c.zip", large, http.StatusCreated,
			map[string]int{"HEAD blob": 1, "PUT blob": 1, "PUT log": 1}},
		{"large blob stored before", "wp-content/uploads/d.zip", large, http.StatusOK,
			map[string]int{"HEAD blob": 1, "PUT log": 1}},
	}
	var used int64
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := counter.counts()
			h := hashBytes([]byte(tt.content))
			req, err := http.NewRequest(http.MethodPut, ts.url+"/v1/blobs/"+h, strings.NewReader(tt.content))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+testToken("node-a"))
			req.Header.Set("Content-Type", "application/octet-stream")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.code {
				t.Fatalf("PUT blob = %d, want %d", resp.StatusCode, tt.code)
			}
			if tt.code == http.StatusCreated {
				used += int64(len(tt.content))
			}
			_, err = c.Push(ctx, PushRequest{Origin: "node-a", Changes: []Change{
				{Op: OpPut, Path: tt.path, Hash: h, Size: int64(len(tt.content)), Mode: 0o644, MTime: 1},
			}})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, counter.since(before)); diff != "" {
				t.Errorf("S3 requests (-want +got):\n%s", diff)
			}
			if got := ts.srv.store.Status().BlobBytes; got != used {
				t.Errorf("BlobBytes = %d, want %d", got, used)
			}
		})
	}
}

// TestS3FailedBlobPutAcknowledgesNothing: when the bucket refuses a
// blob's PUT, a push naming the blob is refused (RuleBlob) and nothing
// reaches the log.
func TestS3FailedBlobPutAcknowledgesNothing(t *testing.T) {
	dir := t.TempDir()
	cfg := testBackends()[1].s3(t, dir)
	counter := countS3(t, cfg)
	s := openStoreOn(t, backend{name: "s3", s3: func(testing.TB, string) *s3store.Config { return cfg }}, dir, nil)
	counter.mu.Lock()
	counter.fail = func(r *http.Request) bool {
		return r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/")
	}
	counter.mu.Unlock()
	content := "the bucket refuses this"
	h := hashBytes([]byte(content))
	if _, err := s.PutBlob(context.Background(), h, strings.NewReader(content), int64(len(content))); err == nil {
		t.Fatal("PutBlob succeeded with the bucket refusing it")
	}
	before := counter.counts()
	_, err := s.Commit(context.Background(), PushRequest{Origin: "test", Changes: []Change{
		{Op: OpPut, Path: "wp-content/uploads/a.jpg", Hash: h, Size: int64(len(content)), Mode: 0o644, MTime: 1, Origin: "test"},
	}})
	var rej *RejectError
	if !errors.As(err, &rej) || rej.Rule != RuleBlob {
		t.Fatalf("commit = %v, want a refusal by %s", err, RuleBlob)
	}
	if s.Seq() != 0 || counter.since(before)["PUT log"] != 0 {
		t.Fatalf("the log was written: seq %d, requests %v", s.Seq(), counter.since(before))
	}
}

// TestCommitAfterCollection: a blob the store stored and the collector
// removed since is asked for again at commit, and the push refused.
func TestCommitAfterCollection(t *testing.T) {
	for _, b := range testBackends() {
		t.Run(b.name, func(t *testing.T) {
			s, clk, dir := gcStoreOn(t, b, nil)
			h := putBlob(t, s, "stored, then collected")
			ageBlobOn(t, b, dir, h, 2*time.Hour)
			clk.set(clk.now().Add(2 * time.Hour))
			if res, err := s.GC(context.Background()); err != nil || res.Removed != 1 {
				t.Fatalf("GC = %+v, %v; want the blob removed", res, err)
			}
			_, err := s.Commit(context.Background(), PushRequest{Origin: "test", Changes: []Change{
				{Op: OpPut, Path: "a.txt", Hash: h, Size: int64(len("stored, then collected")), Mode: 0o644, MTime: 1, Origin: "test"},
			}})
			var rej *RejectError
			if !errors.As(err, &rej) || rej.Rule != RuleBlob {
				t.Fatalf("commit = %v, want a refusal by %s", err, RuleBlob)
			}
		})
	}
}

// TestS3SameBlobPushedTwiceAtOnce: two writers upload the same new blob
// and push a path naming it at the same time; both are acknowledged, and
// both paths serve it.
func TestS3SameBlobPushedTwiceAtOnce(t *testing.T) {
	ts, _ := countedS3Server(t)
	content := "uploaded by two nodes at once"
	h := hashBytes([]byte(content))
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, id := range []string{"node-a", "node-b"} {
		wg.Go(func() {
			c := NewClient(ts.url, testToken(id), nil)
			ctx := context.Background()
			if errs[i] = c.PutBlob(ctx, h, strings.NewReader(content), int64(len(content))); errs[i] != nil {
				return
			}
			_, errs[i] = c.Push(ctx, PushRequest{Origin: id, Changes: []Change{
				{Op: OpPut, Path: "wp-content/uploads/" + id + ".txt", Hash: h, Size: int64(len(content)), Mode: 0o644, MTime: 1},
			}})
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	c := NewClient(ts.url, testToken("edge"), nil)
	for _, id := range []string{"node-a", "node-b"} {
		var buf strings.Builder
		if _, err := c.GetBlob(context.Background(), h, &buf); err != nil || buf.String() != content {
			t.Fatalf("blob for %s: %q, %v", id, buf.String(), err)
		}
		if e, ok := ts.srv.store.Lookup("wp-content/uploads/" + id + ".txt"); !ok || e.Hash != h {
			t.Fatalf("path of %s: %+v, %v", id, e, ok)
		}
	}
}

// TestS3BlobDownloadRequests: a node's download of a blob is one GET of
// the bucket (the size comes with it, no HEAD first); a range, a
// conditional request and a missing blob are answered as before.
func TestS3BlobDownloadRequests(t *testing.T) {
	ts, counter := countedS3Server(t)
	ctx := context.Background()
	content := "0123456789 a blob a node downloads"
	h := hashBytes([]byte(content))
	if err := NewClient(ts.url, testToken("node-a"), nil).PutBlob(ctx, h, strings.NewReader(content), int64(len(content))); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		hash     string
		header   http.Header
		code     int
		body     string
		requests map[string]int
	}{
		{"whole", h, nil, http.StatusOK, content, map[string]int{"GET blob": 1}},
		{"range", h, http.Header{"Range": {"bytes=3-5"}}, http.StatusPartialContent, "345", map[string]int{"HEAD blob": 1, "GET blob": 1}},
		{"not modified", h, http.Header{"If-None-Match": {`"` + h + `"`}}, http.StatusNotModified, "", map[string]int{"HEAD blob": 1}},
		{"missing", hashBytes([]byte("never stored")), nil, http.StatusNotFound, "", map[string]int{"GET blob": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, ts.url+"/v1/blobs/"+tt.hash, nil)
			if err != nil {
				t.Fatal(err)
			}
			maps.Copy(req.Header, tt.header)
			req.Header.Set("Authorization", "Bearer "+testToken("edge"))
			before := counter.counts()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.code || resp.StatusCode < 300 && string(body) != tt.body {
				t.Fatalf("GET = %d %q, want %d %q", resp.StatusCode, body, tt.code, tt.body)
			}
			if diff := cmp.Diff(tt.requests, counter.since(before)); diff != "" {
				t.Errorf("S3 requests (-want +got):\n%s", diff)
			}
		})
	}
}
