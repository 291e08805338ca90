package geodns

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/metrics"
)

// fakeWriter is a dns.ResponseWriter that keeps what is written.
type fakeWriter struct {
	remote net.Addr
	out    []byte
}

var _ dns.ResponseWriter = (*fakeWriter)(nil)

func udpFrom(ip string) *fakeWriter {
	return &fakeWriter{remote: &net.UDPAddr{IP: net.ParseIP(ip), Port: 5353}}
}

func (w *fakeWriter) LocalAddr() net.Addr  { return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53} }
func (w *fakeWriter) RemoteAddr() net.Addr { return w.remote }
func (w *fakeWriter) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	w.out = b
	return err
}
func (w *fakeWriter) Write(b []byte) (int, error) {
	w.out = append(w.out[:0], b...)
	return len(b), nil
}
func (w *fakeWriter) Close() error        { return nil }
func (w *fakeWriter) TsigStatus() error   { return nil }
func (w *fakeWriter) TsigTimersOnly(bool) {}
func (w *fakeWriter) Hijack()             {}

func TestStatsAndMetrics(t *testing.T) {
	s := newTestServer(t, testConfig())
	prober := newFakeProber()
	prober.setRegion(s.cfg, "us", true)
	// Take us down by hand: two failed rounds.
	s.checker.prober = prober
	s.checker.round(t.Context())
	s.checker.round(t.Context())

	queries := []struct {
		from string
		tcp  bool
		q    query
	}{
		{"127.0.0.1", false, query{name: "www.example.test.", qtype: dns.TypeA, ecs: "81.2.69.142/32"}},
		{"127.0.0.1", false, query{name: "www.example.test.", qtype: dns.TypeA, ecs: "216.160.83.56/32"}}, // us down: eu
		{"127.0.0.1", true, query{name: "www.example.test.", qtype: dns.TypeAAAA}},
		{"127.0.0.1", false, query{name: "nope.example.test.", qtype: dns.TypeA}},
		{"127.0.0.1", false, query{name: "example.org.", qtype: dns.TypeA}},
		{"127.0.0.1", false, query{name: "big.example.test.", qtype: dns.TypeTXT}},
		{"127.0.0.1", false, query{name: "example.test.", qtype: dns.TypeANY}},
		{"127.0.0.1", false, query{name: "example.test.", qtype: 65280}},
	}
	for _, q := range queries {
		w := udpFrom(q.from)
		if q.tcp {
			w.remote = &net.TCPAddr{IP: net.ParseIP(q.from), Port: 5353}
		}
		s.ServeDNS(w, q.q.msg())
		if len(w.out) == 0 {
			t.Fatalf("no answer to %v", q.q)
		}
	}
	want := Stats{
		Queries: map[string]uint64{"udp": 7, "tcp": 1},
		Rcodes:  map[string]uint64{"NOERROR": 6, "NXDOMAIN": 1, "REFUSED": 1},
		Qtypes:  map[string]uint64{"A": 4, "AAAA": 1, "TXT": 1, "ANY": 1, "OTHER": 1},
		Regions: map[string]RegionStats{
			"eu":     {Matched: 1, Served: 2},
			"us":     {Matched: 1},
			"ap":     {Matched: 1},
			"global": {},
		},
		ECS:       2,
		Truncated: 1,
		Fallbacks: 1, // us → eu; the AAAA from ap (no IPv6 edges) is NODATA, served by no one
	}
	if diff := cmp.Diff(want, s.Stats()); diff != "" {
		t.Errorf("Stats (-want +got):\n%s", diff)
	}

	w := httptest.NewRecorder()
	s.MetricsHandler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	exposed := w.Body.String()
	wantText := `# HELP scalepress_geodns_queries_total DNS queries answered, by transport.
# TYPE scalepress_geodns_queries_total counter
scalepress_geodns_queries_total{proto="tcp"} 1
scalepress_geodns_queries_total{proto="udp"} 7
# HELP scalepress_geodns_responses_total DNS responses, by RCODE.
# TYPE scalepress_geodns_responses_total counter
scalepress_geodns_responses_total{rcode="NOERROR"} 6
scalepress_geodns_responses_total{rcode="NXDOMAIN"} 1
scalepress_geodns_responses_total{rcode="REFUSED"} 1
# HELP scalepress_geodns_queries_by_type_total DNS queries, by question type.
# TYPE scalepress_geodns_queries_by_type_total counter
scalepress_geodns_queries_by_type_total{qtype="A"} 4
scalepress_geodns_queries_by_type_total{qtype="AAAA"} 1
scalepress_geodns_queries_by_type_total{qtype="ANY"} 1
scalepress_geodns_queries_by_type_total{qtype="OTHER"} 1
scalepress_geodns_queries_by_type_total{qtype="TXT"} 1
# HELP scalepress_geodns_region_matched_total Geo answers for clients placed in the region.
# TYPE scalepress_geodns_region_matched_total counter
scalepress_geodns_region_matched_total{region="ap"} 1
scalepress_geodns_region_matched_total{region="eu"} 1
scalepress_geodns_region_matched_total{region="global"} 0
scalepress_geodns_region_matched_total{region="us"} 1
# HELP scalepress_geodns_region_served_total Geo answers that handed out the region's edges.
# TYPE scalepress_geodns_region_served_total counter
scalepress_geodns_region_served_total{region="ap"} 0
scalepress_geodns_region_served_total{region="eu"} 2
scalepress_geodns_region_served_total{region="global"} 0
scalepress_geodns_region_served_total{region="us"} 0
# HELP scalepress_geodns_region_healthy 1 while the region has a healthy edge.
# TYPE scalepress_geodns_region_healthy gauge
scalepress_geodns_region_healthy{region="ap"} 1
scalepress_geodns_region_healthy{region="eu"} 1
scalepress_geodns_region_healthy{region="global"} 1
scalepress_geodns_region_healthy{region="us"} 0
# HELP scalepress_geodns_ecs_queries_total Queries with an EDNS Client Subnet option.
# TYPE scalepress_geodns_ecs_queries_total counter
scalepress_geodns_ecs_queries_total 2
# HELP scalepress_geodns_truncated_total UDP answers truncated (TC=1).
# TYPE scalepress_geodns_truncated_total counter
scalepress_geodns_truncated_total 1
# HELP scalepress_geodns_fallback_answers_total Geo answers from another region than the client's.
# TYPE scalepress_geodns_fallback_answers_total counter
scalepress_geodns_fallback_answers_total 1
# HELP scalepress_geodns_failopen_answers_total Geo answers with all edges because no region was healthy.
# TYPE scalepress_geodns_failopen_answers_total counter
scalepress_geodns_failopen_answers_total 0
# HELP scalepress_geodns_rejected_total Messages rejected before the handler (malformed, wrong opcode, responses).
# TYPE scalepress_geodns_rejected_total counter
scalepress_geodns_rejected_total 0
`
	if diff := cmp.Diff(samples(wantText), samples(exposed)); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
	doc, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	docs, err := metrics.Documented(doc, "dns")
	if err != nil {
		t.Fatal(err)
	}
	mfs, err := metrics.Parse([]byte(exposed))
	if err != nil {
		t.Fatal(err)
	}
	if p := metrics.Check(mfs, docs); len(p) > 0 {
		t.Errorf("docs/metrics.md and the dns role disagree:\n%s", strings.Join(p, "\n"))
	}
}

