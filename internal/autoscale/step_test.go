package autoscale

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// sim is a fake group on a fake clock, one tick a second: nodes launched
// by the scaler warm for warm, then serve; together the in-service nodes
// complete capacity(n) PHP requests per second (their Done counters),
// split evenly, and are all busy with a queue while the offered load is
// above that.
type sim struct {
	capacity func(n int) float64
	offered  func(sec int) float64
	pressure func(sec int) float64
	warm     time.Duration
	nodes    []*simNode
	next     int
}

type simNode struct {
	id    string
	ready time.Time
	done  float64
}

func (s *sim) add(now time.Time, n int, ready bool) {
	for range n {
		s.next++
		r := now.Add(s.warm)
		if ready {
			r = now
		}
		s.nodes = append(s.nodes, &simNode{id: fmt.Sprintf("node-%d", s.next), ready: r})
	}
}

// run ticks the scaler for d and returns the sizes in order (each change
// once), the decisions with a verdict, and the last decision.
func (s *sim) run(t *testing.T, p Policy, start int, d time.Duration) (sizes []int, verdicts []string, last Decision) {
	t.Helper()
	sc, err := NewScaler(p)
	if err != nil {
		t.Fatal(err)
	}
	s.add(t0, start, true)
	sizes = []int{start}
	for sec := 0; time.Duration(sec)*time.Second <= d; sec++ {
		now := t0.Add(time.Duration(sec) * time.Second)
		var serving []*simNode
		for _, n := range s.nodes {
			if !now.Before(n.ready) {
				serving = append(serving, n)
			}
		}
		offered := s.offered(sec)
		rate := 0.0
		if len(serving) > 0 {
			rate = min(s.capacity(len(serving)), offered)
		}
		util, queue := 1.0, 5
		if c := s.capacity(max(len(serving), 1)); offered < c {
			util, queue = offered/c, 0
		}
		var ms []NodeMetric
		for _, n := range s.nodes {
			m := NodeMetric{ID: n.id, MaxChildren: 4, Warming: now.Before(n.ready)}
			if !m.Warming {
				n.done += rate / float64(len(serving))
				m.InService, m.Utilization, m.ListenQueue, m.Done = true, util, queue, int64(n.done)
			}
			ms = append(ms, m)
		}
		last = sc.DecideOn(now, len(s.nodes), ms, Host{Cores: 64, CPUPressure: s.pressure(sec)})
		if last.Verdict {
			verdicts = append(verdicts, fmt.Sprintf("%s %s", now.Sub(t0), last.Reason))
		}
		switch {
		case last.Desired > len(s.nodes):
			s.add(now, last.Desired-len(s.nodes), false)
		case last.Desired < len(s.nodes):
			s.nodes = s.nodes[:last.Desired] // the newest go
		}
		if len(s.nodes) != sizes[len(sizes)-1] {
			sizes = append(sizes, len(s.nodes))
		}
	}
	return sizes, verdicts, last
}

// steady is a value that does not change with time.
func steady(v float64) func(int) float64 { return func(int) float64 { return v } }

// from is a value that changes from a to b at second sec.
func from(sec int, a, b float64) func(int) float64 {
	return func(s int) float64 {
		if s < sec {
			return a
		}
		return b
	}
}

// plateau is a machine whose served rate grows by per a node up to top.
func plateau(per, top float64) func(int) float64 {
	return func(n int) float64 { return min(per*float64(n), top) }
}

type stepCase struct {
	name     string
	capacity func(int) float64
	offered  func(int) float64
	pressure func(int) float64
	for_     time.Duration
	want     []int // the sizes the group went through
	action   Action
	verdict  []string // in the verdicts, in order
	reason   string   // in the last decision
}

