package node

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scalepress/scalepress/internal/metrics"
)

// nodeMetrics is the agent's registry (docs/metrics.md, "node"): gauges and
// counters read from the agent at scrape time, and the FastCGI histograms
// observed per request.
type nodeMetrics struct {
	reg     *prometheus.Registry
	handler http.Handler
	wait    prometheus.Histogram
	php     prometheus.Histogram
}

func newNodeMetrics(a *Agent) *nodeMetrics {
	labels := prometheus.Labels{"node": a.spec.ID}
	m := &nodeMetrics{
		wait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:        "scalepress_node_fastcgi_wait_seconds",
			Help:        "Time a PHP request waited for a free PHP worker (FastCGI connection).",
			ConstLabels: labels, Buckets: metrics.FastCGIWaitBuckets,
		}),
		php: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:        "scalepress_node_php_duration_seconds",
			Help:        "Time from a PHP worker taking a request to the last byte of its response.",
			ConstLabels: labels, Buckets: metrics.PHPBuckets,
		}),
	}
	m.reg = metrics.NewRegistry(m.wait, m.php, &agentCollector{a: a, d: newAgentDescs(labels, a.spec.Files != "")})
	m.handler = metrics.Handler(m.reg)
	return m
}

// observe is fastcgi.Config.OnTiming.
func (m *nodeMetrics) observe(wait, run time.Duration) {
	m.wait.Observe(wait.Seconds())
	m.php.Observe(run.Seconds())
}

type agentDescs struct {
	inFlight, requests, busy, waiting, util *prometheus.Desc
	quarantined, applied, gateWaits         *prometheus.Desc // with files only
}

func newAgentDescs(l prometheus.Labels, files bool) agentDescs {
	d := agentDescs{
		inFlight: prometheus.NewDesc("scalepress_node_in_flight", "HTTP requests being served.", nil, l),
		requests: prometheus.NewDesc("scalepress_node_requests_total", "HTTP requests served.", nil, l),
		busy:     prometheus.NewDesc("scalepress_node_php_busy", "PHP requests running.", nil, l),
		waiting:  prometheus.NewDesc("scalepress_node_php_waiting", "Requests waiting for a PHP worker.", nil, l),
		util:     prometheus.NewDesc("scalepress_node_php_utilization", "Busy PHP workers / workers.", nil, l),
	}
	if files {
		d.quarantined = prometheus.NewDesc("scalepress_node_files_quarantined_total", "Changes of the files log quarantined on this node (kept failing, skipped).", nil, l)
		d.applied = prometheus.NewDesc("scalepress_node_files_applied_seq", "Sequence number of the files change log this node's docroot has applied.", nil, l)
		d.gateWaits = prometheus.NewDesc("scalepress_node_gate_waits_total", "Requests for a missing path that waited for the request gate (a plugin, theme or core tree being replaced) before their route was decided.", nil, l)
	}
	return d
}

// agentCollector reads the agent's counters at scrape time, so the request
// path pays nothing for them.
type agentCollector struct {
	a *Agent
	d agentDescs
}

func (c *agentCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.d.inFlight, c.d.requests, c.d.busy, c.d.waiting, c.d.util, c.d.quarantined, c.d.applied, c.d.gateWaits} {
		if d != nil {
			ch <- d
		}
	}
}

func (c *agentCollector) Collect(ch chan<- prometheus.Metric) {
	a, d := c.a, c.d
	fs := a.fcgi.Stats()
	ch <- prometheus.MustNewConstMetric(d.inFlight, prometheus.GaugeValue, float64(a.inflight.Load()))
	ch <- prometheus.MustNewConstMetric(d.requests, prometheus.CounterValue, float64(a.served.Load()))
	ch <- prometheus.MustNewConstMetric(d.busy, prometheus.GaugeValue, float64(fs.Busy))
	ch <- prometheus.MustNewConstMetric(d.waiting, prometheus.GaugeValue, float64(fs.Waiting))
	ch <- prometheus.MustNewConstMetric(d.util, prometheus.GaugeValue, float64(fs.Busy)/float64(a.spec.PHPChildren))
	if d.quarantined != nil {
		n, _ := a.filesQuarantine()
		ch <- prometheus.MustNewConstMetric(d.quarantined, prometheus.CounterValue, float64(n))
		ch <- prometheus.MustNewConstMetric(d.gateWaits, prometheus.CounterValue, float64(a.gateWaits.Load()))
		if seq, ok := a.filesApplied(); ok {
			ch <- prometheus.MustNewConstMetric(d.applied, prometheus.GaugeValue, float64(seq))
		}
	}
}
