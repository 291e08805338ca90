package edge

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/scalepress/scalepress/internal/api"
)

// discardWriter is a minimal ResponseWriter, so the benchmark measures the
// edge and not a recorder.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}

// BenchmarkProxyHop is one proxied request: pick, round trip to a node on
// loopback (keep-alive), copy of a 7 KB answer.
func BenchmarkProxyHop(b *testing.B) {
	body := strings.Repeat("x", 7000)
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css")
		io.WriteString(w, body)
	}))
	defer node.Close()
	e, err := New(api.EdgeSpec{ID: "edge-1", Addr: "127.0.0.1:0", Cache: &api.CacheSpec{Enabled: false}}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	e.SetUpstreams([]api.Upstream{{ID: "node-1", Addr: strings.TrimPrefix(node.URL, "http://")}})
	req := httptest.NewRequest("GET", "http://site.test/wp-includes/x.css", nil)
	req.RemoteAddr = "127.0.0.1:5555"
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		e.ServeHTTP(w, req)
	}
}
