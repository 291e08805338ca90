package filesync

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/scalepress/scalepress/internal/s3store"
	"github.com/scalepress/scalepress/test/tools"
)

// backend is a storage backend the store's behaviour tests run on.
type backend struct {
	name string
	// s3 returns the bucket configuration of the store kept at dir (nil
	// for the local backend); the same dir gives the same prefix, so that
	// reopening dir is a restart.
	s3 func(t testing.TB, dir string) *s3store.Config
	// blobFile is the local file that holds a blob of the store at dir.
	blobFile func(t testing.TB, dir, hash string) string
}

// testBackends are the local directory and S3 (a versitygw started for the
// test when first used).
func testBackends() []backend {
	var once sync.Once
	var gw *tools.Versitygw
	return []backend{
		{name: "local", s3: func(testing.TB, string) *s3store.Config { return nil },
			blobFile: func(_ testing.TB, dir, hash string) string { return filepath.Join(dir, "blobs", hash[:2], hash) }},
		{name: "s3", s3: func(t testing.TB, dir string) *s3store.Config {
			once.Do(func() {
				gw = tools.StartVersitygw(t, "127.0.0.1:0")
				gw.MakeBucket(t, "files")
			})
			cfg := s3store.DefaultConfig()
			cfg.Endpoint, cfg.Bucket, cfg.AccessKey, cfg.SecretKey = gw.Endpoint, "files", gw.AccessKey, gw.SecretKey
			cfg.Prefix = strings.TrimPrefix(filepath.ToSlash(dir), "/")
			return &cfg
		}, blobFile: func(t testing.TB, dir, hash string) string {
			// versitygw's posix backend: DATA/BUCKET/KEY.
			return filepath.Join(gw.Data, "files", filepath.FromSlash(strings.TrimPrefix(dir, "/")), "blobs", hash[:2], hash)
		}},
	}
}

