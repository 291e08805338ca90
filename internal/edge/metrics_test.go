package edge

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/metrics"
)

// scrape reads the edge's metrics as an operator on its host would.
func scrape(t *testing.T, e *Edge) string {
	t.Helper()
	req := httptest.NewRequest("GET", "http://edge.test"+api.EdgePathMetrics, nil)
	req.RemoteAddr = "127.0.0.1:40000"
	w := httptest.NewRecorder()
	e.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", api.EdgePathMetrics, w.Code, w.Body)
	}
	return w.Body.String()
}

// metricsEdge is an edge with the cache and login throttling on (every
// metric the edge has) in front of one node answering cacheable pages.
func metricsEdge(t *testing.T) *Edge {
	t.Helper()
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<html>page</html>")
	}))
	t.Cleanup(node.Close)
	e, err := New(api.EdgeSpec{ID: "edge-1", Addr: "127.0.0.1:0", Cache: &api.CacheSpec{Enabled: true, DefaultTTL: "1h"},
		HTTP: api.HTTPSpec{LoginThrottle: throttleSpec(100, 100)}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	e.SetUpstreams([]api.Upstream{{ID: "node-1", Addr: strings.TrimPrefix(node.URL, "http://")}})
	return e
}

func serve(e *Edge, method, target string, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "http://site.test"+target, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.RemoteAddr = "127.0.0.1:5555"
	w := httptest.NewRecorder()
	e.ServeHTTP(w, req)
	return w
}

// TestMetricsDocumented: every metric docs/metrics.md lists for the edge is
// exposed, with its type and labels, and the edge exposes nothing else.
func TestMetricsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	docs, err := metrics.Documented(doc, "edge")
	if err != nil {
		t.Fatal(err)
	}
	e := metricsEdge(t)
	serve(e, "GET", "/", "")
	exposed, err := metrics.Parse([]byte(scrape(t, e)))
	if err != nil {
		t.Fatal(err)
	}
	if p := metrics.Check(exposed, docs); len(p) > 0 {
		t.Errorf("docs/metrics.md and the edge disagree:\n%s", strings.Join(p, "\n"))
	}
}

// histogramCounts returns, per "cache method" pair, the observations of
// scalepress_edge_request_duration_seconds that are not zero.
func histogramCounts(t *testing.T, e *Edge) map[string]uint64 {
	t.Helper()
	mfs, err := metrics.Gather(e.metrics.reg)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint64{}
	for _, m := range mfs["scalepress_edge_request_duration_seconds"].GetMetric() {
		if n := m.GetHistogram().GetSampleCount(); n > 0 {
			out[label(m, "cache")+" "+label(m, "method")] = n
		}
	}
	return out
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// TestRequestDuration: each site request is counted once under its cache
// status and method; unknown methods share "other"; internal paths are not
// site requests.
func TestRequestDuration(t *testing.T) {
	e := metricsEdge(t)
	serve(e, "GET", "/", "")                // miss
	serve(e, "GET", "/", "")                // hit
	serve(e, "HEAD", "/", "")               // hit
	serve(e, "POST", "/?s=x", "a=b")        // bypass
	serve(e, "PROPFIND", "/x", "")          // bypass, other
	serve(e, "BREW", "/coffee", "")         // bypass, other
	serve(e, "GET", api.EdgePathHealth, "") // internal: not counted
	scrape(t, e)                            // internal: not counted
	want := map[string]uint64{"miss GET": 1, "hit GET": 1, "hit HEAD": 1, "bypass POST": 1, "bypass other": 2}
	if diff := cmp.Diff(want, histogramCounts(t, e)); diff != "" {
		t.Errorf("request duration counts (-want +got):\n%s", diff)
	}
	// Series are bounded: every cache × method pair exists from the start
	// and no request adds one.
	mfs, _ := metrics.Gather(e.metrics.reg)
	if n := len(mfs["scalepress_edge_request_duration_seconds"].GetMetric()); n != len(cacheLabels)*len(methodLabels) {
		t.Errorf("%d histogram series, want %d", n, len(cacheLabels)*len(methodLabels))
	}
}

// TestMetricsOnlyFromLoopback: the edge's metrics are for operators on its
// host (docs/adr/0009-trust-model.md); a site visitor gets 404.
func TestMetricsOnlyFromLoopback(t *testing.T) {
	e := metricsEdge(t)
	for _, tt := range []struct {
		name, remote string
		want         int
	}{
		{"loopback", "127.0.0.1:4000", http.StatusOK},
		{"visitor", "192.0.2.7:4000", http.StatusNotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "http://site.test"+api.EdgePathMetrics, nil)
			req.RemoteAddr = tt.remote
			w := httptest.NewRecorder()
			e.ServeHTTP(w, req)
			if w.Code != tt.want {
				t.Errorf("GET %s from %s: %d, want %d", api.EdgePathMetrics, tt.remote, w.Code, tt.want)
			}
			if tt.want != http.StatusOK && strings.Contains(w.Body.String(), "scalepress_") {
				t.Error("metrics served to a visitor")
			}
		})
	}
}
