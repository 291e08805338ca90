package autoscale

import (
	"fmt"
	"math"
	"time"
)

// Action names what a Decision does. Act on Decision.Desired; the Action
// explains it.
type Action string

// Actions.
const (
	// ScaleOut: the load asks for more nodes.
	ScaleOut Action = "scale-out"
	// ScaleIn: the load asked for fewer nodes for a whole window.
	ScaleIn Action = "scale-in"
	// None: the size stays (within tolerance, waiting for the window, nodes
	// warming, no metrics, or held at Min).
	None Action = "none"
	// AtMin: the group was below Min and grows to it.
	AtMin Action = "min"
	// AtMax: the group is above Max and shrinks to it, or the load asks
	// for more than Max and the group stays at Max — the alert-worthy case.
	AtMax Action = "max"
	// HostFull: the load asks for more nodes but this host cannot run
	// them: its CPU budget (Policy.WorkersPerCore) is used up, or its CPU
	// is saturated and more workers did not serve more (a measured step,
	// Policy.StepGain). The group stays; a launcher that places nodes on
	// several hosts may start them on another host with room (the hook
	// for that is this Action).
	HostFull Action = "host-full"
)

// Host is the machine new nodes would start on, at one tick.
type Host struct {
	// Cores is its CPU count; 0: unknown (no budget).
	Cores int
	// CPUPressure is the share of time, 0 to 1, in which some runnable
	// task waited for a CPU (/proc/pressure/cpu "some" avg10); NaN: unknown.
	CPUPressure float64
}

// UnknownHost is a Host without measurements: no budget, no saturation.
var UnknownHost = Host{CPUPressure: math.NaN()}

// Decision is the outcome of one tick, meant to be recorded as an event.
type Decision struct {
	At      time.Time
	Current int
	Desired int
	// Recommended is what the load alone asks for, bounded by Min and Max,
	// before step limits and stabilisation; 0 without metrics.
	Recommended int
	Action      Action
	Reason      string
	Inputs      Inputs
	// Verdict: a measured step was judged at this tick (kept, stopped or
	// stepped back); Reason begins with the figures. Worth an event even
	// when the size does not move.
	Verdict bool
}

// Scaler applies a Policy tick after tick. It keeps the recommendations of
// the last ScaleInWindow. It is not safe for concurrent use: the
// controller's scaling loop owns it.
type Scaler struct {
	policy    Policy
	since     time.Time // first tick of the current run of ticks with metrics; zero without
	recs      []recommendation
	saturated bool // the host's CPU pressure went over CPUSaturated and not yet below CPUClear
	served    served
	step      step // the measured step under test, or the growth it stopped
}

type recommendation struct {
	at    time.Time
	nodes int
}

// NewScaler returns a Scaler for p.
func NewScaler(p Policy) (*Scaler, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &Scaler{policy: p}, nil
}

// Policy returns the scaler's policy.
func (s *Scaler) Policy() Policy { return s.policy }

// SetPolicy changes the policy and keeps what the scaler has seen: the
// recommendations of the window and how long metrics have come without a
// gap, so a changed limit does not restart the scale-in stabilisation.
func (s *Scaler) SetPolicy(p Policy) error {
	if err := p.Validate(); err != nil {
		return err
	}
	s.policy = p
	return nil
}

// Decide takes one tick: now, current — the group size the controller
// intends, counting pending, warming, in-service and unhealthy nodes but not
// those already being removed — and the metrics of the nodes. Calls must
// come with non-decreasing now.
func (s *Scaler) Decide(now time.Time, current int, nodes []NodeMetric) Decision {
	return s.DecideOn(now, current, nodes, UnknownHost)
}

