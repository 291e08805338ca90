package filesync

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scalepress/scalepress/internal/atomicfile"
	"github.com/scalepress/scalepress/internal/token"
)

// testKey is the files key of every test server; testToken issues tokens
// with it.
var testKey = token.NewKey().Derive(token.Files)

func testToken(id string) string { return testKey.Issue(id) }

// testWriter is the identity raw test requests (httpClient) use.
const testWriter = "node-evil"

// httpClient sends raw requests as testWriter, unless a request carries
// its own Authorization.
var httpClient = &http.Client{Timeout: 10 * time.Second, Transport: authTransport{testToken(testWriter)}}

type authTransport struct{ tok string }

func (t authTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if _, ok := r.Header["Authorization"]; !ok {
		r = r.Clone(r.Context())
		token.SetBearer(r.Header, t.tok)
	}
	return http.DefaultTransport.RoundTrip(r)
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() && os.Getenv("FILESYNC_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// testServer is a files role serving on a loopback port.
type testServer struct {
	srv  *Server
	url  string
	addr string
	done chan error
	stop context.CancelFunc
}

func testConfig(dir string) Config {
	cfg := DefaultConfig()
	cfg.Dir = dir
	cfg.Addr = "127.0.0.1:0"
	cfg.Key = testKey
	cfg.Heartbeat = time.Second
	return cfg
}

// startServer starts a server on dir, listening on addr ("" for a free
// port); mutate may change its config.
func startServer(t testing.TB, dir, addr string, mutate func(*Config)) *testServer {
	t.Helper()
	cfg := testConfig(dir)
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := NewServer(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{srv: srv, url: "http://" + ln.Addr().String(), addr: ln.Addr().String(), done: make(chan error, 1), stop: cancel}
	go func() { ts.done <- srv.Serve(ctx, ln) }()
	t.Cleanup(ts.kill)
	return ts
}

// kill closes the server at once and waits for Serve to return.
func (ts *testServer) kill() {
	ts.srv.Close()
	ts.stop()
	<-ts.done
	ts.done <- nil // let a second kill return
}

// testAgent is an agent with its own docroot and state directory.
type testAgent struct {
	t       testing.TB
	a       *Agent
	cfg     AgentConfig
	docroot string
	cancel  context.CancelFunc
	done    chan error
}

func newTestAgent(t testing.TB, url, base, name string) *testAgent {
	t.Helper()
	cfg := DefaultAgentConfig()
	cfg.Server = url
	cfg.NodeID = name
	cfg.Token = testToken(name)
	cfg.Docroot = filepath.Join(base, name, "docroot")
	cfg.StateDir = filepath.Join(base, name, "state")
	cfg.RetryMax = 200 * time.Millisecond
	ta := &testAgent{t: t, cfg: cfg, docroot: cfg.Docroot}
	ta.open()
	t.Cleanup(ta.stop)
	return ta
}

func (ta *testAgent) open() {
	ta.t.Helper()
	a, err := NewAgent(ta.cfg, testLogger(ta.t))
	if err != nil {
		ta.t.Fatal(err)
	}
	ta.a = a
}

func (ta *testAgent) bootstrap() {
	ta.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ta.a.Bootstrap(ctx); err != nil {
		ta.t.Fatal(err)
	}
}

func (ta *testAgent) start() {
	ctx, cancel := context.WithCancel(context.Background())
	ta.cancel, ta.done = cancel, make(chan error, 1)
	go func() { ta.done <- ta.a.Run(ctx) }()
}

// stop ends Run and closes the agent.
func (ta *testAgent) stop() {
	if ta.a == nil {
		return
	}
	if ta.cancel != nil {
		ta.cancel()
		if err := <-ta.done; err != nil {
			ta.t.Errorf("%s: Run: %v", ta.cfg.NodeID, err)
		}
		ta.cancel = nil
	}
	ta.a.Close()
	ta.a = nil
}

// restart stops the agent and opens it again from its state directory.
func (ta *testAgent) restart() {
	ta.stop()
	ta.open()
}

func (ta *testAgent) path(p string) string {
	return filepath.Join(ta.docroot, filepath.FromSlash(p))
}

func (ta *testAgent) write(p, content string) {
	ta.t.Helper()
	writeFile(ta.t, ta.path(p), content)
}

func writeFile(t testing.TB, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (ta *testAgent) read(p string) (string, bool) {
	data, err := os.ReadFile(ta.path(p))
	return string(data), err == nil
}

// waitFor polls cond (integration tests only: real file events and
// sockets) until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (ta *testAgent) waitContent(p, want string) {
	ta.t.Helper()
	waitFor(ta.t, 10*time.Second, fmt.Sprintf("%s to hold %q in %s", p, want, ta.cfg.NodeID), func() bool {
		got, ok := ta.read(p)
		return ok && got == want
	})
}

func (ta *testAgent) waitGone(p string) {
	ta.t.Helper()
	waitFor(ta.t, 10*time.Second, fmt.Sprintf("%s to disappear from %s", p, ta.cfg.NodeID), func() bool {
		_, err := os.Lstat(ta.path(p))
		return errors.Is(err, fs.ErrNotExist)
	})
}

func (ta *testAgent) waitApplied(seq uint64) {
	ta.t.Helper()
	waitFor(ta.t, 10*time.Second, fmt.Sprintf("%s to apply seq %d", ta.cfg.NodeID, seq), func() bool {
		return ta.a.AppliedSeq() >= seq
	})
}

// treeOf describes every non-ignored path of a docroot: type, mode, and
// for files the hash of the content and the mtime.
func treeOf(t testing.TB, root string) map[string]string {
	t.Helper()
	rules, err := compileRules(DefaultRules())
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]string)
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		if rules.ignored(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			out[rel] = fmt.Sprintf("dir %o", fi.Mode().Perm())
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		out[rel] = fmt.Sprintf("file %o %s %d", fi.Mode().Perm(), hex.EncodeToString(sum[:8]), fi.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func pushJSON(t testing.TB, url, body string) (int, apiError) {
	t.Helper()
	resp, err := httpClient.Post(url+"/v1/changes", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e apiError
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		if err := json.Unmarshal(data, &e); err != nil {
			t.Fatalf("error body %q: %v", data, err)
		}
	}
	return resp.StatusCode, e
}

// blobTemps lists the temporary files left in a store's blob directory.
func blobTemps(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(filepath.Join(dir, "blobs"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && atomicfile.IsTemp(d.Name()) {
			out = append(out, p)
		}
		return nil
	})
	return out
}
