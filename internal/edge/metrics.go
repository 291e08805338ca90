package edge

import (
	"fmt"
	"io"
	"net/http"
)

// writeMetrics writes the edge's metrics in the Prometheus text format.
func (e *Edge) writeMetrics(w io.Writer) {
	st := e.Status()
	fmt.Fprintf(w, "# HELP scalepress_edge_retries_total Requests repeated on another node.\n# TYPE scalepress_edge_retries_total counter\n")
	fmt.Fprintf(w, "scalepress_edge_retries_total{edge=%q} %d\n", st.ID, st.Retried)
	fmt.Fprintf(w, "# HELP scalepress_edge_upload_fallbacks_total Uploads answered from the files role because the node had not applied them yet.\n# TYPE scalepress_edge_upload_fallbacks_total counter\n")
	fmt.Fprintf(w, "scalepress_edge_upload_fallbacks_total{edge=%q} %d\n", st.ID, st.FromFiles)
	fmt.Fprintf(w, "# HELP scalepress_edge_client_refused_total Requests refused with 429: the client had http.client_concurrency requests in flight to nodes.\n# TYPE scalepress_edge_client_refused_total counter\n")
	fmt.Fprintf(w, "scalepress_edge_client_refused_total{edge=%q} %d\n", st.ID, st.ClientRefused)
	fmt.Fprintf(w, "# HELP scalepress_edge_upstream_generation Node-set generation applied.\n# TYPE scalepress_edge_upstream_generation gauge\n")
	fmt.Fprintf(w, "scalepress_edge_upstream_generation{edge=%q} %d\n", st.ID, st.Generation)
	fmt.Fprintf(w, "# HELP scalepress_edge_fail_open 1 when no node is in service and the edge balances over all.\n# TYPE scalepress_edge_fail_open gauge\n")
	fmt.Fprintf(w, "scalepress_edge_fail_open{edge=%q} %d\n", st.ID, b2i(st.Balancer.FailOpen))
	fmt.Fprintf(w, "# HELP scalepress_edge_node_in_flight Requests in flight per node.\n# TYPE scalepress_edge_node_in_flight gauge\n")
	for _, n := range st.Balancer.Nodes {
		fmt.Fprintf(w, "scalepress_edge_node_in_flight{edge=%q,node=%q} %d\n", st.ID, n.ID, n.InFlight)
	}
	fmt.Fprintf(w, "# HELP scalepress_edge_node_healthy 1 when the node passes active health checks.\n# TYPE scalepress_edge_node_healthy gauge\n")
	for _, n := range st.Balancer.Nodes {
		fmt.Fprintf(w, "scalepress_edge_node_healthy{edge=%q,node=%q,state=%q} %d\n", st.ID, n.ID, n.State, b2i(n.Healthy))
	}
	fmt.Fprintf(w, "# HELP scalepress_edge_node_picks_total Requests sent per node.\n# TYPE scalepress_edge_node_picks_total counter\n")
	for _, n := range st.Balancer.Nodes {
		fmt.Fprintf(w, "scalepress_edge_node_picks_total{edge=%q,node=%q} %d\n", st.ID, n.ID, n.Picks)
	}
	fmt.Fprintf(w, "# HELP scalepress_edge_node_failures_total Connection errors and node-made 5xx per node.\n# TYPE scalepress_edge_node_failures_total counter\n")
	for _, n := range st.Balancer.Nodes {
		fmt.Fprintf(w, "scalepress_edge_node_failures_total{edge=%q,node=%q} %d\n", st.ID, n.ID, n.Failures)
	}
	fmt.Fprintf(w, "# HELP scalepress_edge_node_ejections_total Passive-health ejections per node.\n# TYPE scalepress_edge_node_ejections_total counter\n")
	for _, n := range st.Balancer.Nodes {
		fmt.Fprintf(w, "scalepress_edge_node_ejections_total{edge=%q,node=%q} %d\n", st.ID, n.ID, n.Ejections)
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (e *Edge) serveMetrics(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	e.writeMetrics(w)
}
