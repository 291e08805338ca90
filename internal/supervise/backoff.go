package supervise

import "time"

// backoffDelay returns the delay before the restart that follows n
// consecutive restarts: initial·2ⁿ, capped at limit. It is pure so that the
// sequence can be tested without a clock.
func backoffDelay(initial, limit time.Duration, n int) time.Duration {
	if initial >= limit {
		return limit
	}
	d := initial
	for range n {
		if d > limit-d { // d*2 > limit, written so it cannot overflow
			return limit
		}
		d *= 2
	}
	return d
}

// restartTracker decides, for each unrequested exit, whether to restart and
// after which delay. Time is passed in by the caller, so the give-up window
// is testable with plain time.Time values.
type restartTracker struct {
	policy      RestartPolicy // defaults applied
	consecutive int           // restarts since the last run that lasted > ResetAfter
	exits       []time.Time   // exits within the last Window, oldest first
}

func newRestartTracker(policy RestartPolicy) *restartTracker {
	return &restartTracker{policy: policy.withDefaults()}
}

// exited records an exit at now of a run that lasted ranFor. It returns the
// delay before the next start and how many exits fall within the window; when
// giveUp is true there must be no restart.
func (t *restartTracker) exited(now time.Time, ranFor time.Duration) (delay time.Duration, exits int, giveUp bool) {
	p := t.policy
	if ranFor > p.ResetAfter {
		t.consecutive = 0
	}
	if p.MaxRestarts >= 0 {
		cut := 0
		for cut < len(t.exits) && now.Sub(t.exits[cut]) >= p.Window {
			cut++
		}
		t.exits = append(t.exits[cut:], now)
		exits = len(t.exits)
		// exits-1 restarts have happened inside the window already; one more
		// would exceed MaxRestarts.
		if exits > p.MaxRestarts {
			return 0, exits, true
		}
	}
	delay = backoffDelay(p.InitialBackoff, p.MaxBackoff, t.consecutive)
	t.consecutive++
	return delay, exits, false
}