func TestMeasuredSteps(t *testing.T) {
	base := DefaultPolicy()
	base.Max = 8
	tests := []stepCase{
		{
			// 20/s a node up to 80/s: +50 %, +33 %, then +0 %.
			name:     "grows while the served rate rises, steps back when a node adds nothing, then holds",
			capacity: plateau(20, 80), offered: steady(200), pressure: steady(0.9), for_: 9 * time.Minute,
			want:   []int{2, 3, 4, 5, 4},
			action: HostFull,
			verdict: []string{
				"the step 2 → 3 nodes took the served rate from 40.0 to 60.0 PHP requests/s (+50%), at least 10%: kept",
				"the step 3 → 4 nodes took the served rate from 60.0 to 80.0 PHP requests/s (+33%), at least 10%: kept",
				"the step 4 → 5 nodes took the served rate from 80.0 to 80.0 PHP requests/s (+0%), less than 5%: more workers do not serve more here and the CPU is still saturated (pressure 90%): back to 4 nodes",
			},
			reason: "held at 4 until",
		},
		{
			// +7.5 %: below the gain, above half of it: kept, no further step.
			name: "stops when a step adds less than the gain, keeping a node that added some",
			capacity: func(n int) float64 {
				return map[int]float64{2: 40, 3: 43, 4: 50}[min(n, 4)]
			},
			offered: steady(200), pressure: steady(0.9), for_: 9 * time.Minute,
			want:    []int{2, 3},
			action:  HostFull,
			verdict: []string{"the step 2 → 3 nodes took the served rate from 40.0 to 43.0 PHP requests/s (+7%), less than 10%: growth stopped at 3 nodes"},
			reason:  "held at 3 until",
		},
		{
			// The cooldown ends: one step is tried again, found useless,
			// stepped back: one probe per cooldown, never a flap.
			name:     "after the cooldown one probe again, not a flap",
			capacity: plateau(20, 40), offered: steady(200), pressure: steady(0.9), for_: 10*time.Minute + 90*time.Second,
			want:   []int{2, 3, 2, 3, 2},
			action: HostFull,
		},
		{
			// A slow remote call: every worker waits, the CPU is idle. After
			// 30 s at the target (the served rate is measured) the load
			// asks for 8 nodes (max); one decision adds 4 (MaxStepOut):
			// target tracking, no measured step.
			name:     "a real need with an idle CPU still scales out at once",
			capacity: plateau(5, 1000), offered: from(30, 6, 200), pressure: steady(0.05), for_: 31 * time.Second,
			want:   []int{2, 6},
			action: None, // warming
		},
		{
			// Pressure falls below cpu_clear: the host is no longer
			// saturated, the load still asks: target tracking resumes.
			name:     "a stopped growth resumes once the pressure clears",
			capacity: plateau(20, 40), offered: steady(200),
			pressure: from(120, 0.9, 0.3),
			for_:     150 * time.Second,
			want:     []int{2, 3, 2, 6, 8},
			action:   AtMax,
		},
	}
	tests = append(tests, stepCase{
		// Stepped back at 47 s; from 120 s to 130 s the load is at the
		// target and the pressure clears (the episode ends); then both
		// come back: a new episode measures and steps again at once,
		// not after the 10 minute cooldown.
		name: "the cooldown ends with the saturation episode", capacity: plateau(20, 40),
		offered: func(sec int) float64 {
			if sec >= 120 && sec < 130 {
				return 24
			}
			return 200
		},
		pressure: func(sec int) float64 {
			if sec >= 120 && sec < 130 {
				return 0.3
			}
			return 0.9
		},
		for_: 170 * time.Second, want: []int{2, 3, 2, 3}, action: None,
	}, stepCase{
		// 36/s on 2 nodes that serve 40: utilisation 0.9 asks for more;
		// on 3 it is 0.6, the target. The rate cannot rise (the clients
		// ask no more), so no gain is judged: the step met the load.
		name: "a step that meets the load is kept without a verdict on the rate", capacity: plateau(20, 200),
		offered: steady(36), pressure: steady(0.9), for_: 2 * time.Minute,
		want: []int{2, 3}, action: None,
		verdict: []string{"the step 2 → 3 nodes met the load (it no longer asks for more): kept"},
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &sim{capacity: tt.capacity, offered: tt.offered, pressure: tt.pressure, warm: 8 * time.Second}
			sizes, verdicts, last := s.run(t, base, 2, tt.for_)
			if diff := cmp.Diff(tt.want, sizes); diff != "" {
				t.Errorf("sizes (-want +got):\n%s\nverdicts:\n%s\nlast: %s", diff, strings.Join(verdicts, "\n"), last.Reason)
			}
			if last.Action != tt.action {
				t.Errorf("last action %s, want %s: %s", last.Action, tt.action, last.Reason)
			}
			for i, v := range tt.verdict {
				if i >= len(verdicts) || !strings.Contains(verdicts[i], v) {
					t.Errorf("verdict %d: want it to contain %q; verdicts:\n%s", i, v, strings.Join(verdicts, "\n"))
				}
			}
			if !strings.Contains(last.Reason, tt.reason) {
				t.Errorf("last reason %q\nwant it to contain %q", last.Reason, tt.reason)
			}
		})
	}
}

// TestMeasuredStepRate: the rate a step compares is counted only over a
// stretch in which the size held and no node warmed, from a quarter of a
// window after it began; counters that restart are left out.
func TestMeasuredStepRate(t *testing.T) {
	var s served
	w := 8 * time.Second
	at := func(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }
	tick := func(sec, current int, ms ...NodeMetric) float64 {
		s.observe(at(sec), current, ms, measure(ms), true)
		return s.rate(at(sec), w)
	}
	node := func(id string, done int64) NodeMetric {
		return NodeMetric{ID: id, InService: true, Utilization: 1, MaxChildren: 4, Done: done}
	}
	var got []float64
	for sec := range 12 { // 10/s each; the window is measurable from 2 s + 8 s
		got = append(got, tick(sec, 2, node("a", int64(10*sec)), node("b", int64(10*sec))))
	}
	// A node restarts (its counter starts at 0): left out, not negative.
	got = append(got, tick(12, 2, node("a", 120), node("b", 0)))
	// A new node warms: not measured.
	got = append(got, tick(13, 3, node("a", 130), node("b", 10), NodeMetric{ID: "c", Warming: true}))
	nan := math.NaN()
	// The first tick is not stable (the size was unknown): stable from
	// 1 s, measured from 3 s, a whole window at 11 s.
	want := []float64{nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, 20, 18.75, nan}
	if diff := cmp.Diff(want, got, cmpEqualNaN); diff != "" {
		t.Errorf("rates (-want +got):\n%s", diff)
	}
}

var cmpEqualNaN = cmp.Comparer(func(a, b float64) bool {
	return a == b || math.IsNaN(a) && math.IsNaN(b) || math.Abs(a-b) < 1e-9
})
