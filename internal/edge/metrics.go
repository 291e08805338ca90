package edge

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/hitfront"
	"github.com/scalepress/scalepress/internal/metrics"
	"github.com/scalepress/scalepress/internal/pagecache"
)

// The request histogram's label values: bounded sets, never a path or a
// host, so an edge has at most len(cacheLabels)*len(methodLabels) series.
var (
	cacheLabels  = [...]string{"hit", "miss", "stale", "bypass", "none"}
	methodLabels = [...]string{"GET", "HEAD", "POST", "other"}
)

// edgeMetrics is the edge's registry (docs/metrics.md, "edge"): counters
// and gauges read from Status at scrape time, and the request duration
// histogram, one metrics.Durations per label pair chosen by index (no label
// hashing on the request path).
type edgeMetrics struct {
	reg      *prometheus.Registry
	handler  http.Handler
	duration [len(cacheLabels)][len(methodLabels)]*metrics.Durations
}

func newEdgeMetrics(e *Edge) *edgeMetrics {
	labels := prometheus.Labels{"edge": e.spec.ID}
	m := &edgeMetrics{}
	for i := range cacheLabels {
		for j := range methodLabels {
			m.duration[i][j] = metrics.NewDurations(metrics.EdgeRequestBuckets)
		}
	}
	c := &edgeCollector{e: e, d: newEdgeDescs(labels, e.logins != nil, e.cache != nil, e.tls != nil, e.fast != nil || e.fastTLS != nil), m: m}
	m.reg = metrics.NewRegistry(c)
	m.handler = metrics.Handler(m.reg)
	return m
}

// observe records one site request that took d; hit says it was served
// from a fresh stored copy, else h (the response's header) has X-Cache.
func (m *edgeMetrics) observe(method string, h http.Header, hit bool, d time.Duration) {
	c := len(cacheLabels) - 1
	if hit {
		c = 0
	} else if v := h[api.HeaderCache]; len(v) > 0 {
		switch v[0] {
		case pagecache.XCacheHit:
			c = 0
		case pagecache.XCacheMiss:
			c = 1
		case pagecache.XCacheStale:
			c = 2
		case pagecache.XCacheBypass:
			c = 3
		}
	}
	j := len(methodLabels) - 1
	switch method {
	case http.MethodGet:
		j = 0
	case http.MethodHead:
		j = 1
	case http.MethodPost:
		j = 2
	}
	m.duration[c][j].Observe(d)
}

type edgeDescs struct {
	duration                                                  *prometheus.Desc
	retries, fallbacks, refused, generation, failOpen         *prometheus.Desc
	inFlight, healthy, picks, failures, ejections             *prometheus.Desc
	queueWait, admitted, overloaded, queueWaiting             *prometheus.Desc // admission control
	loginRequests, attempts, successes, throttled, blocks     *prometheus.Desc // login throttling on
	blocked, tracked, evictions                               *prometheus.Desc
	cacheResponses, refreshes, stores, cacheEvictions, purged *prometheus.Desc // cache on
	cacheBytes, cacheObjects, fastPath                        *prometheus.Desc
	tlsHandshakeErrors, tlsRefused, tlsExpiry                 *prometheus.Desc // TLS on
}

