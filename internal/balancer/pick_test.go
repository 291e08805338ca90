package balancer

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestPickChoosesLessLoaded(t *testing.T) {
	tests := []struct {
		name    string
		load    map[string]int64 // in flight per node
		queue   map[string]int   // reported listen queue
		exclude []string
		want    []string // the IDs picked at least once in 1000 picks; "" is ErrNoUpstream
	}{
		{name: "one node", load: map[string]int64{"a": 7}, want: []string{"a"}},
		{name: "two nodes: the less loaded always", load: map[string]int64{"a": 3, "b": 1}, want: []string{"b"}},
		{name: "the most loaded of three never", load: map[string]int64{"a": 0, "b": 1, "c": 2}, want: []string{"a", "b"}},
		{name: "equal load: both", load: map[string]int64{"a": 2, "b": 2}, want: []string{"a", "b"}},
		{name: "queue counts as load", load: map[string]int64{"a": 0, "b": 2}, queue: map[string]int{"a": 5}, want: []string{"b"}},
		{name: "exclude", load: map[string]int64{"a": 0, "b": 9}, exclude: []string{"a"}, want: []string{"b"}},
		{name: "exclude leaves one of three", load: map[string]int64{"a": 0, "b": 0, "c": 9}, exclude: []string{"a", "b"}, want: []string{"c"}},
		{name: "all excluded", load: map[string]int64{"a": 0, "b": 0}, exclude: []string{"b", "a"}, want: []string{""}},
		{name: "no nodes", load: map[string]int64{}, want: []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := noSlowStart()
			cfg.SaturationQueue = 0
			b, _ := newTest(t, cfg, keys(toInt(tt.load))...)
			for id, l := range tt.load {
				node(t, b, id).inflight.Store(l)
			}
			for id, q := range tt.queue {
				b.ReportLoad(id, q)
			}
			got := keys(pickCounts(t, b, 1000, tt.exclude...))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("picked nodes (-want +got):\n%s", diff)
			}
			for id, l := range tt.load {
				if got := node(t, b, id).inflight.Load(); got != l {
					t.Errorf("%s in flight after Done = %d, want %d", id, got, l)
				}
			}
		})
	}
}

func toInt(m map[string]int64) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = int(v)
	}
	return out
}

func TestPickTiesAreRandom(t *testing.T) {
	b, _ := newTest(t, noSlowStart(), "a", "b", "c", "d")
	const rounds = 40000
	counts := pickCounts(t, b, rounds)
	for _, id := range []string{"a", "b", "c", "d"} {
		// A fair share is 10000; 9σ is about 780.
		if c := counts[id]; c < 9000 || c > 11000 {
			t.Errorf("%s picked %d times of %d, want about a quarter: %v", id, c, rounds, counts)
		}
	}
}

func TestPickSpreadsHeldRequests(t *testing.T) {
	// With requests that stay in flight, P2C keeps the loads close.
	b, _ := newTest(t, noSlowStart(), "a", "b", "c", "d", "e", "f", "g", "h")
	for range 800 {
		if _, err := b.Pick(); err != nil {
			t.Fatal(err)
		}
	}
	lo, hi := int64(1<<62), int64(0)
	for _, ns := range b.Snapshot().Nodes {
		lo, hi = min(lo, ns.InFlight), max(hi, ns.InFlight)
	}
	if hi-lo > 10 {
		t.Errorf("in flight ranges from %d to %d over 8 nodes after 800 picks, want close to 100 each", lo, hi)
	}
}

