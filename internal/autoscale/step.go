package autoscale

import (
	"fmt"
	"math"
	"time"
)

// Measured steps (docs/adr/0032-measured-steps.md). On a saturated host CPU
// pressure says that tasks wait for a CPU, not whether more PHP workers
// would serve more requests: a PHP worker also waits on the database, redis
// or a remote call, and while it waits the CPU runs someone else. So the
// scaler asks the group: it adds one node, waits until the node serves, and
// compares the served rate (PHP requests completed per second) over a
// window before the step with one after it. A step that raised the rate by
// at least Policy.StepGain is kept and the next may follow; one that did not
// stops the growth for Policy.StepCooldown, and one that added less than
// half of StepGain is stepped back while the host stays saturated.

// served is the group's served rate, from the nodes' completion counters.
type served struct {
	prev   map[string]int64 // each measured node's counter at the last tick
	total  float64          // completions summed over the ticks, nodes reset or gone left out
	series []servedSample   // total at each tick since the size last changed
	size   int              // the size of the last tick
	since  time.Time        // when the group last became stable: zero while it is not
}

type servedSample struct {
	at    time.Time
	total float64
}

// observe adds one tick's counters. The group is stable when every node it
// counts is in service with metrics, none warms, its size did not change
// and the load asks for more nodes than it has (wants): the rate is
// measured only over a stable stretch, so it is what the group can serve,
// not what the clients happened to ask.
func (s *served) observe(now time.Time, current int, nodes []NodeMetric, in Inputs, wants bool) {
	next := make(map[string]int64, len(nodes))
	for _, n := range nodes {
		if n.Warming || !n.InService || n.MaxChildren <= 0 || math.IsNaN(n.Utilization) {
			continue
		}
		next[n.ID] = n.Done
		if p, ok := s.prev[n.ID]; ok && n.Done >= p {
			s.total += float64(n.Done - p)
		}
	}
	s.prev = next
	stable := wants && in.Warming == 0 && in.InService == current && current == s.size
	s.size = current
	if !stable {
		s.since, s.series = time.Time{}, s.series[:0]
		return
	}
	if s.since.IsZero() {
		s.since = now
	}
	s.series = append(s.series, servedSample{at: now, total: s.total})
}

// rate is the served rate over the last window, counted from a quarter of a
// window after the group became stable (a new node's caches warm, the edges
// learn of it); NaN until a whole window is measured so.
func (s *served) rate(now time.Time, window time.Duration) float64 {
	if s.since.IsZero() || len(s.series) == 0 {
		return math.NaN()
	}
	from := now.Add(-window)
	if from.Before(s.since.Add(window / 4)) {
		return math.NaN()
	}
	// The newest sample at or before from; the series is in time order.
	i := -1
	for j, smp := range s.series {
		if smp.at.After(from) {
			break
		}
		i = j
	}
	if i < 0 {
		return math.NaN()
	}
	first, last := s.series[i], s.series[len(s.series)-1]
	s.series = s.series[i:] // older samples are never needed again
	d := last.at.Sub(first.at).Seconds()
	if d <= 0 {
		return math.NaN()
	}
	return (last.total - first.total) / d
}

// step is a measured step under test, or the growth it stopped.
type step struct {
	from, to int       // 0: no step under test
	before   float64   // the served rate before it
	at       time.Time // when it was decided
	// ceiling: the growth stopped at this size until until, while the
	// host stays saturated; 0: not stopped. why says how, for the hold.
	ceiling int
	until   time.Time
	why     string
}

// stepGiveUp bounds a step that never becomes measurable (its node never
// serves, or the size keeps changing): it is forgotten, without a verdict.
const stepGiveUp = 5 * time.Minute

// judge reaches the verdict on the step under test, if it can: in.Served is
// the rate after it (NaN: not yet), wants whether the load still asks for
// more nodes. back: step back to s.step.ceiling; verdict: the event's text
// (empty when there is none this tick).
func (s *Scaler) judge(now time.Time, current int, in Inputs, wants bool, host Host) (back bool, verdict string) {
	p, st := s.policy, &s.step
	if st.to == 0 {
		return false, ""
	}
	if current != st.to || now.Sub(st.at) > stepGiveUp {
		// The size moved for another reason (a failure, a change of
		// limits) or the new node never served: no verdict.
		*st = step{ceiling: st.ceiling, until: st.until, why: st.why}
		return false, ""
	}
	if !wants && in.Warming == 0 {
		// The new node serves and the load no longer asks for more: the
		// step met it. No verdict on the rate (what the group served was
		// what the clients asked), no stop.
		from, to := st.from, st.to
		*st = step{ceiling: st.ceiling, until: st.until, why: st.why}
		return false, fmt.Sprintf("the step %d → %d nodes met the load (it no longer asks for more): kept", from, to)
	}
	rate := in.Served
	if math.IsNaN(rate) {
		return false, ""
	}
	gain := rate/st.before - 1
	figures := fmt.Sprintf("the step %d → %d nodes took the served rate from %.1f to %.1f PHP requests/s (%+.0f%%)", st.from, st.to, st.before, rate, gain*100)
	from, to := st.from, st.to
	*st = step{}
	switch {
	case gain >= p.StepGain:
		return false, fmt.Sprintf("%s, at least %s: kept", figures, pct(p.StepGain))
	case gain < p.StepGain/2 && s.saturated:
		st.ceiling, st.until = from, now.Add(p.StepCooldown)
		st.why = fmt.Sprintf("%s, less than %s: more workers do not serve more here", figures, pct(p.StepGain/2))
		return true, fmt.Sprintf("%s and the CPU is still saturated (pressure %.0f%%): back to %d nodes, no step past %d until %s",
			st.why, host.CPUPressure*100, from, from, st.until.UTC().Format(time.TimeOnly))
	default:
		st.ceiling, st.until = to, now.Add(p.StepCooldown)
		st.why = fmt.Sprintf("%s, less than %s", figures, pct(p.StepGain))
		return false, fmt.Sprintf("%s: growth stopped at %d nodes until %s", st.why, to, st.until.UTC().Format(time.TimeOnly))
	}
}

// stopped reports whether the growth is stopped at current.
func (s *Scaler) stopped(now time.Time, current int) bool {
	st := &s.step
	if st.ceiling > 0 && !now.Before(st.until) {
		st.ceiling, st.why = 0, ""
	}
	return st.ceiling > 0 && current >= st.ceiling
}
