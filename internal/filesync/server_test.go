package filesync

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scalepress/scalepress/internal/token"
)

func blobCount(t *testing.T, dir string) int {
	t.Helper()
	b, err := NewDirBlobStore(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	b.List(context.Background(), func(BlobInfo) error { n++; return nil })
	return n
}

func TestMaliciousPushesAreRejected(t *testing.T) {
	dir := t.TempDir()
	ts := startServer(t, dir, "", func(c *Config) { c.Rules.MaxFileSize = 1 << 10; c.MaxRequestSize = 4 << 10; c.Rules.MaxDepth = 4 })
	hash := strings.Repeat("ab", 32)
	change := func(p string) string {
		q, _ := json.Marshal(p)
		return fmt.Sprintf(`{"origin":"node-evil","changes":[{"op":"put","path":%s,"mode":420,"size":1,"hash":%q}]}`, q, hash)
	}
	tests := []struct {
		name     string
		body     string
		wantCode int
		wantRule string
		wantPath string
	}{
		{"dot-dot", change("../x"), 400, RuleDotDot, "../x"},
		{"dot-dot inside", change("a/../../x"), 400, RuleDotDot, "a/../../x"},
		{"absolute", change("/etc/passwd"), 400, RuleAbsolute, "/etc/passwd"},
		{"NUL", change("a\x00b"), 400, RuleNUL, "a\x00b"},
		{"backslash", change(`a\..\x`), 400, RuleBackslash, `a\..\x`},
		{"empty segment", change("a//b"), 400, RuleEmptySegment, "a//b"},
		{"trailing slash", change("a/"), 400, RuleEmptySegment, "a/"},
		{"dot segment", change("./a"), 400, RuleDotSegment, "./a"},
		{"too long", change(strings.Repeat("a", MaxPathLen+1)), 400, RuleTooLong, strings.Repeat("a", MaxPathLen+1)},
		{"too deep", change("a/b/c/d/e"), 400, RuleTooDeep, "a/b/c/d/e"},
		{"excluded", change("wp-config.php"), 400, RuleExcluded, "wp-config.php"},
		{"excluded below", change("wp-content/cache/x.html"), 400, RuleExcluded, "wp-content/cache/x.html"},
		{"agent temp name", change("a/.filesync-123.tmp"), 400, RuleReserved, "a/.filesync-123.tmp"},
		{"symlink", fmt.Sprintf(`{"origin":"node-evil","changes":[{"op":"put","path":"link","mode":%d,"size":1,"hash":%q}]}`, uint32(fs.ModeSymlink|0o777), hash), 400, RuleSymlink, "link"},
		{"setuid", fmt.Sprintf(`{"origin":"node-evil","changes":[{"op":"put","path":"x","mode":%d,"size":1,"hash":%q}]}`, 0o4755, hash), 400, RuleMode, "x"},
		{"oversized file", fmt.Sprintf(`{"origin":"node-evil","changes":[{"op":"put","path":"big","mode":420,"size":2048,"hash":%q}]}`, hash), 413, RuleTooLarge, "big"},
		{"oversized push", fmt.Sprintf(`{"origin":"node-evil","changes":[%s]}`, strings.Repeat(fmt.Sprintf(`{"op":"put","path":"f","mode":420,"size":1000,"hash":%q},`, hash), 5)+fmt.Sprintf(`{"op":"put","path":"g","mode":420,"size":1000,"hash":%q}`, hash)), 413, RuleRequestTooLarge, "f"},
		{"blob not uploaded", change("ok.txt"), 400, RuleBlob, "ok.txt"},
		{"bad hash", `{"origin":"node-evil","changes":[{"op":"put","path":"x","size":1,"hash":"../../etc"}]}`, 400, RuleHash, "x"},
		{"unknown op", `{"origin":"node-evil","changes":[{"op":"chown","path":"x"}]}`, 400, RuleMalformedRequest, ""},
		{"seq set by the client", `{"origin":"node-evil","changes":[{"seq":9,"op":"delete","path":"x"}]}`, 400, RuleSeq, "x"},
		{"foreign origin", `{"origin":"node-evil","changes":[{"op":"delete","path":"x","origin":"other"}]}`, 400, RuleOrigin, "x"},
		{"no origin", `{"changes":[{"op":"delete","path":"x"}]}`, 400, RuleOrigin, ""},
		{"unknown field", `{"origin":"node-evil","changes":[{"op":"delete","path":"x","follow":true}]}`, 400, RuleMalformedRequest, ""},
		{"trailing data", `{"origin":"node-evil","changes":[{"op":"delete","path":"x"}]} {}`, 400, RuleMalformedRequest, ""},
		{"not JSON", `delete x`, 400, RuleMalformedRequest, ""},
		{"one bad change fails the push", fmt.Sprintf(`{"origin":"node-evil","changes":[{"op":"mkdir","path":"fine","mode":493},%s]}`, change("../x")[len(`{"origin":"node-evil","changes":[`):len(change("../x"))-2]), 400, RuleDotDot, "../x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, e := pushJSON(t, ts.url, tt.body)
			got := apiError{Path: e.Path, Rule: e.Rule}
			if diff := cmp.Diff(apiError{Path: tt.wantPath, Rule: tt.wantRule}, got); diff != "" || code != tt.wantCode {
				t.Errorf("status %d, want %d; (-want +got):\n%s\nmessage: %s", code, tt.wantCode, diff, e.Error)
			}
			if e.Path != "" && !strings.Contains(e.Error, tt.wantRule) {
				t.Errorf("message %q does not name the rule %s", e.Error, tt.wantRule)
			}
		})
	}

	// An oversized blob upload is refused and leaves nothing behind.
	big := strings.Repeat("z", 2048)
	req, _ := http.NewRequest(http.MethodPut, ts.url+"/v1/blobs/"+hashBytes([]byte(big)), strings.NewReader(big))
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized blob: status %d, want 413", resp.StatusCode)
	}
	// So is one with unknown length (chunked), cut at the limit.
	req, _ = http.NewRequest(http.MethodPut, ts.url+"/v1/blobs/"+hashBytes([]byte(big)), io.MultiReader(strings.NewReader(big)))
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err = httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized chunked blob: status %d, want 413", resp.StatusCode)
	}
	// A blob whose content does not match its name is refused.
	req, _ = http.NewRequest(http.MethodPut, ts.url+"/v1/blobs/"+hash, strings.NewReader("not that"))
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err = httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("mismatched blob: status %d, want 400", resp.StatusCode)
	}

	if got := ts.srv.Store().Seq(); got != 0 {
		t.Errorf("log has %d records after only rejected pushes, want 0", got)
	}
	ts.kill()
	if n := blobCount(t, dir); n != 0 {
		t.Errorf("blob store holds %d blobs after only rejected uploads, want 0", n)
	}
	tmps := blobTemps(t, dir)
	if len(tmps) != 0 {
		t.Errorf("temporary files left: %v", tmps)
	}
}