func TestPickFailOpen(t *testing.T) {
	tests := []struct {
		name      string
		nodes     []string
		unhealthy []string
		ejected   []string
		draining  []string
		want      []string // picked at least once in 1000 picks; "" is ErrNoUpstream
		failOpen  bool
	}{
		{name: "all in service", nodes: []string{"a", "b", "c"}, want: []string{"a", "b", "c"}},
		{name: "unhealthy skipped", nodes: []string{"a", "b", "c"}, unhealthy: []string{"a"}, want: []string{"b", "c"}},
		{name: "ejected skipped", nodes: []string{"a", "b", "c"}, ejected: []string{"b"}, want: []string{"a", "c"}},
		{name: "draining skipped", nodes: []string{"a", "b", "c"}, draining: []string{"c"}, want: []string{"a", "b"}},
		{name: "all unhealthy: fail open", nodes: []string{"a", "b"}, unhealthy: []string{"a", "b"}, want: []string{"a", "b"}, failOpen: true},
		{name: "unhealthy and ejected: fail open", nodes: []string{"a", "b", "c"}, unhealthy: []string{"b", "c"}, ejected: []string{"a"}, want: []string{"a", "b", "c"}, failOpen: true},
		{name: "fail open skips draining", nodes: []string{"a", "b"}, unhealthy: []string{"a"}, draining: []string{"b"}, want: []string{"a"}, failOpen: true},
		{name: "all draining", nodes: []string{"a", "b"}, draining: []string{"a", "b"}, want: []string{""}},
		{name: "empty", want: []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := newTest(t, noSlowStart(), tt.nodes...)
			b.mu.Lock()
			now := b.clock()
			for _, id := range tt.unhealthy {
				b.nodes[id].healthy = false
			}
			for _, id := range tt.ejected {
				b.nodes[id].ejectedUntil.Store(now + int64(time.Minute))
			}
			for _, id := range tt.draining {
				b.drainLocked(b.nodes[id], now, true)
			}
			b.publishLocked(now)
			b.mu.Unlock()
			got := keys(pickCounts(t, b, 1000))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("picked nodes (-want +got):\n%s", diff)
			}
			if got := b.Snapshot().FailOpen; got != tt.failOpen {
				t.Errorf("Snapshot().FailOpen = %v, want %v", got, tt.failOpen)
			}
		})
	}
}

func TestPickDoesNotAllocate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		exclude []string
	}{
		{name: "plain", cfg: noSlowStart()},
		{name: "slow start", cfg: DefaultConfig()},
		{name: "exclude", cfg: noSlowStart(), exclude: []string{"n3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := newTest(t, tt.cfg, "n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7")
			allocs := testing.AllocsPerRun(1000, func() {
				n, err := b.Pick(tt.exclude...)
				if err != nil {
					t.Fatal(err)
				}
				n.Done(OK)
			})
			if allocs != 0 {
				t.Errorf("Pick+Done allocates %v times, want 0", allocs)
			}
		})
	}
}

// TestPickDrainRace: a request held on a node means that its Drained
// channel is still open, however Pick, Done and Drain interleave.
func TestPickDrainRace(t *testing.T) {
	for round := range 20 {
		b, _ := newTest(t, noSlowStart(), "a", "b")
		drained := b.Drained("a")
		var wg sync.WaitGroup
		var bad sync.Once
		for range 4 {
			wg.Go(func() {
				for range 500 {
					n, err := b.Pick()
					if err != nil {
						t.Error(err)
						return
					}
					if n.ID() == "a" {
						select {
						case <-drained:
							bad.Do(func() { t.Errorf("round %d: Pick returned a after Drained closed", round) })
						default:
						}
					}
					n.Done(OK)
				}
			})
		}
		if err := b.Drain("a"); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		select {
		case <-drained:
		default:
			t.Fatalf("round %d: Drained(a) open with %d in flight", round, node(t, b, "a").inflight.Load())
		}
	}
}

func TestTwoOf(t *testing.T) {
	// Every ordered pair of distinct indices comes up.
	for _, n := range []int{2, 3, 8} {
		seen := map[[2]int]bool{}
		for r := uint64(0); r < 1<<12; r++ {
			x := r * 0x9E3779B97F4A7C15 // spread the bits
			i, j := twoOf(x, n)
			if i == j || i < 0 || j < 0 || i >= n || j >= n {
				t.Fatalf("twoOf(%#x, %d) = %d, %d", x, n, i, j)
			}
			seen[[2]int{i, j}] = true
		}
		if len(seen) != n*(n-1) {
			t.Errorf("n=%d: %d distinct pairs, want %d", n, len(seen), n*(n-1))
		}
	}
}

func TestErrNoUpstream(t *testing.T) {
	b, _ := newTest(t, DefaultConfig())
	if _, err := b.Pick(); !errors.Is(err, ErrNoUpstream) {
		t.Fatalf("Pick() on an empty set = %v, want ErrNoUpstream", err)
	}
}
