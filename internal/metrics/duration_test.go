package metrics

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func TestDurations(t *testing.T) {
	d := NewDurations([]float64{0.001, 0.01, 0.1})
	for _, v := range []time.Duration{0, time.Millisecond, 2 * time.Millisecond, 50 * time.Millisecond, time.Second, -time.Second} {
		d.Observe(v)
	}
	var m dto.Metric
	if err := d.Metric(prometheus.NewDesc("x_seconds", "x", nil, nil)).Write(&m); err != nil {
		t.Fatal(err)
	}
	h := m.GetHistogram()
	type bucket struct {
		UB float64
		N  uint64
	}
	var got []bucket
	for _, b := range h.GetBucket() {
		got = append(got, bucket{b.GetUpperBound(), b.GetCumulativeCount()})
	}
	// A bound is inclusive (le); a negative duration counts as 0.
	want := []bucket{{0.001, 3}, {0.01, 4}, {0.1, 5}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("buckets (-want +got):\n%s", diff)
	}
	if h.GetSampleCount() != 6 || h.GetSampleSum() != 1.053 {
		t.Errorf("count %d sum %g, want 6 and 1.053", h.GetSampleCount(), h.GetSampleSum())
	}
}

// BenchmarkDurations against prometheus.Histogram: the request path's cost.
func BenchmarkDurations(b *testing.B) {
	b.Run("Durations", func(b *testing.B) {
		d := NewDurations(EdgeRequestBuckets)
		for b.Loop() {
			d.Observe(300 * time.Microsecond)
		}
	})
	b.Run("Histogram", func(b *testing.B) {
		h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "x", Buckets: EdgeRequestBuckets})
		for b.Loop() {
			h.Observe(0.0003)
		}
	})
}
