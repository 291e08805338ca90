package node

import (
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/metrics"
	"github.com/scalepress/scalepress/internal/token"
)

// TestMetricsDocumented: a node with files on exposes exactly what
// docs/metrics.md lists for it, and the FastCGI timings land in the
// histograms.
func TestMetricsDocumented(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "files")
	for _, d := range []string{"docroot", "run", "files"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(state, "applied"), []byte("42\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := newAgent(api.NodeSpec{ID: "node-1", Addr: "127.0.0.1:0", Docroot: filepath.Join(dir, "docroot"), RunDir: filepath.Join(dir, "run"),
		PHPChildren: 2, ForwardKey: token.NewKey().Hex(), Files: "127.0.4.1:8080", FilesState: state}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { a.fcgi.Close(); a.root.Close() }()
	a.metrics.observe(2*time.Millisecond, 80*time.Millisecond)

	w := httptest.NewRecorder()
	a.ServeHTTP(w, httptest.NewRequest("GET", "http://127.0.0.1"+api.NodePathMetrics, nil))
	text := w.Body.String()
	for _, want := range []string{
		`scalepress_node_fastcgi_wait_seconds_bucket{node="node-1",le="0.005"} 1`,
		`scalepress_node_fastcgi_wait_seconds_bucket{node="node-1",le="0.001"} 0`,
		`scalepress_node_php_duration_seconds_bucket{node="node-1",le="0.1"} 1`,
		`scalepress_node_php_duration_seconds_bucket{node="node-1",le="0.05"} 0`,
		`scalepress_node_files_applied_seq{node="node-1"} 42`,
		`scalepress_node_gate_waits_total{node="node-1"} 0`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
	doc, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	docs, err := metrics.Documented(doc, "node")
	if err != nil {
		t.Fatal(err)
	}
	exposed, err := metrics.Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if p := metrics.Check(exposed, docs); len(p) > 0 {
		t.Errorf("docs/metrics.md and the node disagree:\n%s", strings.Join(p, "\n"))
	}
}
