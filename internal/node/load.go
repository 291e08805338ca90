package node

import (
	"context"
	"sync"
	"time"
)

// loadMeter averages the PHP pool's busy and waiting counts over the last
// second from samples every loadSample: one look per second (what the
// controller does) sees a random instant and swings between 0 and 1.
type loadMeter struct {
	mu      sync.Mutex
	busy    [loadSamples]int
	waiting [loadSamples]int
	i, n    int
	// lastDone is when a PHP request last completed: proof that PHP works
	// even when every worker is too busy to answer a ping in time.
	lastDone time.Time
}

const (
	loadSample  = 50 * time.Millisecond
	loadSamples = 20
)

func (m *loadMeter) run(ctx context.Context, sample func() (busy, waiting int)) {
	t := time.NewTicker(loadSample)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		b, w := sample()
		m.mu.Lock()
		m.busy[m.i], m.waiting[m.i] = b, w
		m.i = (m.i + 1) % loadSamples
		m.n = min(m.n+1, loadSamples)
		m.mu.Unlock()
	}
}

// averages returns the mean busy and waiting counts over the last second.
func (m *loadMeter) averages() (busy, waiting float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.n == 0 {
		return 0, 0
	}
	var b, w int
	for j := range m.n {
		b += m.busy[j]
		w += m.waiting[j]
	}
	return float64(b) / float64(m.n), float64(w) / float64(m.n)
}

func (m *loadMeter) done(now time.Time) {
	m.mu.Lock()
	m.lastDone = now
	m.mu.Unlock()
}

// progressed reports whether a PHP request completed within d.
func (m *loadMeter) progressed(now time.Time, d time.Duration) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return !m.lastDone.IsZero() && now.Sub(m.lastDone) < d
}
