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
	if l := st.Logins; l != nil {
		writeLoginMetrics(w, st.ID, l)
	}
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

// writeLoginMetrics writes login throttling's counters.
func writeLoginMetrics(w io.Writer, id string, l *LoginStatus) {
	fmt.Fprintf(w, "# HELP scalepress_edge_login_requests_total Login requests seen (POST wp-login.php, POST xmlrpc.php, Basic credentials).\n# TYPE scalepress_edge_login_requests_total counter\n")
	for _, k := range []struct {
		kind string
		n    int64
	}{{"wp-login", l.Requests.WPLogin}, {"xmlrpc", l.Requests.XMLRPC}, {"basic", l.Requests.Basic}} {
		fmt.Fprintf(w, "scalepress_edge_login_requests_total{edge=%q,kind=%q} %d\n", id, k.kind, k.n)
	}
	fmt.Fprintf(w, "# HELP scalepress_edge_login_attempts_total Password attempts counted (each call of an xmlrpc multicall), before successes are given back.\n# TYPE scalepress_edge_login_attempts_total counter\n")
	fmt.Fprintf(w, "scalepress_edge_login_attempts_total{edge=%q} %d\n", id, l.Attempts)
	fmt.Fprintf(w, "# HELP scalepress_edge_login_successes_total Login requests the node answered as a success.\n# TYPE scalepress_edge_login_successes_total counter\n")
	fmt.Fprintf(w, "scalepress_edge_login_successes_total{edge=%q} %d\n", id, l.Successes)
	fmt.Fprintf(w, "# HELP scalepress_edge_login_throttled_total Login requests refused with 429, by the limit that refused them.\n# TYPE scalepress_edge_login_throttled_total counter\n")
	fmt.Fprintf(w, "scalepress_edge_login_throttled_total{edge=%q,by=\"address\"} %d\n", id, l.Refused.Address)
	fmt.Fprintf(w, "scalepress_edge_login_throttled_total{edge=%q,by=\"user\"} %d\n", id, l.Refused.User)
	fmt.Fprintf(w, "# HELP scalepress_edge_login_blocks_total Blocks started (a key went over its limit).\n# TYPE scalepress_edge_login_blocks_total counter\n")
	fmt.Fprintf(w, "scalepress_edge_login_blocks_total{edge=%q,by=\"address\"} %d\n", id, l.Blocks.Address)
	fmt.Fprintf(w, "scalepress_edge_login_blocks_total{edge=%q,by=\"user\"} %d\n", id, l.Blocks.User)
	fmt.Fprintf(w, "# HELP scalepress_edge_login_blocked Addresses and user names blocked now.\n# TYPE scalepress_edge_login_blocked gauge\n")
	fmt.Fprintf(w, "scalepress_edge_login_blocked{edge=%q,by=\"address\"} %d\n", id, l.Blocked.Address)
	fmt.Fprintf(w, "scalepress_edge_login_blocked{edge=%q,by=\"user\"} %d\n", id, l.Blocked.User)
	fmt.Fprintf(w, "# HELP scalepress_edge_login_tracked Entries of the fixed-size tables (http.login_throttle.max_entries each).\n# TYPE scalepress_edge_login_tracked gauge\n")
	fmt.Fprintf(w, "scalepress_edge_login_tracked{edge=%q,table=\"address\"} %d\n", id, l.Tracked.Address)
	fmt.Fprintf(w, "scalepress_edge_login_tracked{edge=%q,table=\"user\"} %d\n", id, l.Tracked.User)
	fmt.Fprintf(w, "scalepress_edge_login_tracked{edge=%q,table=\"trusted\"} %d\n", id, l.Tracked.Trusted)
	fmt.Fprintf(w, "# HELP scalepress_edge_login_evictions_total Entries forgotten to keep the tables within their size.\n# TYPE scalepress_edge_login_evictions_total counter\n")
	fmt.Fprintf(w, "scalepress_edge_login_evictions_total{edge=%q} %d\n", id, l.Evictions)
}
