package metrics

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Durations is a histogram of durations for the hottest paths (the edge's
// cache hits): Observe is a bucket search over integers and two atomic
// adds, about half of prometheus.Histogram's work (which keeps a hot and a
// cold copy and a float sum). Cumulative counts and the count are made at
// scrape time. The sum is kept in nanoseconds in a uint64: it wraps after
// 584 years of summed request time (at 1000 requests of 100 ms in flight
// every second, 213 days), which a rate() reads as one counter reset.
type Durations struct {
	bounds []time.Duration // upper bounds, ascending
	counts []atomic.Uint64 // per bucket, not cumulative; the last is +Inf
	sumNs  atomic.Uint64
	upper  []float64 // bounds in seconds, for the exposition
}

// NewDurations returns a histogram with upper bounds in seconds.
func NewDurations(buckets []float64) *Durations {
	d := &Durations{upper: buckets, counts: make([]atomic.Uint64, len(buckets)+1)}
	for _, b := range buckets {
		d.bounds = append(d.bounds, time.Duration(b*float64(time.Second)))
	}
	return d
}

// Observe records one duration.
func (d *Durations) Observe(v time.Duration) {
	i := 0
	for i < len(d.bounds) && v > d.bounds[i] {
		i++
	}
	d.counts[i].Add(1)
	d.sumNs.Add(uint64(max(v, 0)))
}

// Metric returns the histogram now as a constant metric of desc.
func (d *Durations) Metric(desc *prometheus.Desc, labelValues ...string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(d.upper))
	var n uint64
	for i, ub := range d.upper {
		n += d.counts[i].Load()
		buckets[ub] = n
	}
	n += d.counts[len(d.upper)].Load()
	return prometheus.MustNewConstHistogram(desc, n, float64(d.sumNs.Load())/1e9, buckets, labelValues...)
}