// lockedBuffer is a concurrency-safe log sink.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestQueryLog(t *testing.T) {
	cfg := testConfig()
	cfg.QueryLog = true
	var logs lockedBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := New(cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	s.ServeDNS(udpFrom("127.0.0.1"), query{name: "www.example.test.", qtype: dns.TypeA, ecs: "81.2.69.142/32"}.msg())
	line := logs.String()
	for _, want := range []string{"msg=query", "component=geodns", "client=127.0.0.1", "proto=udp", "qname=www.example.test.", "qtype=A", "rcode=NOERROR", "answers=2", "ecs=81.2.69.142/32", "scope=31", "region=eu", "placed_by=country", "served_by=eu"} {
		if !strings.Contains(line, want) {
			t.Errorf("query log %q lacks %q", line, want)
		}
	}
}

// samples are the scalepress_ sample lines of an exposition, sorted.
func samples(text string) []string {
	var out []string
	for line := range strings.Lines(text) {
		if strings.HasPrefix(line, "scalepress_") {
			out = append(out, strings.TrimSpace(line))
		}
	}
	slices.Sort(out)
	return out
}

// TestMetricsServed: with metrics_addr, Run serves the metrics over HTTP to
// requests naming that address, and refuses other Host names (a
// DNS-rebinding page sends its own).
func TestMetricsServed(t *testing.T) {
	cfg := testConfig()
	cfg.MetricsAddr = "127.0.0.1:0"
	s := newTestServer(t, cfg)
	runTestServer(t, s)
	addr := s.MetricsAddr()
	if addr == "" {
		t.Fatal("no metrics address after Listen")
	}
	for _, tt := range []struct {
		name, path, host string
		want             int
		body             string // in the body when allowed
	}{
		{"metrics, own address", "/metrics", addr, http.StatusOK, "scalepress_geodns_queries_total"},
		{"metrics, another name", "/metrics", "evil.example", http.StatusForbidden, ""},
		{"status, own address", "/status", addr, http.StatusOK, `{"regions":[{"name":"eu","served":0,"matched":0},`},
		{"status, another name", "/status", "evil.example", http.StatusForbidden, ""},
		{"other path", "/", addr, http.StatusNotFound, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", "http://"+addr+tt.path, nil)
			req.Host = tt.host
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("GET %s Host %s: %d, want %d", tt.path, tt.host, resp.StatusCode, tt.want)
			}
			for _, w := range []string{"scalepress_geodns", `"regions"`} {
				if strings.Contains(string(body), w) && !strings.Contains(tt.body, w) {
					t.Errorf("GET %s Host %s: body has %q\n%.300s", tt.path, tt.host, w, body)
				}
			}
			if !strings.Contains(string(body), tt.body) {
				t.Errorf("GET %s Host %s: body lacks %q\n%.300s", tt.path, tt.host, tt.body, body)
			}
		})
	}
}

// TestCounters: the status document counts each configured region's
// answers, in config order, and nothing else.
func TestCounters(t *testing.T) {
	s := newTestServer(t, testConfig())
	for _, ecs := range []string{"81.2.69.142/32", "81.2.69.142/32", "216.160.83.56/32"} {
		s.ServeDNS(udpFrom("127.0.0.1"), query{name: "www.example.test.", qtype: dns.TypeA, ecs: ecs}.msg())
	}
	got := s.Counters()
	var names []string
	for _, r := range testConfig().Regions {
		names = append(names, r.Name)
	}
	want := api.DNSCounters{}
	for _, n := range names {
		want.Regions = append(want.Regions, api.DNSRegionCounters{Name: n})
	}
	st := s.Stats()
	for i := range want.Regions {
		rs := st.Regions[want.Regions[i].Name]
		want.Regions[i].Served, want.Regions[i].Matched = rs.Served, rs.Matched
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Counters (-want +got):\n%s", diff)
	}
	if eu := got.Regions[0]; eu.Name != "eu" || eu.Served != 2 || eu.Matched != 2 {
		t.Errorf("eu after two GB queries: %+v, want 2 served, 2 matched", eu)
	}
}