func newEdgeDescs(l prometheus.Labels, logins, cache, tls, fast bool) edgeDescs {
	desc := func(name, help string, vars ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, vars, l)
	}
	d := edgeDescs{
		duration:     desc("scalepress_edge_request_duration_seconds", "Time to serve a site request at the edge, to its last byte, by cache status (X-Cache; none: no X-Cache, the cache is off) and method.", "cache", "method"),
		retries:      desc("scalepress_edge_retries_total", "Requests repeated on another node."),
		fallbacks:    desc("scalepress_edge_upload_fallbacks_total", "Uploads answered from the files role because the node had not applied them yet."),
		refused:      desc("scalepress_edge_client_refused_total", "Requests refused with 429: the client had http.client_concurrency requests in flight to nodes."),
		generation:   desc("scalepress_edge_upstream_generation", "Node-set generation applied."),
		failOpen:     desc("scalepress_edge_fail_open", "1 when no node is in service and the edge balances over all."),
		inFlight:     desc("scalepress_edge_node_in_flight", "Requests in flight per node.", "node"),
		healthy:      desc("scalepress_edge_node_healthy", "1 when the node passes active health checks.", "node", "state"),
		picks:        desc("scalepress_edge_node_picks_total", "Requests sent per node.", "node"),
		failures:     desc("scalepress_edge_node_failures_total", "Connection errors and node-made 5xx per node.", "node"),
		ejections:    desc("scalepress_edge_node_ejections_total", "Passive-health ejections per node.", "node"),
		queueWait:    desc("scalepress_edge_queue_wait_seconds", "Time uncached requests waited at the edge for a node below http.node_limit, of those that got one after a wait."),
		admitted:     desc("scalepress_edge_admitted_total", "Uncached requests admission control let through: at once, or after waiting in the queue.", "how"),
		overloaded:   desc("scalepress_edge_overload_refused_total", "Uncached requests admission control refused (answered from a stale copy or with 503): the queue was full, or they waited the whole http.queue_timeout.", "reason"),
		queueWaiting: desc("scalepress_edge_queue_waiting", "Uncached requests waiting at the edge for a node now."),
	}
	if logins {
		d.loginRequests = desc("scalepress_edge_login_requests_total", "Login requests seen (POST wp-login.php, POST xmlrpc.php, Basic credentials).", "kind")
		d.attempts = desc("scalepress_edge_login_attempts_total", "Password attempts counted (each call of an xmlrpc multicall), before successes are given back.")
		d.successes = desc("scalepress_edge_login_successes_total", "Login requests the node answered as a success.")
		d.throttled = desc("scalepress_edge_login_throttled_total", "Login requests refused with 429, by the limit that refused them.", "by")
		d.blocks = desc("scalepress_edge_login_blocks_total", "Blocks started (a key went over its limit).", "by")
		d.blocked = desc("scalepress_edge_login_blocked", "Addresses and user names blocked now.", "by")
		d.tracked = desc("scalepress_edge_login_tracked", "Entries of the fixed-size tables (http.login_throttle.max_entries each).", "table")
		d.evictions = desc("scalepress_edge_login_evictions_total", "Entries forgotten to keep the tables within their size.")
	}
	if cache {
		d.cacheResponses = desc("scalepress_edge_cache_responses_total", "Responses by cache outcome: hit (stored copy), miss (a fill reached a node), stale (stored copy for a failed node), bypass (not cacheable).", "status")
		d.refreshes = desc("scalepress_edge_cache_refreshes_total", "Background refreshes started (stale-while-revalidate, soft purge).")
		d.stores = desc("scalepress_edge_cache_stores_total", "Objects stored, revalidated copies included.")
		d.cacheEvictions = desc("scalepress_edge_cache_evictions_total", "Objects evicted to make room.")
		d.purged = desc("scalepress_edge_cache_purged_total", "Entries affected by purges.")
		d.cacheBytes = desc("scalepress_edge_cache_bytes", "Bytes held by the page cache now (approximate).")
		d.cacheObjects = desc("scalepress_edge_cache_objects", "Objects held by the page cache now.")
	}
	if fast {
		d.fastPath = desc("scalepress_edge_fast_path_total", "The fast path for HTTP/1.1 cache hits and bypassed GET/HEAD requests, plain HTTP or HTTPS (cache.fast_hits): responses it served (hits and proxied), connections it handed to net/http, connections net/http gave back.", "event")
	}
	if tls {
		d.tlsHandshakeErrors = desc("scalepress_edge_tls_handshake_errors_total", "TLS handshakes that failed (refused names, old versions, scanners).")
		d.tlsRefused = desc("scalepress_edge_tls_refused_total", "TLS handshakes refused for the server name: no SNI, or a name no certificate covers.", "reason")
		d.tlsExpiry = desc("scalepress_edge_tls_certificate_expiry_seconds", "When each certificate the edge serves expires (Unix time).", "name", "source")
	}
	return d
}

func (d *edgeDescs) all() []*prometheus.Desc {
	return []*prometheus.Desc{d.duration, d.retries, d.fallbacks, d.refused, d.generation, d.failOpen,
		d.inFlight, d.healthy, d.picks, d.failures, d.ejections, d.queueWait, d.admitted, d.overloaded, d.queueWaiting,
		d.loginRequests, d.attempts, d.successes, d.throttled, d.blocks, d.blocked, d.tracked, d.evictions,
		d.cacheResponses, d.refreshes, d.stores, d.cacheEvictions, d.purged, d.cacheBytes, d.cacheObjects, d.fastPath,
		d.tlsHandshakeErrors, d.tlsRefused, d.tlsExpiry}
}

// edgeCollector reads the edge's atomics at scrape time.
type edgeCollector struct {
	e *Edge
	d edgeDescs
	m *edgeMetrics
}

func (c *edgeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.d.all() {
		if d != nil {
			ch <- d
		}
	}
}