func TestClientAPI(t *testing.T) {
	for _, b := range testBackends() {
		t.Run(b.name, func(t *testing.T) {
			dir := t.TempDir()
			ts := startServer(t, dir, "", func(c *Config) { c.S3 = b.s3(t, dir) })
			ctx := context.Background()
			c := NewClient(ts.url, testToken("node-1"), nil)
			content := "<html>hello</html>"
			h := hashBytes([]byte(content))
			if ok, err := c.HasBlob(ctx, h); err != nil || ok {
				t.Fatalf("HasBlob before upload = %v, %v", ok, err)
			}
			if err := c.PutBlob(ctx, h, strings.NewReader(content), int64(len(content))); err != nil {
				t.Fatal(err)
			}
			if ok, err := c.HasBlob(ctx, h); err != nil || !ok {
				t.Fatalf("HasBlob after upload = %v, %v", ok, err)
			}
			resp, err := c.Push(ctx, PushRequest{Origin: "node-1", Changes: []Change{
				{Op: OpMkdir, Path: "wp-content", Mode: 0o755},
				{Op: OpPut, Path: "wp-content/index.html", Mode: 0o644, Size: int64(len(content)), Hash: h, MTime: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano()},
			}})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(PushResponse{Results: []PushResult{{Seq: 1}, {Seq: 2}}, Seq: 2}, resp); diff != "" {
				t.Errorf("Push (-want +got):\n%s", diff)
			}
			_, err = c.Push(ctx, PushRequest{Origin: "node-1", Changes: []Change{{Op: OpPut, Path: "../x", Size: 1, Hash: h}}})
			var rej *RejectError
			if !errors.As(err, &rej) || rej.Rule != RuleDotDot || rej.Path != "../x" {
				t.Errorf("Push(../x) = %v, want a RejectError for rule %s", err, RuleDotDot)
			}

			m, err := c.Manifest(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if m.Seq != 2 || len(m.Entries) != 2 {
				t.Errorf("Manifest = %+v", m)
			}
			m1, err := c.ManifestAt(ctx, 1)
			if err != nil || m1.Seq != 1 || len(m1.Entries) != 1 {
				t.Errorf("ManifestAt(1) = %+v, %v", m1, err)
			}
			if st, err := c.Status(ctx); err != nil || st.Seq != 2 || st.Files != 1 || st.Dirs != 1 || st.Bytes != int64(len(content)) {
				t.Errorf("Status = %+v, %v", st, err)
			}
			if r, err := c.PathSeq(ctx, "wp-content/index.html"); err != nil || r.Seq != 2 || !r.Exists {
				t.Errorf("PathSeq = %+v, %v", r, err)
			}
			var buf strings.Builder
			if _, err := c.GetBlob(ctx, h, &buf); err != nil || buf.String() != content {
				t.Errorf("GetBlob = %q, %v", buf.String(), err)
			}

			// The stream replays from since and then pushes new commits.
			st, err := c.Stream(ctx, 1, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if st.Head() != 2 {
				t.Errorf("Head() = %d, want 2", st.Head())
			}
			if ch, err := st.Next(); err != nil || ch.Seq != 2 || ch.Origin != "node-1" {
				t.Fatalf("Next() = %+v, %v", ch, err)
			}
			c2 := NewClient(ts.url, testToken("node-2"), nil)
			if _, err := c2.Push(ctx, PushRequest{Origin: "node-2", Changes: []Change{{Op: OpDelete, Path: "wp-content/index.html"}}}); err != nil {
				t.Fatal(err)
			}
			if ch, err := st.Next(); err != nil || ch.Seq != 3 || ch.Op != OpDelete {
				t.Fatalf("Next() after a push = %+v, %v", ch, err)
			}
			if _, err := c.Stream(ctx, 7, time.Second); err == nil || !strings.Contains(err.Error(), ErrFuture.Error()) {
				t.Errorf("Stream(since=7) on a log at 3 = %v, want ErrFuture", err)
			}
		})
	}
}

func TestServeFile(t *testing.T) {
	for _, b := range testBackends() {
		t.Run(b.name, func(t *testing.T) {
			dir := t.TempDir()
			ts := startServer(t, dir, "", func(c *Config) { c.S3 = b.s3(t, dir) })
			s := ts.srv.Store()
			content := "body { color: red; }\n"
			putFile(t, s, "wp-content/themes/t/style.css", content)
			e, _ := s.Lookup("wp-content/themes/t/style.css")
			for _, p := range []string{"wp-content/uploads/x.sql", "wp-config.php~", "wp-content/uploads/x.phtml"} {
				putFile(t, s, p, "secret")
			}
			h := ts.srv.Handler()
			tests := []struct {
				name       string
				path       string
				header     map[string]string
				wantCode   int
				wantBody   string
				wantHeader map[string]string
			}{
				{"whole file", "wp-content/themes/t/style.css", nil, 200, content,
					map[string]string{"Content-Type": "text/css; charset=utf-8", "Etag": `"` + e.Hash + `"`, "Accept-Ranges": "bytes"}},
				{"range", "wp-content/themes/t/style.css", map[string]string{"Range": "bytes=0-3"}, 206, "body",
					map[string]string{"Content-Range": fmt.Sprintf("bytes 0-3/%d", len(content))}},
				{"not modified", "wp-content/themes/t/style.css", map[string]string{"If-None-Match": `"` + e.Hash + `"`}, 304, "", nil},
				{"directory", "wp-content/themes/t", nil, 404, "404 page not found\n", nil},
				{"missing", "nope.css", nil, 404, "404 page not found\n", nil},
				{"escape", "../etc/passwd", nil, 404, "404 page not found\n", nil},
				{"denied dump", "wp-content/uploads/x.sql", nil, 403, "403 forbidden: wp-content/uploads/x.sql is never served\n", nil},
				{"denied backup", "wp-config.php~", nil, 403, "403 forbidden: wp-config.php~ is never served\n", nil},
				{"denied source", "wp-content/uploads/x.phtml", nil, 403, "403 forbidden: wp-content/uploads/x.phtml is never served\n", nil},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					req := httptest.NewRequest(http.MethodGet, "/v1/files/x", nil)
					for k, v := range tt.header {
						req.Header.Set(k, v)
					}
					rec := httptest.NewRecorder()
					ts.srv.ServeFile(rec, req, tt.path)
					if rec.Code != tt.wantCode || rec.Body.String() != tt.wantBody {
						t.Errorf("got %d %q, want %d %q", rec.Code, rec.Body.String(), tt.wantCode, tt.wantBody)
					}
					for k, v := range tt.wantHeader {
						if got := rec.Header().Get(k); got != v {
							t.Errorf("header %s = %q, want %q", k, got, v)
						}
					}
				})
			}
			// The same through the API route (with a token and the server's Host).
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodGet, "/v1/files/wp-content/themes/t/style.css", nil)
			req.Host = "127.0.0.1:0"
			token.SetBearer(req.Header, testToken("edge-1"))
			h.ServeHTTP(rec, req)
			if rec.Code != 200 || rec.Body.String() != content {
				t.Errorf("GET /v1/files/…: %d %q", rec.Code, rec.Body.String())
			}
		})
	}
}

func TestStreamHeartbeatAndClose(t *testing.T) {
	ts := startServer(t, t.TempDir(), "", func(c *Config) { c.Heartbeat = 20 * time.Millisecond })
	resp, err := httpClient.Get(ts.url + "/v1/stream?since=0")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Errorf("Content-Type = %q", ct)
	}
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "\n" {
		t.Fatalf("first line on an idle stream = %q, %v; want a heartbeat", line, err)
	}
	ts.kill()
	if _, err := io.ReadAll(br); err != nil && !strings.Contains(err.Error(), "EOF") && !strings.Contains(err.Error(), "reset") {
		t.Logf("stream after close: %v", err)
	}
}
