package balancer

import (
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestSlowStartWeight(t *testing.T) {
	type point struct {
		Weight  float64
		Warming bool
		State   string
	}
	tests := []struct {
		name      string
		slowStart time.Duration
		after     []time.Duration // cumulative clock advances
		want      []point
	}{
		{
			name:      "ramps from 10% to 100% over 30s",
			slowStart: 30 * time.Second,
			after:     []time.Duration{0, 15 * time.Second, 14 * time.Second, time.Second, time.Hour},
			want: []point{
				{0.1, true, StateWarming},
				{0.55, true, StateWarming},
				{0.97, true, StateWarming},
				{1, false, StateInService},
				{1, false, StateInService},
			},
		},
		{
			name:      "disabled",
			slowStart: 0,
			after:     []time.Duration{0},
			want:      []point{{1, false, StateInService}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.SlowStart = tt.slowStart
			b, clk := newTest(t, cfg, "a")
			var got []point
			for _, d := range tt.after {
				clk.Advance(d)
				ns := state(t, b, "a")
				got = append(got, point{ns.Weight, b.Warming("a"), ns.State})
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateApprox(0, 1e-9)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestSlowStartShare(t *testing.T) {
	// An old node a and a new node b, both idle: b gets w/2 of the picks.
	b, clk := newTest(t, DefaultConfig(), "a")
	clk.Advance(time.Minute)
	b.Update(ups("a", "b"))
	const rounds = 20000
	for _, step := range []struct {
		advance time.Duration
		share   float64
	}{
		{0, 0.05},                 // w = 0.1
		{15 * time.Second, 0.275}, // w = 0.55
		{15 * time.Second, 0.5},   // slow start over
	} {
		clk.Advance(step.advance)
		got := float64(pickCounts(t, b, rounds)["b"]) / rounds
		// σ ≤ 0.0036 at 20000 picks; allow about 5σ.
		if math.Abs(got-step.share) > 0.02 {
			t.Errorf("after %s more: b's share = %.3f, want %.3f", step.advance, got, step.share)
		}
	}
}

func TestSlowStartAgainAfterUnhealthy(t *testing.T) {
	cfg := DefaultConfig()
	b, clk := newTest(t, cfg, "a", "b")
	clk.Advance(time.Minute)
	if b.Warming("a") {
		t.Fatal("a still warming after a minute")
	}
	n := node(t, b, "a")
	for range cfg.Fall {
		b.recordCheck(n, errTest)
	}
	if got := state(t, b, "a").State; got != StateUnhealthy {
		t.Fatalf("after %d failed checks: %s, want %s", cfg.Fall, got, StateUnhealthy)
	}
	for range cfg.Rise {
		b.recordCheck(n, nil)
	}
	if !b.Warming("a") {
		t.Fatalf("a not warming after it came back; state %s", state(t, b, "a").State)
	}
}
