package autoscale

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"
)

// HealPolicy tunes a Healer.
type HealPolicy struct {
	// MaxReplacements is how many nodes may be replaced within Window.
	MaxReplacements int
	// Window is the sliding window of MaxReplacements.
	Window time.Duration
	// Grace is how long a node may be Exited or Unhealthy before it is
	// replaced: its supervisor restarts a crashed process with backoff, and
	// a short health blip should not cost a node.
	Grace time.Duration
}

// Validate reports every invalid field, each by name.
func (p HealPolicy) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("autoscale: heal policy: %s: %s", field, fmt.Sprintf(format, args...)))
	}
	if p.MaxReplacements < 1 {
		bad("MaxReplacements", "must be at least 1, got %d", p.MaxReplacements)
	}
	if p.Window < time.Second {
		bad("Window", "must be at least 1s, got %s", p.Window)
	}
	if p.Grace < 0 {
		bad("Grace", "must not be negative, got %s", p.Grace)
	}
	return errors.Join(errs...)
}

// Condition is how a node is doing, as the controller sees it.
type Condition string

// Conditions.
const (
	// Healthy: running and passing checks, or still starting; never
	// replaced.
	Healthy Condition = "healthy"
	// Exited: the process is not running; its supervisor may restart it.
	Exited Condition = "exited"
	// Unhealthy: running but failing health checks.
	Unhealthy Condition = "unhealthy"
	// Failed: the supervisor gave up restarting it. Replaced without grace.
	Failed Condition = "failed"
)

// NodeHealth is one node's condition at one tick.
type NodeHealth struct {
	ID        string
	Condition Condition
	// Since is when the node entered Condition: the exit, the first failed
	// check of the current run.
	Since time.Time
	// Detail is the last error, for the reason text.
	Detail string
}

// Replacement is one node in a HealDecision.
type Replacement struct {
	ID        string
	Condition Condition
	Reason    string
	// NotBefore is, for a deferred node, the earliest time it may be
	// replaced; zero for a node to replace now.
	NotBefore time.Time
}

// HealDecision says which nodes to replace now and which later.
type HealDecision struct {
	At       time.Time
	Replace  []Replacement
	Deferred []Replacement
}

// Healer decides node replacements, rate-limited by a sliding window. A
// node is ordered replaced once: while the controller still reports it, it
// appears in neither list. Not safe for concurrent use.
type Healer struct {
	policy   HealPolicy
	replaced []time.Time         // replacements within the window, oldest first
	ordered  map[string]struct{} // IDs ordered replaced and still reported
}

// NewHealer returns a Healer for p.
func NewHealer(p HealPolicy) (*Healer, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &Healer{policy: p, ordered: make(map[string]struct{})}, nil
}

// Decide takes the condition of every node at now and returns the nodes to
// replace now — Failed ones first, then the longest failing — and the ones
// deferred by the grace period or the rate limit, with reasons. The caller
// must replace every node in Replace. Calls must come with non-decreasing
// now.
func (h *Healer) Decide(now time.Time, nodes []NodeHealth) HealDecision {
	p := h.policy
	d := HealDecision{At: now}

	i := 0
	for i < len(h.replaced) && now.Sub(h.replaced[i]) >= p.Window {
		i++
	}
	h.replaced = append(h.replaced[:0], h.replaced[i:]...)

	reported := make(map[string]bool, len(nodes))
	var due []NodeHealth
	for _, n := range nodes {
		reported[n.ID] = true
		if _, ok := h.ordered[n.ID]; ok || n.Condition == Healthy || n.Condition == "" {
			continue
		}
		if n.Condition != Failed && now.Sub(n.Since) < p.Grace {
			d.Deferred = append(d.Deferred, Replacement{
				ID: n.ID, Condition: n.Condition, NotBefore: n.Since.Add(p.Grace),
				Reason: fmt.Sprintf("%s for %s%s: replaced after %s grace",
					n.Condition, now.Sub(n.Since).Round(time.Second), detail(n), p.Grace),
			})
			continue
		}
		due = append(due, n)
	}
	for id := range h.ordered {
		if !reported[id] {
			delete(h.ordered, id) // gone: the replacement happened
		}
	}

	slices.SortFunc(due, func(a, b NodeHealth) int {
		if (a.Condition == Failed) != (b.Condition == Failed) {
			if a.Condition == Failed {
				return -1
			}
			return 1
		}
		return cmp.Or(a.Since.Compare(b.Since), cmp.Compare(a.ID, b.ID))
	})
	for _, n := range due {
		what := fmt.Sprintf("%s for %s%s", n.Condition, now.Sub(n.Since).Round(time.Second), detail(n))
		if n.Condition == Failed {
			what = fmt.Sprintf("failed: its supervisor gave up%s", detail(n))
		}
		if len(h.replaced) < p.MaxReplacements {
			h.replaced = append(h.replaced, now)
			h.ordered[n.ID] = struct{}{}
			d.Replace = append(d.Replace, Replacement{ID: n.ID, Condition: n.Condition,
				Reason: fmt.Sprintf("%s: replace (%d of %d per %s)", what, len(h.replaced), p.MaxReplacements, p.Window)})
			continue
		}
		next := h.replaced[0].Add(p.Window)
		d.Deferred = append(d.Deferred, Replacement{ID: n.ID, Condition: n.Condition, NotBefore: next,
			Reason: fmt.Sprintf("%s: rate limit of %d replacements per %s reached, next in %s",
				what, p.MaxReplacements, p.Window, next.Sub(now).Round(time.Second))})
	}
	return d
}

func detail(n NodeHealth) string {
	if n.Detail == "" {
		return ""
	}
	return " (" + n.Detail + ")"
}
