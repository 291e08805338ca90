package autoscale

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// hostTick is one tick on a host with the given CPU pressure.
type hostTick struct {
	current  int
	nodes    []NodeMetric
	pressure float64
}

func runHost(t *testing.T, p Policy, cores int, ticks []hostTick) ([]outcome, []string) {
	t.Helper()
	sc, err := NewScaler(p)
	if err != nil {
		t.Fatal(err)
	}
	var got []outcome
	var reasons []string
	for i, tk := range ticks {
		d := sc.DecideOn(t0.Add(time.Duration(i)*5*time.Second), tk.current, tk.nodes, Host{Cores: cores, CPUPressure: tk.pressure})
		got = append(got, outcome{d.Desired, d.Action})
		reasons = append(reasons, d.Reason)
	}
	return got, reasons
}

func TestHostCapacity(t *testing.T) {
	p := DefaultPolicy()
	p.Min, p.Max = 1, 8
	// The budget and the plain saturation hold; measured steps have
	// their own test (TestMeasuredSteps).
	p.WorkersPerCore, p.StepGain = 4, 0
	busy := func(n int) []NodeMetric { return nodes(n, 1, 20) } // 10 workers each, all busy, 20 queued each: asks for many more
	tests := []struct {
		name   string
		policy func(*Policy)
		cores  int
		ticks  []hostTick
		want   []outcome
		reason string // in the last decision
	}{
		{
			name:   "a queue with idle CPU (a slow remote call) scales out, up to the budget",
			cores:  8, // 8 × 4 = 32 workers: 3 nodes of 10
			ticks:  []hostTick{{1, busy(1), 0.05}},
			want:   []outcome{{3, ScaleOut}},
			reason: "capped by this host's CPU budget: 8 cores × 4 workers per core = 32 PHP workers: 3 nodes of 10",
		},
		{
			name:   "at the budget the group stays, whatever the queue",
			cores:  8,
			ticks:  []hostTick{{3, busy(3), 0.05}, {3, busy(3), 0.05}},
			want:   []outcome{{3, HostFull}, {3, HostFull}},
			reason: "held at 3, this host's CPU budget",
		},
		{
			name:   "no budget without a core count",
			cores:  0,
			ticks:  []hostTick{{1, busy(1), 0.05}},
			want:   []outcome{{5, ScaleOut}},
			reason: "1 → 5 nodes",
		},
		{
			name:   "the budget never goes below min",
			policy: func(p *Policy) { p.Min = 4 },
			cores:  2, // 8 workers: not even one node of 10
			ticks:  []hostTick{{4, busy(4), 0.05}},
			want:   []outcome{{4, HostFull}},
			reason: "held at 4",
		},
		{
			name:  "a saturated CPU stops scale-out, with hysteresis",
			cores: 64,
			ticks: []hostTick{
				{2, busy(2), 0.85}, // saturated
				{2, busy(2), 0.7},  // between clear and saturated: still saturated
				{2, busy(2), 0.79},
				{2, busy(2), 0.5}, // cleared: scale out
			},
			want:   []outcome{{2, HostFull}, {2, HostFull}, {2, HostFull}, {6, ScaleOut}},
			reason: "2 → 6 nodes",
		},
		{
			name:  "pressure around the threshold does not flap",
			cores: 64,
			ticks: []hostTick{
				{2, busy(2), 0.81}, {2, busy(2), 0.79}, {2, busy(2), 0.81}, {2, busy(2), 0.78}, {2, busy(2), 0.8},
			},
			want: []outcome{{2, HostFull}, {2, HostFull}, {2, HostFull}, {2, HostFull}, {2, HostFull}},
		},
		{
			name:   "the saturation names the pressure",
			cores:  64,
			ticks:  []hostTick{{2, busy(2), 0.93}},
			want:   []outcome{{2, HostFull}},
			reason: "this host's CPU is saturated (pressure 93%, saturated from 80% until below 60%)",
		},
		{
			name:   "unknown pressure is not saturation",
			cores:  64,
			ticks:  []hostTick{{2, busy(2), math.NaN()}},
			want:   []outcome{{6, ScaleOut}},
			reason: "2 → 6 nodes",
		},
		{
			name:   "saturation check off",
			policy: func(p *Policy) { p.CPUSaturated, p.CPUClear = 0, 0 },
			cores:  64,
			ticks:  []hostTick{{2, busy(2), 1}},
			want:   []outcome{{6, ScaleOut}},
		},
		{
			name:  "no second scale-out while the new node warms, then one",
			cores: 64,
			ticks: []hostTick{
				{2, busy(2), 0.1},
				{6, join(busy(2), warming(4)), 0.1},
				{6, join(busy(2), warming(4)), 0.1},
				{6, busy(6), 0.1},
			},
			want:   []outcome{{6, ScaleOut}, {6, None}, {6, None}, {8, ScaleOut}},
			reason: "6 → 8 nodes (asks for 30, capped at max 8)",
		},
		{
			name:  "saturated host still scales in when the load falls",
			cores: 64,
			policy: func(p *Policy) {
				p.ScaleInWindow = 10 * time.Second
			},
			ticks: []hostTick{
				{4, nodes(4, 0.05, 0), 0.95}, {4, nodes(4, 0.05, 0), 0.95}, {4, nodes(4, 0.05, 0), 0.95},
			},
			want: []outcome{{4, None}, {4, None}, {3, ScaleIn}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := p
			if tt.policy != nil {
				tt.policy(&p)
			}
			got, reasons := runHost(t, p, tt.cores, tt.ticks)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("decisions (-want +got):\n%s\nreasons:\n%s", diff, strings.Join(reasons, "\n"))
			}
			if last := reasons[len(reasons)-1]; !strings.Contains(last, tt.reason) {
				t.Errorf("last reason %q\nwant it to contain %q", last, tt.reason)
			}
		})
	}
}
