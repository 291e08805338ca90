package autoscale

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Policy tunes a Scaler.
type Policy struct {
	// Min and Max bound the group size. Min may be 1.
	Min, Max int
	// Target is the utilisation the group is sized for, in (0, 1].
	Target float64
	// Tolerance is the relative band around Target with no change: 0.1
	// keeps the size while utilisation/Target is within 0.9 to 1.1.
	Tolerance float64
	// ScaleInWindow is how long the load must have asked for fewer nodes
	// before the group shrinks; at least 1 s.
	ScaleInWindow time.Duration
	// MaxStepOut caps the nodes added by one decision.
	MaxStepOut int
	// MaxStepIn caps the nodes removed by one decision; the controller's
	// tick sets how often that can happen.
	MaxStepIn int
}

// DefaultPolicy returns Min 2 (one node can fail or be replaced without an
// outage), Max 8, Target 0.6 (headroom for a burst while new nodes boot and
// warm), Tolerance 0.1, ScaleInWindow 120 s, MaxStepOut 4 (a spike can
// bring 1 node to 5 in one decision), MaxStepIn 1 (shrink gently: a
// removed node's cache and opcache are gone).
func DefaultPolicy() Policy {
	return Policy{
		Min:           2,
		Max:           8,
		Target:        0.6,
		Tolerance:     0.1,
		ScaleInWindow: 120 * time.Second,
		MaxStepOut:    4,
		MaxStepIn:     1,
	}
}

// Validate reports every invalid field, each by name.
func (p Policy) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("autoscale: policy: %s: %s", field, fmt.Sprintf(format, args...)))
	}
	if p.Min < 1 {
		bad("Min", "must be at least 1, got %d", p.Min)
	}
	if p.Max < p.Min {
		bad("Max", "must be at least Min (%d), got %d", p.Min, p.Max)
	}
	if !(p.Target > 0 && p.Target <= 1) {
		bad("Target", "must be above 0 and at most 1, got %v", p.Target)
	}
	if !(p.Tolerance >= 0 && p.Tolerance < 1) || math.IsNaN(p.Tolerance) {
		bad("Tolerance", "must be at least 0 and below 1, got %v", p.Tolerance)
	}
	if p.ScaleInWindow < time.Second {
		bad("ScaleInWindow", "must be at least 1s, got %s", p.ScaleInWindow)
	}
	if p.MaxStepOut < 1 {
		bad("MaxStepOut", "must be at least 1, got %d", p.MaxStepOut)
	}
	if p.MaxStepIn < 1 {
		bad("MaxStepIn", "must be at least 1, got %d", p.MaxStepIn)
	}
	return errors.Join(errs...)
}