// DecideOn is Decide for a group whose new nodes start on host: the group
// does not grow past the host's CPU budget, nor while the host's CPU is
// saturated, nor while a node it launched still warms (a start costs CPU,
// and the new node's capacity is not measured yet).
func (s *Scaler) DecideOn(now time.Time, current int, nodes []NodeMetric, host Host) Decision {
	p := s.policy
	current = max(current, 0)
	in := measure(nodes)
	in.CPUPressure = host.CPUPressure
	d := Decision{At: now, Current: current, Desired: current, Action: None, Inputs: in}
	s.forget(now)
	if pr := host.CPUPressure; p.CPUSaturated > 0 && !math.IsNaN(pr) {
		switch {
		case !s.saturated && pr >= p.CPUSaturated:
			s.saturated = true
		case s.saturated && pr < p.CPUClear:
			s.saturated = false
			s.step.ceiling, s.step.why = 0, "" // a stopped growth ends with the episode
		}
	}
	budget, budgetWhy := s.budget(nodes, host)
	raw := 0 // what the load asks for, unbounded; 0 without metrics
	ratio, inBand := 0.0, false
	if in.InService > 0 {
		ratio = in.Utilization / p.Target
		inBand = math.Abs(ratio-1) <= p.Tolerance
		if inBand {
			raw = current
		} else {
			// The epsilon keeps 3 × 0.6/0.6 = 3.0000000000000004 at 3.
			raw = int(math.Ceil(float64(in.InService)*ratio - 1e-9))
		}
		d.Recommended = min(max(raw, p.Min), p.Max)
		s.recs = append(s.recs, recommendation{at: now, nodes: d.Recommended})
		if s.since.IsZero() {
			s.since = now
		}
	} else {
		s.since = time.Time{} // a gap: the window must fill again before a scale-in
	}
	s.served.observe(now, current, nodes, in, raw > current)
	d.Inputs.Served = s.served.rate(now, p.StepWindow)
	in.Served = d.Inputs.Served
	back, verdict := s.judge(now, current, in, raw > current, host)
	if back {
		d.Desired, d.Action, d.Reason, d.Verdict = s.step.ceiling, ScaleIn, verdict, true
		return d
	}

	load := s.describe(in, ratio)

	switch {
	case current < p.Min:
		d.Desired, d.Action = p.Min, AtMin
		d.Reason = fmt.Sprintf("%d nodes below min %d: %d → %d nodes", current, p.Min, current, p.Min)
	case current > p.Max:
		d.Desired, d.Action = p.Max, AtMax
		d.Reason = fmt.Sprintf("%d nodes above max %d: %d → %d nodes", current, p.Max, current, p.Max)
	case in.InService == 0:
		d.Reason = fmt.Sprintf("no in-service node reports metrics (%d warming): keep %d nodes", in.Warming, current)
	case inBand:
		d.Reason = fmt.Sprintf("%s, within the %s tolerance: keep %d nodes", load, pct(p.Tolerance), current)
	case raw == current:
		d.Reason = fmt.Sprintf("%s asks for %d nodes: keep %d nodes", load, raw, current)
	case raw > current && current == p.Max:
		d.Action = AtMax
		d.Reason = fmt.Sprintf("%s asks for %d nodes: held at max %d", load, raw, p.Max)
	case raw > current && in.Warming > 0:
		d.Reason = fmt.Sprintf("%s asks for %d nodes: no scale-out while %d warming (a start costs CPU, and the new capacity is not measured yet)", load, d.Recommended, in.Warming)
	case raw > current && current >= budget:
		d.Action = HostFull
		d.Reason = fmt.Sprintf("%s asks for %d nodes: held at %d, this host's CPU budget (%s)", load, d.Recommended, current, budgetWhy)
	case raw > current && s.saturated && p.StepGain > 0 && s.stopped(now, current):
		d.Action = HostFull
		d.Reason = fmt.Sprintf("%s asks for %d nodes, but this host's CPU is saturated (pressure %.0f%%) and %s: held at %d until %s or until the pressure is below %.0f%%",
			load, d.Recommended, host.CPUPressure*100, s.step.why, current, s.step.until.UTC().Format(time.TimeOnly), p.CPUClear*100)
	case raw > current && s.saturated && p.StepGain > 0 && in.Served > 0:
		d.Desired, d.Action = current+1, ScaleOut
		s.step = step{from: current, to: current + 1, before: in.Served, at: now}
		d.Reason = fmt.Sprintf("%s asks for %d nodes and this host's CPU is saturated (pressure %.0f%%): a measured step, %d → %d nodes, kept if it raises the served rate (%.1f PHP requests/s over %s) by at least %s",
			load, d.Recommended, host.CPUPressure*100, current, current+1, in.Served, p.StepWindow, pct(p.StepGain))
	case raw > current && s.saturated && p.StepGain > 0 && math.IsNaN(in.Served):
		what := "before a step"
		if s.step.to != 0 {
			what = fmt.Sprintf("after the step %d → %d nodes", s.step.from, s.step.to)
		}
		d.Reason = fmt.Sprintf("%s asks for %d nodes and this host's CPU is saturated (pressure %.0f%%): measuring the served rate %s (%s once the size holds); keep %d nodes",
			load, d.Recommended, host.CPUPressure*100, what, p.StepWindow+p.StepWindow/4, current)
	case raw > current && s.saturated:
		d.Action = HostFull
		d.Reason = fmt.Sprintf("%s asks for %d nodes, but this host's CPU is saturated (pressure %.0f%%, saturated from %.0f%% until below %.0f%%): requests wait for a CPU, not for a worker, and a node adds workers but no CPU; keep %d nodes",
			load, d.Recommended, host.CPUPressure*100, p.CPUSaturated*100, p.CPUClear*100, current)
	case raw > current:
		d.Desired, d.Action = min(d.Recommended, current+p.MaxStepOut, max(budget, current)), ScaleOut
		d.Reason = fmt.Sprintf("%s: %d → %d nodes", load, current, d.Desired)
		switch {
		case d.Desired == budget && budget < d.Recommended:
			d.Reason += fmt.Sprintf(" (asks for %d, capped by this host's CPU budget: %s)", d.Recommended, budgetWhy)
		case d.Desired < d.Recommended:
			d.Reason += fmt.Sprintf(" (asks for %d, step limit %d)", d.Recommended, p.MaxStepOut)
		case raw > p.Max:
			d.Reason += fmt.Sprintf(" (asks for %d, capped at max %d)", raw, p.Max)
		}
	case current == p.Min:
		d.Reason = fmt.Sprintf("%s asks for %d nodes: held at min %d", load, raw, p.Min)
	case in.Warming > 0:
		d.Reason = fmt.Sprintf("%s asks for %d nodes: no scale-in while %d warming", load, d.Recommended, in.Warming)
	case now.Sub(s.since) < p.ScaleInWindow:
		d.Reason = fmt.Sprintf("%s asks for %d nodes: scale-in waits until the load has been watched for %s (%s so far)",
			load, d.Recommended, p.ScaleInWindow, now.Sub(s.since).Round(time.Second))
	default:
		peak := s.peak()
		if peak >= current {
			d.Reason = fmt.Sprintf("%s asks for %d nodes, but up to %d within the last %s: keep %d nodes",
				load, d.Recommended, peak, p.ScaleInWindow, current)
			break
		}
		d.Desired, d.Action = max(peak, current-p.MaxStepIn), ScaleIn
		d.Reason = fmt.Sprintf("%s, at most %d nodes needed for %s: %d → %d nodes", load, peak, p.ScaleInWindow, current, d.Desired)
		if d.Desired > peak {
			d.Reason += fmt.Sprintf(" (step limit %d)", p.MaxStepIn)
		}
	}
	if verdict != "" {
		d.Verdict = true
		d.Reason = verdict + "; " + d.Reason
	}
	return d
}

