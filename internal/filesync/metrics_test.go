package filesync

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/metrics"
)

// TestMetrics: the metrics token reads the files role's metrics, which are
// what docs/metrics.md lists for it.
func TestMetrics(t *testing.T) {
	srv, err := NewServer(testConfig(t.TempDir()), slog.New(slog.DiscardHandler))
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
	node1 := NewClient(url, testToken("node-1"), nil)
	a := strings.Repeat("a", 100)
	if err := node1.PutBlob(ctx, hashBytes([]byte(a)), strings.NewReader(a), int64(len(a))); err != nil {
		t.Fatal(err)
	}
	if _, err := node1.Push(ctx, PushRequest{Origin: "node-1", Changes: []Change{{Op: OpPut, Path: "a.txt", Mode: 0o644, Size: 100, Hash: hashBytes([]byte(a))}}}); err != nil {
		t.Fatal(err)
	}

	req, _ := http.NewRequest("GET", url+api.FilesPathMetrics, nil)
	req.Header.Set("Authorization", "Bearer "+testToken(api.FilesMetricsID))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", api.FilesPathMetrics, resp.StatusCode, body)
	}
	for _, want := range []string{"scalepress_files_log_seq 1", "scalepress_files_tree_files 1", "scalepress_files_tree_bytes 100", "scalepress_files_fenced 0"} {
		if !strings.Contains(string(body), want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
	doc, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	docs, err := metrics.Documented(doc, "files")
	if err != nil {
		t.Fatal(err)
	}
	exposed, err := metrics.Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	if p := metrics.Check(exposed, docs); len(p) > 0 {
		t.Errorf("docs/metrics.md and the files role disagree:\n%s", strings.Join(p, "\n"))
	}
}