func (c *edgeCollector) Collect(ch chan<- prometheus.Metric) {
	d, st := &c.d, c.e.Status()
	counter := func(desc *prometheus.Desc, v float64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, v, lv...)
	}
	gauge := func(desc *prometheus.Desc, v float64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, lv...)
	}
	for i, cl := range cacheLabels {
		for j, ml := range methodLabels {
			ch <- c.m.duration[i][j].Metric(d.duration, cl, ml)
		}
	}
	counter(d.retries, float64(st.Retried))
	counter(d.fallbacks, float64(st.FromFiles))
	counter(d.refused, float64(st.ClientRefused))
	gauge(d.generation, float64(st.Generation))
	gauge(d.failOpen, metrics.B2F(st.Balancer.FailOpen))
	ch <- c.e.admission.wait.Metric(d.queueWait)
	counter(d.admitted, float64(st.Admission.Admitted), "at_once")
	counter(d.admitted, float64(st.Admission.Dequeued), "after_wait")
	counter(d.overloaded, float64(st.Admission.RejectedFull), "queue_full")
	counter(d.overloaded, float64(st.Admission.RejectedWait), "queue_timeout")
	gauge(d.queueWaiting, float64(st.Admission.Waiting))
	for _, n := range st.Balancer.Nodes {
		gauge(d.inFlight, float64(n.InFlight), n.ID)
		gauge(d.healthy, metrics.B2F(n.Healthy), n.ID, n.State)
		counter(d.picks, float64(n.Picks), n.ID)
		counter(d.failures, float64(n.Failures), n.ID)
		counter(d.ejections, float64(n.Ejections), n.ID)
	}
	if l := st.Logins; l != nil && d.loginRequests != nil {
		counter(d.loginRequests, float64(l.Requests.WPLogin), "wp-login")
		counter(d.loginRequests, float64(l.Requests.XMLRPC), "xmlrpc")
		counter(d.loginRequests, float64(l.Requests.Basic), "basic")
		counter(d.attempts, float64(l.Attempts))
		counter(d.successes, float64(l.Successes))
		counter(d.throttled, float64(l.Refused.Address), "address")
		counter(d.throttled, float64(l.Refused.User), "user")
		counter(d.blocks, float64(l.Blocks.Address), "address")
		counter(d.blocks, float64(l.Blocks.User), "user")
		gauge(d.blocked, float64(l.Blocked.Address), "address")
		gauge(d.blocked, float64(l.Blocked.User), "user")
		gauge(d.tracked, float64(l.Tracked.Address), "address")
		gauge(d.tracked, float64(l.Tracked.User), "user")
		gauge(d.tracked, float64(l.Tracked.Trusted), "trusted")
		counter(d.evictions, float64(l.Evictions))
	}
	if cs := st.Cache; cs != nil && d.cacheResponses != nil {
		counter(d.cacheResponses, float64(cs.Hits), "hit")
		counter(d.cacheResponses, float64(cs.Misses), "miss")
		counter(d.cacheResponses, float64(cs.Stale), "stale")
		counter(d.cacheResponses, float64(cs.Bypasses), "bypass")
		counter(d.refreshes, float64(cs.Refreshes))
		counter(d.stores, float64(cs.Stores))
		counter(d.cacheEvictions, float64(cs.Evictions))
		counter(d.purged, float64(cs.Purges))
		gauge(d.cacheBytes, float64(cs.Bytes))
		gauge(d.cacheObjects, float64(cs.Objects))
	}
	if d.fastPath != nil {
		var fs hitfront.Stats
		for _, f := range [...]*hitfront.Server{c.e.fast, c.e.fastTLS} {
			if f != nil {
				s := f.Stats()
				fs.Served, fs.Handed, fs.Returned = fs.Served+s.Served, fs.Handed+s.Handed, fs.Returned+s.Returned
			}
		}
		counter(d.fastPath, float64(fs.Served), "served")
		counter(d.fastPath, float64(fs.Handed), "handed")
		counter(d.fastPath, float64(fs.Returned), "returned")
	}
	if f := c.e.tls; f != nil && d.tlsRefused != nil {
		noSNI, unknown := f.mgr.Refused()
		counter(d.tlsHandshakeErrors, float64(f.handshakeErrors.Load()))
		counter(d.tlsRefused, float64(noSNI), "no_sni")
		counter(d.tlsRefused, float64(unknown), "unknown_name")
		for _, cert := range f.mgr.Certificates() {
			gauge(d.tlsExpiry, float64(cert.NotAfter.Unix()), cert.Names[0], cert.Source)
		}
	}
}