// budget is the most nodes the host's CPU budget runs (never below Min),
// and how it was reached; math.MaxInt without a budget.
func (s *Scaler) budget(nodes []NodeMetric, host Host) (int, string) {
	p := s.policy
	children := 0
	for _, n := range nodes {
		children = max(children, n.MaxChildren)
	}
	if p.WorkersPerCore <= 0 || host.Cores <= 0 || children <= 0 {
		return math.MaxInt, ""
	}
	workers := int(float64(host.Cores) * p.WorkersPerCore)
	n := max(workers/children, p.Min, 1)
	return n, fmt.Sprintf("%d cores × %g workers per core = %d PHP workers: %d nodes of %d", host.Cores, p.WorkersPerCore, workers, n, children)
}

// forget drops recommendations older than the window.
func (s *Scaler) forget(now time.Time) {
	i := 0
	for i < len(s.recs) && now.Sub(s.recs[i].at) >= s.policy.ScaleInWindow {
		i++
	}
	s.recs = append(s.recs[:0], s.recs[i:]...)
}

// peak is the highest recommendation within the window.
func (s *Scaler) peak() int {
	m := 0
	for _, r := range s.recs {
		m = max(m, r.nodes)
	}
	return m
}

// describe renders the load, e.g. "utilisation 0.92 > target 0.60 (+53%)"
// or, with a queue, "utilisation 1.40 (busy 1.00 + queue 12) > …".
func (s *Scaler) describe(in Inputs, ratio float64) string {
	if in.InService == 0 {
		return "no metrics"
	}
	u := fmt.Sprintf("utilisation %.2f", in.Utilization)
	if in.Queue > 0 {
		u = fmt.Sprintf("utilisation %.2f (busy %.2f + queue %d)", in.Utilization, in.Busy, in.Queue)
	}
	cmp := "="
	switch {
	case ratio > 1:
		cmp = ">"
	case ratio < 1:
		cmp = "<"
	}
	return fmt.Sprintf("%s %s target %.2f (%+.0f%%)", u, cmp, s.policy.Target, (ratio-1)*100)
}

func pct(f float64) string { return fmt.Sprintf("%.0f%%", f*100) }
