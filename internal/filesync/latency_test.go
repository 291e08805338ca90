package filesync

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
)

// arrivals reports when files appear (are renamed into place) in dir.
func arrivals(t testing.TB, dir string) <-chan arrival {
	t.Helper()
	w, err := fsnotify.NewBufferedWatcher(8192)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add(dir); err != nil {
		t.Fatal(err)
	}
	out := make(chan arrival, 8192)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.Events {
			if ev.Has(fsnotify.Create) && !strings.HasPrefix(filepath.Base(ev.Name), tempPrefix) {
				out <- arrival{name: filepath.Base(ev.Name), at: time.Now()}
			}
		}
	}()
	t.Cleanup(func() { w.Close(); <-done })
	return out
}

type arrival struct {
	name string
	at   time.Time
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*p))]
}

// latencyCluster starts two agents with a directory both have.
func latencyCluster(t testing.TB, dir string) (a, b *testAgent, arrived <-chan arrival) {
	c := newCluster(t)
	a, b = c.agent("node-a"), c.agent("node-b")
	if err := os.MkdirAll(a.path(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the directory on node-b", func() bool {
		fi, err := os.Stat(b.path(dir))
		return err == nil && fi.IsDir()
	})
	return a, b, arrivals(t, b.path(dir))
}

// TestPropagationLatency writes 1,000 files of 4 KiB (200 with -short) in
// node-a's docroot, one every 5 ms, checks that every one reaches node-b's,
// and logs how long each took (latency is measured, not asserted).
func TestPropagationLatency(t *testing.T) {
	n := 1000
	if testing.Short() {
		n = 200
	}
	a, _, arrived := latencyCluster(t, "lat")
	data := make([]byte, 4096)
	rand.Read(data)
	type write struct {
		name  string
		start time.Time
	}
	writes := make(chan write, n)
	go func() {
		for i := range n {
			name := fmt.Sprintf("f%04d.bin", i)
			start := time.Now()
			if err := os.WriteFile(a.path("lat/"+name), data, 0o644); err != nil {
				t.Error(err)
				return
			}
			writes <- write{name, start}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	started := make(map[string]time.Time, n)
	var seen []arrival
	lat := make([]time.Duration, 0, n)
	timeout := time.After(60 * time.Second)
	for len(lat) < n {
		select {
		case w := <-writes:
			started[w.name] = w.start
		case ar := <-arrived:
			seen = append(seen, ar)
		case <-timeout:
			t.Fatalf("only %d of %d files arrived", len(lat), n)
		}
		// An arrival is matched once its write is known (the two channels
		// race).
		kept := seen[:0]
		for _, ar := range seen {
			if st, ok := started[ar.name]; ok {
				lat = append(lat, ar.at.Sub(st))
				delete(started, ar.name)
			} else {
				kept = append(kept, ar)
			}
		}
		seen = kept
	}
	slices.Sort(lat)
	t.Logf("propagation of %d files of 4 KiB, one every 5 ms: p50 %v, p90 %v, p99 %v, max %v",
		n, percentile(lat, 0.50), percentile(lat, 0.90), percentile(lat, 0.99), lat[len(lat)-1])
}

// BenchmarkPropagate writes one 4 KiB file in node-a's docroot and waits
// until it appears in node-b's; ns/op is the propagation latency.
func BenchmarkPropagate(b *testing.B) {
	a, _, arrived := latencyCluster(b, "bench")
	data := make([]byte, 4096)
	rand.Read(data)
	var lat []time.Duration
	for i := 0; b.Loop(); i++ {
		name := fmt.Sprintf("f%06d.bin", i)
		start := time.Now()
		if err := os.WriteFile(a.path("bench/"+name), data, 0o644); err != nil {
			b.Fatal(err)
		}
		for ar := range arrived {
			if ar.name == name {
				lat = append(lat, ar.at.Sub(start))
				break
			}
		}
	}
	slices.Sort(lat)
	b.ReportMetric(float64(percentile(lat, 0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99-ms")
}
