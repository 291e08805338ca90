package filesync

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/token"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestRefusals sends requests the files API must refuse: each gets its
// status and a one-line reason naming what was wrong, is logged once with
// the client's address, and leaves the store (log and blobs) as it was.
func TestRefusals(t *testing.T) {
	dir := t.TempDir()
	var logs syncBuffer
	cfg := testConfig(dir)
	cfg.Rules.MaxFileSize, cfg.MaxRequestSize, cfg.QuotaBytes = 1<<10, 1<<10, 2<<10
	srv, err := NewServer(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	url := "http://" + ln.Addr().String()

	// The store holds a.txt (1000 bytes) and an unreferenced blob of 1000
	// bytes: 2000 of its 2048-byte quota.
	node1 := NewClient(url, testToken("node-1"), nil)
	a, spare := strings.Repeat("a", 1000), strings.Repeat("s", 1000)
	for _, b := range []string{a, spare} {
		if err := node1.PutBlob(ctx, hashBytes([]byte(b)), strings.NewReader(b), int64(len(b))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := node1.Push(ctx, PushRequest{Origin: "node-1", Changes: []Change{{Op: OpPut, Path: "a.txt", Mode: 0o644, Size: 1000, Hash: hashBytes([]byte(a))}}}); err != nil {
		t.Fatal(err)
	}
	seq, blobs := srv.Store().Seq(), storedBlobs(t, srv.Store())

	push := func(origin, path string) string {
		return fmt.Sprintf(`{"origin":%q,"changes":[{"op":"put","path":%q,"mode":420,"size":1000,"hash":%q}]}`, origin, path, hashBytes([]byte(spare)))
	}
	small := strings.Repeat("n", 100)
	smallPut := "/v1/blobs/" + hashBytes([]byte(small))
	valid := push("node-1", "wp-content/plugins/x/x.php")
	bare := &http.Client{Timeout: 5 * time.Second} // a stream let through would hang

	tests := []struct {
		name         string
		method, path string
		body         string
		contentType  string
		auth         string // Authorization header; "" for none
		host         string // "" for the server's address
		wantCode     int
		wantReason   string
	}{
		{"no token", "POST", "/v1/changes", valid, "application/json", "", "", 401, "missing bearer token"},
		{"forged token", "POST", "/v1/changes", valid, "application/json", "Bearer node-1.AAAA", "", 401, "bearer token not valid"},
		{"token of another purpose", "POST", "/v1/changes", valid, "application/json", "Bearer " + token.NewKey().Derive(token.Control).Issue("node-1"), "", 401, "bearer token not valid"},
		{"files token of another environment", "POST", "/v1/changes", valid, "application/json", "Bearer " + token.NewKey().Derive(token.Files).Issue("node-1"), "", 401, "bearer token not valid"},
		{"read without a token", "GET", "/v1/manifest", "", "", "", "", 401, "missing bearer token"},
		{"stream without a token", "GET", "/v1/stream?since=0", "", "", "", "", 401, "missing bearer token"},
		{"file without a token", "GET", "/v1/files/a.txt", "", "", "", "", 401, "missing bearer token"},
		{"blob without a token", "PUT", smallPut, small, "application/octet-stream", "", "", 401, "missing bearer token"},
		{"another Host", "POST", "/v1/changes", valid, "application/json", "Bearer " + testToken("node-1"), "attacker.example:8080", 403, `host "attacker.example:8080" is not this server's address`},
		{"another Host reading", "GET", "/v1/manifest", "", "", "Bearer " + testToken("node-1"), "rebind.example", 403, "is not this server's address"},
		{"text/plain change", "POST", "/v1/changes", valid, "text/plain", "Bearer " + testToken("node-1"), "", 415, "Content-Type must be application/json"},
		{"form change", "POST", "/v1/changes", valid, "application/x-www-form-urlencoded", "Bearer " + testToken("node-1"), "", 415, "Content-Type must be application/json"},
		{"untyped blob", "PUT", smallPut, small, "", "Bearer " + testToken("node-1"), "", 415, "Content-Type must be application/octet-stream"},
		{"text/plain blob", "PUT", smallPut, small, "text/plain", "Bearer " + testToken("node-1"), "", 415, "Content-Type must be application/octet-stream"},
		{"origin not the caller", "POST", "/v1/changes", valid, "application/json", "Bearer " + testToken("node-2"), "", 403, `claims origin "node-1" but the caller is "node-2"`},
		{"controller posing as a node", "POST", "/v1/changes", valid, "application/json", "Bearer " + testToken(ControllerID), "", 403, `claims origin "node-1"`},
		{"metrics without a token", "GET", "/metrics", "", "", "", "", 401, "missing bearer token"},
		{"metrics token reading a file", "GET", "/v1/files/a.txt", "", "", "Bearer " + testToken(api.FilesMetricsID), "", 403, `"metrics" may only read /metrics`},
		{"metrics token reading the tree", "GET", "/v1/manifest", "", "", "Bearer " + testToken(api.FilesMetricsID), "", 403, `"metrics" may only read /metrics`},
		{"metrics token following the log", "GET", "/v1/stream?since=0", "", "", "Bearer " + testToken(api.FilesMetricsID), "", 403, `"metrics" may only read /metrics`},
		{"metrics token pushing", "POST", "/v1/changes", push("metrics", "x.php"), "application/json", "Bearer " + testToken(api.FilesMetricsID), "", 403, `"metrics" may only read`},
		{"edge pushing", "POST", "/v1/changes", push("edge-1", "x.php"), "application/json", "Bearer " + testToken("edge-1"), "", 403, `"edge-1" may only read`},
		{"edge uploading", "PUT", smallPut, small, "application/octet-stream", "Bearer " + testToken("edge-1"), "", 403, `"edge-1" may only read`},
		{"over the quota", "PUT", smallPut, small, "application/octet-stream", "Bearer " + testToken("node-1"), "", 507, "over its quota of 2048"},
		{"name over 255 bytes", "POST", "/v1/changes", push("node-1", "wp-content/"+strings.Repeat("n", 256)), "application/json", "Bearer " + testToken("node-1"), "", 400, "segment-too-long"},
		{"path over 4095 bytes", "POST", "/v1/changes", push("node-1", strings.Repeat(strings.Repeat("p", 240)+"/", 16)+strings.Repeat("p", 240)), "application/json", "Bearer " + testToken("node-1"), "", 400, "too-long: the path is 4096 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := strings.Count(logs.String(), "request refused")
			req, err := http.NewRequest(tt.method, url+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			if tt.host != "" {
				req.Host = tt.host
			}
			resp, err := bare.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantCode || !strings.Contains(string(body), tt.wantReason) {
				t.Errorf("%s %s: %d %q, want %d and a reason with %q", tt.method, tt.path, resp.StatusCode, body, tt.wantCode, tt.wantReason)
			}
			if strings.Count(string(body), "\n") != 1 || !strings.HasSuffix(string(body), "\n") {
				t.Errorf("reason %q is not one line", body)
			}
			if tt.wantCode == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			var refused []string
			for _, l := range strings.Split(logs.String(), "\n") {
				if strings.Contains(l, "request refused") {
					refused = append(refused, l)
				}
			}
			if len(refused) != before+1 {
				t.Errorf("logged %d times, want once", len(refused)-before)
			} else if l := refused[before]; !strings.Contains(l, "client=127.0.0.1:") {
				t.Errorf("log line without the client address: %s", l)
			}
			if got := srv.Store().Seq(); got != seq {
				t.Errorf("log moved from seq %d to %d", seq, got)
			}
			if got := storedBlobs(t, srv.Store()); got != blobs {
				t.Errorf("blobs changed from %q to %q", blobs, got)
			}
			if tmps := blobTemps(t, dir); len(tmps) != 0 {
				t.Errorf("temporary files left: %v", tmps)
			}
		})
	}

	// What is allowed still is: the health check without a token, reads
	// with an edge's token, loopback names for the Host, a node's push.
	allowed := []struct {
		name, method, path, auth, host string
		want                           int
	}{
		{"health without a token", "GET", "/healthz", "", "", 200},
		{"edge reads a file", "GET", "/v1/files/a.txt", testToken("edge-1"), "", 200},
		{"edge reads a blob", "HEAD", "/v1/blobs/" + hashBytes([]byte(a)), testToken("edge-1"), "", 200},
		{"localhost", "GET", "/v1/status", testToken("edge-1"), "localhost:" + strings.Split(ln.Addr().String(), ":")[1], 200},
	}
	for _, tt := range allowed {
		req, _ := http.NewRequest(tt.method, url+tt.path, nil)
		if tt.auth != "" {
			token.SetBearer(req.Header, tt.auth)
		}
		if tt.host != "" {
			req.Host = tt.host
		}
		resp, err := bare.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, resp.StatusCode, tt.want)
		}
	}
	if _, err := node1.Push(ctx, PushRequest{Origin: "node-1", Changes: []Change{{Op: OpDelete, Path: "a.txt"}}}); err != nil {
		t.Errorf("a node's own push: %v", err)
	}
}

// storedBlobs lists the hashes of the stored blobs, sorted.
func storedBlobs(t *testing.T, s *Store) string {
	t.Helper()
	var hs []string
	if err := s.blobs.List(context.Background(), func(b BlobInfo) error { hs = append(hs, b.Hash[:8]); return nil }); err != nil {
		t.Fatal(err)
	}
	slices.Sort(hs)
	return strings.Join(hs, ",")
}
