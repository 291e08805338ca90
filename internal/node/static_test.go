package node

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestStaticETag: a static file carries a strong ETag that answers
// If-None-Match with 304 (RFC 9110 §13.1.2), and a new one once the file
// changes, even with the same size and within the same second.
func TestStaticETag(t *testing.T) {
	dir := t.TempDir()
	css := filepath.Join(dir, "style.css")
	mtime := time.Date(2026, 12, 7, 10, 0, 0, 100, time.UTC)
	write := func(body string, at time.Time) {
		t.Helper()
		if err := os.WriteFile(css, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(css, at, at); err != nil {
			t.Fatal(err)
		}
	}
	write("body{color:red}", mtime)
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	a := &Agent{root: root, logger: slog.New(slog.DiscardHandler)}
	get := func(kv ...string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/style.css", nil)
		for i := 0; i+1 < len(kv); i += 2 {
			r.Header.Set(kv[i], kv[i+1])
		}
		w := httptest.NewRecorder()
		a.serveStatic(w, r, "style.css")
		return w
	}
	type got struct {
		Status int
		Body   string
	}
	first := get()
	etag := first.Header().Get("Etag")
	if !strings.HasPrefix(etag, `"`) || !strings.HasSuffix(etag, `"`) || len(etag) < 4 {
		t.Fatalf("ETag = %q, want a strong entity-tag", etag)
	}
	if diff := cmp.Diff(got{200, "body{color:red}"}, got{first.Code, first.Body.String()}); diff != "" {
		t.Errorf("first GET mismatch (-want +got):\n%s", diff)
	}
	if w := get("If-None-Match", etag); w.Code != http.StatusNotModified {
		t.Errorf("If-None-Match: %s = %d, want 304", etag, w.Code)
	}
	write("body{color:red}", mtime) // rewritten, same content and mtime: same tag
	if w := get("If-None-Match", etag); w.Code != http.StatusNotModified {
		t.Errorf("same content and mtime: If-None-Match = %d, want 304", w.Code)
	}
	write("body{color:blu}", mtime.Add(time.Millisecond)) // same size, same second
	w := get("If-None-Match", etag)
	if diff := cmp.Diff(got{200, "body{color:blu}"}, got{w.Code, w.Body.String()}); diff != "" {
		t.Errorf("after a change mismatch (-want +got):\n%s", diff)
	}
	if w.Header().Get("Etag") == etag {
		t.Errorf("ETag %s unchanged after the file changed", etag)
	}
	head := httptest.NewRequest("HEAD", "/style.css", nil)
	hw := httptest.NewRecorder()
	a.serveStatic(hw, head, "style.css")
	if hw.Header().Get("Etag") != w.Header().Get("Etag") || hw.Body.Len() != 0 {
		t.Errorf("HEAD: ETag %q body %d bytes, want %q and none", hw.Header().Get("Etag"), hw.Body.Len(), w.Header().Get("Etag"))
	}
}
