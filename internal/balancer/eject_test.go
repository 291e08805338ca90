package balancer

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var errTest = errors.New("test failure")

func TestPassiveEjection(t *testing.T) {
	const (
		OKs = OK
		CE  = ConnError
		S5  = Status5xx
		SAT = Saturated
		CAN = Canceled
	)
	tests := []struct {
		name     string
		nodes    []string
		cfg      func(*Config)
		outcomes []Outcome // on node a
		queue    []int     // ReportLoad for a, after outcomes
		want     time.Duration
	}{
		{name: "five connection errors", nodes: []string{"a", "b", "c"}, outcomes: []Outcome{CE, CE, CE, CE, CE}, want: 5 * time.Second},
		{name: "four are not enough", nodes: []string{"a", "b", "c"}, outcomes: []Outcome{CE, CE, CE, CE}},
		{name: "node 5xx count as errors", nodes: []string{"a", "b", "c"}, outcomes: []Outcome{S5, CE, S5, CE, S5}, want: 5 * time.Second},
		{name: "a success ends the run", nodes: []string{"a", "b", "c"}, outcomes: []Outcome{CE, CE, CE, CE, OKs, CE, CE, CE, CE}},
		{name: "a canceled request neither counts nor resets", nodes: []string{"a", "b", "c"}, outcomes: []Outcome{CE, CE, CAN, CE, CE, CAN, CE}, want: 5 * time.Second},
		{name: "threshold is configurable", nodes: []string{"a", "b"}, cfg: func(c *Config) { c.ErrorThreshold = 2 }, outcomes: []Outcome{CE, CE}, want: 5 * time.Second},
		{name: "saturation ejects nothing by default", nodes: []string{"a", "b"}, outcomes: []Outcome{SAT, SAT, SAT}, queue: []int{100}},
		{name: "one saturation signal", nodes: []string{"a", "b"}, cfg: satEject(1), outcomes: []Outcome{SAT}, want: 5 * time.Second},
		{name: "saturation threshold", nodes: []string{"a", "b"}, cfg: satEject(2), outcomes: []Outcome{SAT, OKs, SAT}},
		{name: "reported queue at the threshold", nodes: []string{"a", "b"}, cfg: satEject(1), queue: []int{8}, want: 5 * time.Second},
		{name: "reported queue below the threshold", nodes: []string{"a", "b"}, cfg: satEject(1), queue: []int{7, 3}},
		{name: "queue signal disabled", nodes: []string{"a", "b"}, cfg: func(c *Config) { c.SaturationThreshold, c.SaturationQueue = 1, 0 }, queue: []int{100}},
		{name: "never the last node in service", nodes: []string{"a"}, outcomes: []Outcome{CE, CE, CE, CE, CE, SAT}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := noSlowStart()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			b, clk := newTest(t, cfg, tt.nodes...)
			for _, o := range tt.outcomes {
				report(t, b, "a", o)
			}
			for _, q := range tt.queue {
				b.ReportLoad("a", q)
			}
			var got time.Duration
			if until := state(t, b, "a").EjectedUntil; !until.IsZero() {
				got = until.Sub(clk.Now())
			}
			if got != tt.want {
				t.Errorf("ejected for %s, want %s", got, tt.want)
			}
		})
	}
}

