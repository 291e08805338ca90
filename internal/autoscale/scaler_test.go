package autoscale

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// nodes returns n in-service nodes with 10 workers each, util busy and a
// queue of q each.
func nodes(n int, util float64, q int) []NodeMetric {
	out := make([]NodeMetric, n)
	for i := range out {
		out[i] = NodeMetric{ID: fmt.Sprintf("node-%d", i+1), InService: true, Utilization: util, ListenQueue: q, MaxChildren: 10}
	}
	return out
}

func warming(n int) []NodeMetric {
	out := make([]NodeMetric, n)
	for i := range out {
		out[i] = NodeMetric{ID: fmt.Sprintf("new-%d", i+1), Warming: true, MaxChildren: 10}
	}
	return out
}

func join(groups ...[]NodeMetric) []NodeMetric {
	var out []NodeMetric
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

type tick struct {
	at      time.Duration // since t0
	current int
	nodes   []NodeMetric
}

type outcome struct {
	Desired int
	Action  Action
}

func TestScalerSequences(t *testing.T) {
	const s = time.Second
	low := func(n int) []NodeMetric { return nodes(n, 0.1, 0) }
	tests := []struct {
		name   string
		policy func(*Policy)
		ticks  []tick
		want   []outcome
	}{
		{
			name:  "step load: 1 node to 4 in one decision",
			ticks: []tick{{0, 1, nodes(1, 1, 10)}}, // (10+10)/10 = 2.0 → ceil(2/0.6) = 4
			want:  []outcome{{4, ScaleOut}},
		},
		{
			name:   "step load: step limit 4 honoured, the rest once the new nodes warmed",
			policy: func(p *Policy) { p.Max = 10 },
			ticks: []tick{
				{0, 1, nodes(1, 1, 50)},                        // (10+50)/10 = 6.0 → ceil(6/0.6) = 10, +4 at most
				{15 * s, 5, join(nodes(1, 1, 50), warming(4))}, // no second step while they warm
				{30 * s, 5, nodes(5, 1, 30)},                   // (50+30)/50 = 1.6 → ceil(5 × 1.6/0.6) = 14 → 9
				{45 * s, 9, join(nodes(5, 1, 30), warming(4))},
				{60 * s, 9, nodes(9, 1, 10)}, // (90+10)/90 → 17 → capped at 10
			},
			want: []outcome{{5, ScaleOut}, {5, None}, {9, ScaleOut}, {9, None}, {10, ScaleOut}},
		},
		{
			name:   "step load: capped at max",
			policy: func(p *Policy) { p.Max = 3 },
			ticks:  []tick{{0, 2, nodes(2, 1, 20)}, {15 * s, 3, nodes(3, 1, 20)}},
			want:   []outcome{{3, ScaleOut}, {3, AtMax}},
		},
		{
			name:  "queue drives scale-out at 100% busy",
			ticks: []tick{{0, 2, nodes(2, 1, 0)}, {0, 2, nodes(2, 1, 5)}},
			// 1.0/0.6 → ceil(3.33) = 4; (10+5)/10 = 1.5 → ceil(5) = 5... ×2 nodes: ceil(2×2.5) = 5.
			want: []outcome{{4, ScaleOut}, {5, ScaleOut}},
		},
		{
			name: "scale-in waits for the window, then goes down one by one",
			ticks: []tick{
				{0, 4, low(4)}, {30 * s, 4, low(4)}, {60 * s, 4, low(4)}, {119 * s, 4, low(4)},
				{120 * s, 4, low(4)}, {135 * s, 3, low(3)}, {150 * s, 2, low(2)}, {165 * s, 1, low(1)},
			},
			want: []outcome{{4, None}, {4, None}, {4, None}, {4, None}, {3, ScaleIn}, {2, ScaleIn}, {1, ScaleIn}, {1, None}},
		},
		{
			name:   "scale-in step",
			policy: func(p *Policy) { p.Min, p.MaxStepIn = 1, 2 },
			ticks:  []tick{{0, 6, low(6)}, {120 * s, 6, low(6)}, {121 * s, 4, low(4)}},
			want:   []outcome{{6, None}, {4, ScaleIn}, {2, ScaleIn}},
		},
		{
			name: "a gap in the metrics restarts the window",
			ticks: []tick{
				{0, 4, low(4)}, {60 * s, 4, nil}, {200 * s, 4, low(4)}, {319 * s, 4, low(4)}, {320 * s, 4, low(4)},
			},
			want: []outcome{{4, None}, {4, None}, {4, None}, {4, None}, {3, ScaleIn}},
		},
		{
			name: "a brief lull does not remove nodes",
			ticks: []tick{
				{0, 4, nodes(4, 0.6, 0)},
				{100 * s, 4, nodes(4, 0.6, 0)}, // busy: recommends 4
				{110 * s, 4, low(4)}, {150 * s, 4, low(4)}, {219 * s, 4, low(4)},
				{220 * s, 4, low(4)}, // the busy tick is a window old
			},
			want: []outcome{{4, None}, {4, None}, {4, None}, {4, None}, {4, None}, {3, ScaleIn}},
		},
		{
			name: "the tolerance band prevents flapping",
			ticks: []tick{
				{0, 3, nodes(3, 0.55, 0)}, {15 * s, 3, nodes(3, 0.65, 0)}, {30 * s, 3, nodes(3, 0.55, 0)},
				{200 * s, 3, nodes(3, 0.65, 0)}, {400 * s, 3, nodes(3, 0.545, 0)}, {500 * s, 3, nodes(3, 0.655, 0)},
			},
			want: []outcome{{3, None}, {3, None}, {3, None}, {3, None}, {3, None}, {3, None}},
		},
		{
			name:   "without tolerance the same load moves the size",
			policy: func(p *Policy) { p.Tolerance = 0 },
			ticks:  []tick{{0, 3, nodes(3, 0.65, 0)}},
			want:   []outcome{{4, ScaleOut}},
		},
		{
			name: "warming nodes: no utilisation, no second scale-out, no scale-in",
			ticks: []tick{
				{0, 2, nodes(2, 0.9, 0)},                        // ceil(2×1.5) = 3
				{15 * s, 3, join(nodes(2, 0.9, 0), warming(1))}, // same load, the new node warms
				{200 * s, 3, join(low(2), warming(1))},          // low, but a node still warms
				{215 * s, 3, low(3)},
			},
			want: []outcome{{3, ScaleOut}, {3, None}, {3, None}, {2, ScaleIn}},
		},
		{
			name:   "below min",
			policy: func(p *Policy) { p.Min = 2 },
			ticks:  []tick{{0, 1, low(1)}, {0, 0, nil}},
			want:   []outcome{{2, AtMin}, {2, AtMin}},
		},
		{
			name:   "above max",
			policy: func(p *Policy) { p.Max = 4 },
			ticks:  []tick{{0, 6, nodes(6, 0.9, 0)}, {0, 6, nil}},
			want:   []outcome{{4, AtMax}, {4, AtMax}},
		},
		{
			name:   "held at min",
			policy: func(p *Policy) { p.Min = 2 },
			ticks:  []tick{{0, 2, nodes(2, 0, 0)}, {500 * s, 2, nodes(2, 0, 0)}},
			want:   []outcome{{2, None}, {2, None}},
		},
		{
			name:  "no metrics: no decision",
			ticks: []tick{{0, 3, nil}, {10 * s, 3, warming(3)}, {20 * s, 3, []NodeMetric{{ID: "x", InService: true, Utilization: 1}}}},
			want:  []outcome{{3, None}, {3, None}, {3, None}},
		},
		{
			name:  "nodes out of service do not count toward utilisation",
			ticks: []tick{{0, 3, join(nodes(2, 0.9, 0), []NodeMetric{{ID: "sick", InService: false, Utilization: 0, MaxChildren: 10}})}},
			want:  []outcome{{3, None}}, // ceil(2×1.5) = 3: the unhealthy node is the healer's business
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := DefaultPolicy()
			p.Min = 1
			if tt.policy != nil {
				tt.policy(&p)
			}
			sc, err := NewScaler(p)
			if err != nil {
				t.Fatal(err)
			}
			var got []outcome
			for _, tk := range tt.ticks {
				d := sc.Decide(t0.Add(tk.at), tk.current, tk.nodes)
				if d.Reason == "" || d.Current != tk.current || !d.At.Equal(t0.Add(tk.at)) {
					t.Errorf("tick at %s: incomplete decision %+v", tk.at, d)
				}
				t.Logf("%s: %s %s", tk.at, d.Action, d.Reason)
				got = append(got, outcome{d.Desired, d.Action})
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("decisions (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecisionDetails(t *testing.T) {
	p := DefaultPolicy()
	p.Min = 1
	sc, err := NewScaler(p)
	if err != nil {
		t.Fatal(err)
	}
	ns := join(nodes(2, 1, 3), warming(1), []NodeMetric{{ID: "odd", InService: true, Utilization: math.NaN(), MaxChildren: 10}})
	ns[1].MaxChildren = 30
	got := sc.Decide(t0, 3, ns)
	// Measured: node-1 and node-2 (the NaN node has no usable metrics):
	// busy 10+30 of 40 workers, queue 6: (40+6)/40 = 1.15; ceil(2 × 1.15/0.6) = 4.
	want := Decision{
		At: t0, Current: 3, Desired: 3, Recommended: 4, Action: None,
		Reason: "utilisation 1.15 (busy 1.00 + queue 6) > target 0.60 (+92%) asks for 4 nodes: no scale-out while 1 warming (a start costs CPU, and the new capacity is not measured yet)",
		Inputs: Inputs{Utilization: 1.15, Busy: 1, Queue: 6, InService: 2, Warming: 1, CPUPressure: math.NaN(), Served: math.NaN()},
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateApprox(0, 1e-9), cmpopts.EquateNaNs()); diff != "" {
		t.Errorf("Decide (-want +got):\n%s", diff)
	}
}

func TestScaleInReason(t *testing.T) {
	p := DefaultPolicy()
	sc, err := NewScaler(p)
	if err != nil {
		t.Fatal(err)
	}
	sc.Decide(t0, 4, nodes(4, 0.1, 0))
	d := sc.Decide(t0.Add(2*time.Minute), 4, nodes(4, 0.1, 0))
	const want = "utilisation 0.10 < target 0.60 (-83%), at most 2 nodes needed for 2m0s: 4 → 3 nodes (step limit 1)"
	if d.Reason != want {
		t.Errorf("Reason = %q\nwant %q", d.Reason, want)
	}
	d = sc.Decide(t0.Add(2*time.Minute+time.Second), 4, nodes(4, 0.62, 0))
	if !strings.Contains(d.Reason, "within the 10% tolerance") {
		t.Errorf("Reason = %q, want the tolerance named", d.Reason)
	}
}

func TestScalerForgetsOldRecommendations(t *testing.T) {
	sc, err := NewScaler(DefaultPolicy())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		sc.Decide(t0.Add(time.Duration(i)*time.Second), 3, nodes(3, 0.6, 0))
	}
	if n := len(sc.recs); n != 120 {
		t.Errorf("%d recommendations kept at one per second, want 120 (the window)", n)
	}
}

// TestSetPolicyKeepsHistory: changing a limit (what `scalepress scale` does)
// keeps the window of recommendations, so a load peak seen before the change
// still holds off a scale-in, and the watched time is not reset.
func TestSetPolicyKeepsHistory(t *testing.T) {
	p := DefaultPolicy()
	p.Min, p.ScaleInWindow = 1, 10*time.Second
	sc, err := NewScaler(p)
	if err != nil {
		t.Fatal(err)
	}
	sc.Decide(t0, 4, nodes(4, 0.1, 0))                    // asks for 1
	sc.Decide(t0.Add(2*time.Second), 4, nodes(4, 0.6, 0)) // asks for 4
	p.Max = 6
	if err := sc.SetPolicy(p); err != nil {
		t.Fatal(err)
	}
	d := sc.Decide(t0.Add(10500*time.Millisecond), 4, nodes(4, 0.1, 0))
	if d.Desired != 4 || !strings.Contains(d.Reason, "up to 4 within the last 10s") {
		t.Errorf("after SetPolicy: desired %d (%s), want 4 held by the earlier peak", d.Desired, d.Reason)
	}
	d = sc.Decide(t0.Add(12500*time.Millisecond), 4, nodes(4, 0.1, 0))
	if d.Action != ScaleIn {
		t.Errorf("once the peak left the window: %s (%s), want a scale-in", d.Action, d.Reason)
	}
	p.Target = 2
	if err := sc.SetPolicy(p); err == nil || sc.Policy().Target != 0.6 {
		t.Errorf("invalid policy: err %v, target now %v", err, sc.Policy().Target)
	}
}
