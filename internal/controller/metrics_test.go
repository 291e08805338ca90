package controller

import (
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/metrics"
	"github.com/scalepress/scalepress/internal/nodegroup"
)

// fullScrape is a stack with every part on: nodes, autoscaling, files, a
// three-member Galera cluster, dns.
func fullScrape() scrape {
	return scrape{
		status: api.Status{
			Edges: []api.EdgeStatus{{ID: "edge-1", Region: "eu", Healthy: true}},
			Nodes: []api.NodeStatus{
				{ID: "node-1", State: api.NodeInService, Utilization: 0.5, FilesSeq: 40},
				{ID: "node-2", State: api.NodeInService, Utilization: 0.7, FilesSeq: 42},
				{ID: "node-3", State: api.NodeWarming},
			},
			Autoscaling: &api.Autoscaling{Min: 1, Max: 3, Desired: 3, Target: 0.6, Utilization: 0.6},
			Files:       &api.FilesStatus{Seq: 42},
			DB: &api.DBStatus{ClusterSize: 2, Members: []api.DBMemberStatus{
				{ID: "db-1", State: api.DBSynced, ClusterStatus: "Primary", LastCommitted: 7},
				{ID: "db-2", State: api.DBSynced, ClusterStatus: "Primary", LastCommitted: 7},
				{ID: "db-3", State: api.DBDown},
			}},
			DNS: &api.DNSStatus{Regions: []api.DNSRegionStatus{{Name: "eu", Healthy: true}}},
		},
		events:    map[string]uint64{"scale": 2},
		decisions: map[nodegroup.DecisionKey]uint64{{Direction: "out", Reason: "scale-out"}: 2},
		moves:     1,
	}
}

func scrapeController(t *testing.T, s scrape) string {
	t.Helper()
	w := httptest.NewRecorder()
	metrics.Handler(metrics.NewRegistry(newControllerMetrics(func() scrape { return s }))).ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	if w.Code != 200 {
		t.Fatalf("GET /metrics: %d %s", w.Code, w.Body)
	}
	return w.Body.String()
}

// TestMetricsDocumented: the controller exposes exactly what
// docs/metrics.md lists for it.
func TestMetricsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	docs, err := metrics.Documented(doc, "controller")
	if err != nil {
		t.Fatal(err)
	}
	exposed, err := metrics.Parse([]byte(scrapeController(t, fullScrape())))
	if err != nil {
		t.Fatal(err)
	}
	if p := metrics.Check(exposed, docs); len(p) > 0 {
		t.Errorf("docs/metrics.md and the controller disagree:\n%s", strings.Join(p, "\n"))
	}
}

func TestMetricsValues(t *testing.T) {
	text := scrapeController(t, fullScrape())
	for _, want := range []string{
		`scalepress_nodes{state="in-service"} 2`,
		`scalepress_nodes{state="failed"} 0`,
		`scalepress_files_sync_lag{node="node-1"} 2`,
		`scalepress_files_sync_lag{node="node-2"} 0`,
		`scalepress_autoscaling_decisions_total{direction="out",reason="scale-out"} 2`,
		`scalepress_autoscaling_max_nodes 3`,
		`scalepress_db_member_up{member="db-3"} 0`,
		`scalepress_db_member_primary{member="db-1"} 1`,
		`scalepress_db_cluster_primary 1`,
		`scalepress_events_total{kind="scale"} 2`,
		`scalepress_events_total{kind="rebalance"} 0`,
		`scalepress_rebalance_moves_total 1`,
		`scalepress_edge_up{edge="edge-1",region="eu"} 1`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(text, `scalepress_files_sync_lag{node="node-3"}`) {
		t.Error("sync lag of a warming node (it is not serving yet)")
	}
	// A standalone MariaDB has no Galera series, and is primary while synced.
	s := fullScrape()
	s.status.DB = &api.DBStatus{ClusterSize: 1, Members: []api.DBMemberStatus{{ID: "db-1", State: api.DBSynced}}}
	text = scrapeController(t, s)
	if strings.Contains(text, "scalepress_db_member_primary{") || !strings.Contains(text, "scalepress_db_cluster_primary 1\n") {
		t.Errorf("standalone database:\n%s", text)
	}
}
