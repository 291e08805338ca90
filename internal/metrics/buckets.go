package metrics

// Buckets, in seconds, for what each histogram measures. Each layout spans
// the range its quantity lives in, about two buckets per factor of 2–3,
// so that p50/p90/p99 read from it are within a bucket of the truth
// without paying for buckets nobody reads (each is a series per label set).
var (
	// EdgeRequestBuckets: a cache hit is served in well under a
	// millisecond, a proxied WordPress page in 20 ms to 1 s, a slow admin
	// page or an upload in seconds; 30 s is the node's default limit.
	EdgeRequestBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}
	// FastCGIWaitBuckets: the wait for a free PHP worker is nothing on an
	// idle node and grows with the queue on a saturated one; beyond a few
	// seconds the node sheds load (node.max_queue).
	FastCGIWaitBuckets = []float64{0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}
	// PHPBuckets: PHP's own time for a WordPress request, from a few
	// milliseconds (a cached object, a 404) to the request timeout.
	PHPBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}
)