// openStoreOn opens a store on backend b for dir.
func openStoreOn(t testing.TB, b backend, dir string, mutate func(*Config)) *Store {
	t.Helper()
	cfg := testConfig(dir)
	cfg.S3 = b.s3(t, dir)
	if mutate != nil {
		mutate(&cfg)
	}
	blobs, objs, err := openBackends(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	s, err := OpenStore(context.Background(), cfg, blobs, objs, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestS3RestartFromAnEmptyDir: a files role started with an empty local
// directory on the same bucket resumes the log (latest snapshot and the
// appends after it) and serves the same sequence numbers and blobs.
func TestS3RestartFromAnEmptyDir(t *testing.T) {
	b := testBackends()[1]
	dir := t.TempDir()
	s3cfg := b.s3(t, dir)
	withS3 := func(c *Config) { c.S3 = s3cfg; c.SnapshotEvery = 4 }
	ts := startServer(t, filepath.Join(t.TempDir(), "first"), "", withS3)
	c := NewClient(ts.url, testToken("node-1"), nil)
	ctx := context.Background()
	for i := range 6 {
		content := strings.Repeat("z", i+1)
		h := hashBytes([]byte(content))
		if err := c.PutBlob(ctx, h, strings.NewReader(content), int64(len(content))); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Push(ctx, PushRequest{Origin: "node-1", Changes: []Change{
			{Op: OpPut, Path: "up/f" + string(rune('a'+i)), Mode: 0o644, Size: int64(len(content)), Hash: h, MTime: 1e18, Origin: "node-1"},
		}}); err != nil {
			t.Fatal(err)
		}
	}
	want, err := c.Manifest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ts.kill()

	ts2 := startServer(t, filepath.Join(t.TempDir(), "second"), "", withS3)
	c2 := NewClient(ts2.url, testToken("node-1"), nil)
	got, err := c2.Manifest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("manifest after a restart from an empty dir (-before +after):\n%s", diff)
	}
	if st := ts2.srv.store.Status(); st.Seq != 6 || st.SnapshotSeq != 4 {
		t.Errorf("status after restart = seq %d, snapshot %d; want 6 and 4", st.Seq, st.SnapshotSeq)
	}
	old, err := c2.ManifestAt(ctx, 2)
	if err != nil || len(old.Entries) != 3 { // up, fa, fb
		t.Errorf("manifest at 2 after restart = %+v, %v; want 3 entries", old, err)
	}
	for _, e := range got.Entries {
		if e.Dir {
			continue
		}
		var buf strings.Builder
		if _, err := c2.GetBlob(ctx, e.Hash, &buf); err != nil {
			t.Fatalf("blob of %s: %v", e.Path, err)
		}
		if data := buf.String(); hashBytes([]byte(data)) != e.Hash {
			t.Errorf("blob of %s reads back %q", e.Path, data)
		}
	}
	// The log goes on at the next number.
	resp, err := c2.Push(ctx, PushRequest{Origin: "node-1", Changes: []Change{{Op: OpMkdir, Path: "later", Mode: 0o755, Origin: "node-1"}}})
	if err != nil || resp.Seq != 7 {
		t.Fatalf("push after restart = %+v, %v; want seq 7", resp, err)
	}
}

// TestS3Fencing: two stores on one bucket and prefix. Both opened at the
// same point; the first to append wins, the other's append fails on the
// conditional create and it refuses every later write (ErrFenced, 503,
// /healthz 503) instead of forking the log. Restarted, it follows the
// winner's log.
func TestS3Fencing(t *testing.T) {
	b := testBackends()[1]
	key := t.TempDir()
	s3cfg := b.s3(t, key)
	withS3 := func(c *Config) { c.S3 = s3cfg }
	winner := startServer(t, t.TempDir(), "", withS3)
	loser := startServer(t, t.TempDir(), "", withS3)
	ctx := context.Background()
	mkdir := func(ts *testServer, p string) (PushResponse, error) {
		return NewClient(ts.url, testToken("node-1"), nil).Push(ctx, PushRequest{Origin: "node-1",
			Changes: []Change{{Op: OpMkdir, Path: p, Mode: 0o755, Origin: "node-1"}}})
	}
	if resp, err := mkdir(winner, "a"); err != nil || resp.Seq != 1 {
		t.Fatalf("winner's push = %+v, %v", resp, err)
	}
	_, err := mkdir(loser, "b")
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "another files role") {
		t.Fatalf("loser's push = %v, want a 503 saying another files role writes", err)
	}
	if !errors.Is(loser.srv.store.Fenced(), ErrFenced) {
		t.Errorf("loser's Fenced() = %v, want ErrFenced", loser.srv.store.Fenced())
	}
	if st := loser.srv.store.Status(); st.Fenced == "" || st.Seq != 0 {
		t.Errorf("loser's status = %+v, want fenced at seq 0", st)
	}
	resp, err := http.Get(loser.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("loser's /healthz = %d, want 503", resp.StatusCode)
	}
	// Fenced for good: a later push (which would now find its number free)
	// is refused too.
	if _, err := mkdir(loser, "c"); err == nil {
		t.Error("a later push to the fenced store was accepted")
	}
	if resp, err := mkdir(winner, "d"); err != nil || resp.Seq != 2 {
		t.Fatalf("winner's second push = %+v, %v", resp, err)
	}
	loser.kill()
	again := startServer(t, t.TempDir(), "", withS3)
	if got := again.srv.store.Seq(); got != 2 {
		t.Errorf("a restarted loser resumes at seq %d, want 2 (the winner's log)", got)
	}
	var paths []string
	for _, e := range again.srv.store.Manifest().Entries {
		paths = append(paths, e.Path)
	}
	if diff := cmp.Diff([]string{"a", "d"}, paths); diff != "" {
		t.Errorf("paths after the restart (-want +got):\n%s", diff)
	}
}

// TestS3LostAnswer: the gateway stores an append but its answer is lost;
// the client's retry finds the object there with the same bytes, which is
// the append done, not a fence.
func TestS3LostAnswer(t *testing.T) {
	b := testBackends()[1]
	dir := t.TempDir()
	s3cfg := b.s3(t, dir)
	target, _ := url.Parse(s3cfg.Endpoint)
	var drop atomic.Int32
	drop.Store(1)
	proxy := httputil.NewSingleHostReverseProxy(target)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/log/") && drop.Add(-1) == 0 {
			rec := &discardWriter{h: http.Header{}}
			proxy.ServeHTTP(rec, r)     // stored upstream...
			panic(http.ErrAbortHandler) // ...and the connection cut before the answer
		}
		proxy.ServeHTTP(w, r)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	s3cfg.Endpoint = "http://" + ln.Addr().String()
	s := openStoreOn(t, backend{name: "s3", s3: func(testing.TB, string) *s3store.Config { return s3cfg }}, dir, nil)
	resp := commit(t, s, Change{Op: OpMkdir, Path: "a", Mode: 0o755})
	if resp.Seq != 1 {
		t.Fatalf("commit = %+v, want seq 1", resp)
	}
	if err := s.Fenced(); err != nil {
		t.Fatalf("fenced by its own retried append: %v", err)
	}
	if resp := commit(t, s, Change{Op: OpMkdir, Path: "b", Mode: 0o755}); resp.Seq != 2 {
		t.Fatalf("next commit = %+v, want seq 2", resp)
	}
}

