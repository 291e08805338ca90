package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/metrics"
)

// absentOnStack are documented metrics the e2e stack (stackConfig: one DB
// member, dns off, autoscaling off) has no series for: no scaling decision
// was made, there is no Galera cluster, no dns role.
var absentOnStack = []string{
	"scalepress_autoscaling_decisions_total",
	"scalepress_db_member_primary",
	"scalepress_db_member_last_committed",
	"scalepress_dns_region_healthy",
}

// checkStackMetrics finds every role through the controller's Prometheus
// service discovery (GET /v1/targets), scrapes each the way Prometheus
// would, and checks the roles expose what docs/metrics.md lists.
func checkStackMetrics(t *testing.T, s *stack) {
	t.Helper()
	b := newBrowser(t)
	p := b.get(s.api + api.APIPathTargets)
	var groups []api.TargetGroup
	if err := json.Unmarshal([]byte(p.body), &groups); p.status != 200 || err != nil {
		t.Fatalf("GET %s: %d %v\n%s", api.APIPathTargets, p.status, err, p.body)
	}
	doc, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	// The files role needs a files token: the one `up` wrote for scrapers.
	tok, err := os.ReadFile(filepath.Join(s.dir, "secrets", "files-metrics-token"))
	if err != nil {
		t.Fatal(err)
	}
	roles := map[string]int{}
	for _, g := range groups {
		role, path := g.Labels["role"], g.Labels["__metrics_path__"]
		var hdr map[string]string
		if role == "files" {
			hdr = map[string]string{"Authorization": "Bearer " + strings.TrimSpace(string(tok))}
			if p := b.get("http://" + g.Targets[0] + api.FilesPathFiles + "/wp-config.php"); p.status != 401 {
				t.Errorf("files role without a token: %d", p.status)
			}
			if p := b.do("GET", "http://"+g.Targets[0]+api.FilesPathFiles+"/wp-config.php", nil, hdr); p.status != 403 {
				t.Errorf("files role, a file with the metrics token: %d, want 403", p.status)
			}
		}
		for _, target := range g.Targets {
			roles[role]++
			m := b.do("GET", "http://"+target+path, nil, hdr)
			if m.status != 200 {
				t.Errorf("%s %s%s: %d", role, target, path, m.status)
				continue
			}
			exposed, err := metrics.Parse([]byte(m.body))
			if err != nil {
				t.Errorf("%s %s: %v", role, target, err)
				continue
			}
			docs, err := metrics.Documented(doc, role)
			if err != nil {
				t.Fatal(err)
			}
			for _, problem := range metrics.Check(exposed, docs) {
				name, _, _ := strings.Cut(problem, ":")
				if strings.HasSuffix(problem, "documented, not exposed") && slices.Contains(absentOnStack, name) {
					continue
				}
				t.Errorf("%s %s: %s", role, target, problem)
			}
			if role == "edge" {
				checkRequestHistogram(t, exposed)
			}
		}
	}
	if roles["controller"] != 1 || roles["edge"] != 1 || roles["files"] != 1 || roles["node"] != len(s.status(t).Nodes) {
		t.Errorf("targets %v, want the controller, 1 edge, the files role and every node", roles)
	}
}

// checkRequestHistogram: the site requests the test made show up as GET
// hits and misses.
func checkRequestHistogram(t *testing.T, exposed map[string]*dto.MetricFamily) {
	t.Helper()
	counts := map[string]uint64{}
	for _, m := range exposed["scalepress_edge_request_duration_seconds"].GetMetric() {
		var cache, method string
		for _, l := range m.GetLabel() {
			switch l.GetName() {
			case "cache":
				cache = l.GetValue()
			case "method":
				method = l.GetValue()
			}
		}
		counts[cache+" "+method] += m.GetHistogram().GetSampleCount()
	}
	if counts["hit GET"] == 0 || counts["miss GET"] == 0 {
		t.Errorf("request duration counts %v: want GET hits and misses", counts)
	}
}
