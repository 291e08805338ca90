package edge

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/scalepress/scalepress/internal/api"
)

func TestUploadFallbackToFiles(t *testing.T) {
	// The node has not applied the upload yet: 404 for every upload.
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/_scalepress/") {
			io.WriteString(w, "ok")
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(node.Close)
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer edge-1.tok" { // the files API refuses callers without a token
			http.Error(w, "401", http.StatusUnauthorized)
			return
		}
		if r.URL.Path != "/v1/files/wp-content/uploads/2026/11/a.jpg" && !strings.HasPrefix(r.URL.Path, "/v1/files/wp-content/uploads/denied/") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "image/jpeg")
		w.Header().Set("Filesync-Seq", "7")
		io.WriteString(w, "from-files")
	}))
	t.Cleanup(files.Close)

	type fallbackCase struct {
		name     string
		cache    bool
		path     string
		wantCode int
		wantBody string
		// wantFallbacks is the edge's fallback counter after two GETs.
		wantFallbacks int
	}
	tests := []fallbackCase{
		{"cached upload", true, "/wp-content/uploads/2026/11/a.jpg", 200, "from-files", 1},
		{"bypass upload", false, "/wp-content/uploads/2026/11/a.jpg", 200, "from-files", 2},
		{"upload files lacks too", true, "/wp-content/uploads/2026/11/b.jpg", 404, "", 0},
		{"not an upload", false, "/wp-content/themes/x.css", 404, "", 0},
	}
	// Names no node serves are not looked for at the files role, which has them.
	for _, name := range []string{"x.sql", "x.log", ".htaccess", "x.phtml", "wp-config.php~", "x.php.bak", "X.PHP"} {
		tests = append(tests, fallbackCase{"denied " + name, false, "/wp-content/uploads/denied/" + name, 404, "", 0},
			fallbackCase{"denied cached " + name, true, "/wp-content/uploads/denied/" + name, 404, "", 0})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := api.EdgeSpec{ID: "edge-1", Region: "default", Addr: "127.0.0.1:0", Files: strings.TrimPrefix(files.URL, "http://"), FilesToken: "edge-1.tok",
				Cache: &api.CacheSpec{Enabled: tt.cache}}
			s := newEdgeSpec(t, spec, node)
			for i := range 2 { // the second is a cache hit when caching is on
				resp, body := get(t, s.URL+tt.path, "site.test")
				if tt.cache && tt.wantCode == 200 && i == 1 && resp.Header.Get(api.HeaderCache) != "HIT" {
					t.Errorf("second GET %s: X-Cache %q, want HIT (the files answer is cached)", tt.path, resp.Header.Get(api.HeaderCache))
				}
				if resp.StatusCode != tt.wantCode {
					t.Fatalf("GET %s: status %d, want %d", tt.path, resp.StatusCode, tt.wantCode)
				}
				if tt.wantBody != "" && body != tt.wantBody {
					t.Errorf("GET %s: body %q, want %q", tt.path, body, tt.wantBody)
				}
				if resp.Header.Get("Filesync-Seq") != "" {
					t.Error("internal Filesync-Seq header reached the client")
				}
			}
			_, metrics := get(t, s.URL+api.EdgePathMetrics, "")
			want := fmt.Sprintf("scalepress_edge_upload_fallbacks_total{edge=\"edge-1\"} %d\n", tt.wantFallbacks)
			if !strings.Contains(metrics, want) {
				t.Errorf("metrics lack %q:\n%s", want, metrics)
			}
		})
	}
}