type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}

// TestS3BlobContentIsVerified: content that does not hash to its name is
// not stored, whether its length is announced (streamed, checked by the
// server and held back by verifyReader) or not (spooled).
func TestS3BlobContentIsVerified(t *testing.T) {
	s := openStoreOn(t, testBackends()[1], t.TempDir(), nil)
	ctx := context.Background()
	h := hashBytes([]byte("the real content"))
	for _, size := range []int64{int64(len("forged content!!")), -1} {
		_, err := s.PutBlob(ctx, h, strings.NewReader("forged content!!"), size)
		var rej *RejectError
		if !errors.As(err, &rej) || rej.Rule != RuleHash {
			t.Errorf("PutBlob(size %d) of content that hashes otherwise = %v, want a hash rejection", size, err)
		}
		if ok, err := s.HasBlob(ctx, h); ok || err != nil {
			t.Errorf("after a refused upload (size %d) HasBlob = %v, %v; want false", size, ok, err)
		}
	}
	if _, err := s.PutBlob(ctx, h, strings.NewReader("the real content"), -1); err != nil {
		t.Fatalf("PutBlob of the right content, unknown length: %v", err)
	}
	if ok, _ := s.HasBlob(ctx, h); !ok {
		t.Error("the right content was not stored")
	}
}

// TestVerifyReaderHoldsBackTheEnd: a server that does not check the
// payload hash still gets an incomplete body when the content is wrong.
func TestVerifyReaderHoldsBackTheEnd(t *testing.T) {
	body := "forged content, 32 bytes long..."
	vr := &verifyReader{r: strings.NewReader(body), h: sha256.New(), left: int64(len(body)), want: hashBytes([]byte("other"))}
	got, err := io.ReadAll(iotestHalf{vr})
	if !errors.Is(err, ErrHashMismatch) {
		t.Errorf("reading a mismatching body ends with %v, want ErrHashMismatch", err)
	}
	if len(got) >= len(body) {
		t.Errorf("%d of %d bytes were handed over, want fewer", len(got), len(body))
	}
	vr = &verifyReader{r: strings.NewReader(body), h: sha256.New(), left: int64(len(body)), want: hashBytes([]byte(body))}
	if got, err := io.ReadAll(iotestHalf{vr}); err != nil || string(got) != body {
		t.Errorf("reading a matching body = %q, %v", got, err)
	}
}

// iotestHalf reads at most half of what is asked at a time.
type iotestHalf struct{ r io.Reader }

func (h iotestHalf) Read(p []byte) (int, error) { return h.r.Read(p[:(len(p)+1)/2]) }

// TestS3OpenErrors: an unreachable endpoint, a missing bucket and refused
// credentials each fail the start with an error that names them.
func TestS3OpenErrors(t *testing.T) {
	b := testBackends()[1]
	good := *b.s3(t, t.TempDir())
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()
	tests := []struct {
		name   string
		mutate func(*s3store.Config)
		want   []string
	}{
		{"unreachable endpoint", func(c *s3store.Config) { c.Endpoint = "http://" + closedAddr }, []string{"http://" + closedAddr, "unreachable"}},
		{"missing bucket", func(c *s3store.Config) { c.Bucket = "nosuchbucket" }, []string{`"nosuchbucket"`, "does not exist"}},
		{"wrong secret", func(c *s3store.Config) { c.SecretKey = "wrong" }, []string{"credentials"}},
		{"unknown access key", func(c *s3store.Config) { c.AccessKey = "nobody" }, []string{"credentials"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t.TempDir())
			s3cfg := good
			tt.mutate(&s3cfg)
			cfg.S3 = &s3cfg
			_, err := NewServer(cfg, testLogger(t))
			if err == nil {
				t.Fatal("NewServer succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}