func TestEjectionCap(t *testing.T) {
	tests := []struct {
		name    string
		nodes   []string
		percent int
		want    []string // ejected after every node failed, in order
	}{
		{name: "half of four", nodes: []string{"a", "b", "c", "d"}, percent: 50, want: []string{"a", "b"}},
		{name: "one of two", nodes: []string{"a", "b"}, percent: 50, want: []string{"a"}},
		{name: "one even when the share rounds to 0", nodes: []string{"a", "b", "c"}, percent: 10, want: []string{"a"}},
		{name: "all but the last", nodes: []string{"a", "b", "c"}, percent: 100, want: []string{"a", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := noSlowStart()
			cfg.MaxEjectedPercent = tt.percent
			satEject(1)(&cfg)
			b, _ := newTest(t, cfg, tt.nodes...)
			for _, id := range tt.nodes {
				report(t, b, id, Saturated)
			}
			var got []string
			for _, ns := range b.Snapshot().Nodes {
				if ns.State == StateEjected {
					got = append(got, ns.ID)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ejected (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEjectionBackoff(t *testing.T) {
	cfg := noSlowStart()
	b, clk := newTest(t, cfg, "a", "b", "c")
	// Each step: wait, then a run of errors on a; want the ejection length.
	steps := []struct {
		wait time.Duration
		want time.Duration
	}{
		{0, 5 * time.Second},
		{5 * time.Second, 10 * time.Second},  // again right after the ejection ended
		{10 * time.Second, 20 * time.Second}, //
		{20*time.Second + 119*time.Second, 40 * time.Second},
		{40 * time.Second, 60 * time.Second}, // capped
		{60 * time.Second, 60 * time.Second},
		{60*time.Second + 2*time.Minute, 5 * time.Second}, // a full EjectWindow in service: forgiven
	}
	var got, want []time.Duration
	for _, s := range steps {
		clk.Advance(s.wait)
		for range cfg.ErrorThreshold {
			report(t, b, "a", ConnError)
		}
		var d time.Duration
		if until := state(t, b, "a").EjectedUntil; !until.IsZero() {
			d = until.Sub(clk.Now())
		}
		got, want = append(got, d), append(want, s.want)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ejection lengths (-want +got):\n%s", diff)
	}
}

// satEject turns saturation ejection on after n signals.
func satEject(n int) func(*Config) {
	return func(c *Config) { c.SaturationThreshold = n }
}

func TestSaturationEjectionDoesNotEscalate(t *testing.T) {
	cfg := noSlowStart()
	satEject(1)(&cfg)
	b, clk := newTest(t, cfg, "a", "b")
	for range 4 {
		report(t, b, "a", Saturated)
		until := state(t, b, "a").EjectedUntil
		if got := until.Sub(clk.Now()); got != 5*time.Second {
			t.Fatalf("saturation ejection = %s, want 5s", got)
		}
		clk.Advance(5 * time.Second)
	}
}

func TestEjectionEnds(t *testing.T) {
	cfg := noSlowStart()
	satEject(1)(&cfg)
	b, clk := newTest(t, cfg, "a", "b")
	report(t, b, "a", Saturated)
	if diff := cmp.Diff([]string{"b"}, keys(pickCounts(t, b, 200))); diff != "" {
		t.Fatalf("while a is ejected (-want +got):\n%s", diff)
	}
	clk.Advance(5*time.Second - 1)
	if diff := cmp.Diff([]string{"b"}, keys(pickCounts(t, b, 200))); diff != "" {
		t.Fatalf("1ns before the ejection ends (-want +got):\n%s", diff)
	}
	clk.Advance(1)
	if diff := cmp.Diff([]string{"a", "b"}, keys(pickCounts(t, b, 200))); diff != "" {
		t.Fatalf("after the ejection (-want +got):\n%s", diff)
	}
	if got := state(t, b, "a"); got.State != StateInService || got.Ejections != 1 || got.Saturations != 1 {
		t.Errorf("a = %+v, want in service after 1 ejection and 1 saturation", got)
	}
}

func TestEjectDuration(t *testing.T) {
	tests := []struct {
		name      string
		base, max time.Duration
		n         int
		want      time.Duration
	}{
		{"first", 5 * time.Second, time.Minute, 0, 5 * time.Second},
		{"doubles", 5 * time.Second, time.Minute, 2, 20 * time.Second},
		{"capped", 5 * time.Second, time.Minute, 4, time.Minute},
		{"huge n", time.Nanosecond, time.Hour, 1000, time.Hour},
		{"base is max", time.Minute, time.Minute, 3, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ejectDuration(tt.base, tt.max, tt.n); got != tt.want {
				t.Errorf("ejectDuration(%s, %s, %d) = %s, want %s", tt.base, tt.max, tt.n, got, tt.want)
			}
		})
	}
}

// A node that refuses a request because its PHP queue is full is busy, not
// broken. Power of two choices already keeps requests away from it while
// its queue (its requests in flight) is long, and takes it back as soon as
// the queue shrinks; ejecting it for a fixed time instead left its workers
// idle once they had worked off the queue while the other nodes shed load.
func TestSaturatedNodeStaysACandidate(t *testing.T) {
	b, _ := newTest(t, noSlowStart(), "a", "b")
	a := node(t, b, "a")
	for range 10 { // a's queue, from this edge
		a.inflight.Add(1)
	}
	report(t, b, "a", Saturated)
	if diff := cmp.Diff(map[string]int{"b": 200}, pickCounts(t, b, 200)); diff != "" {
		t.Fatalf("while a's queue is long (-want +got):\n%s", diff)
	}
	for range 10 {
		a.Done(OK)
	}
	if diff := cmp.Diff([]string{"a", "b"}, keys(pickCounts(t, b, 200))); diff != "" {
		t.Errorf("once a's queue is worked off (-want +got):\n%s", diff)
	}
	if got := state(t, b, "a"); got.Saturations != 1 || got.Ejections != 0 {
		t.Errorf("a = %+v, want 1 saturation counted and no ejection", got)
	}
}
