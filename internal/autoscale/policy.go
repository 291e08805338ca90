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

	// WorkersPerCore is the host's CPU budget: the group never grows past
	// Host.Cores × WorkersPerCore PHP workers (nor below Min); 0 sets no
	// budget.
	WorkersPerCore float64
	// CPUSaturated is the host's CPU pressure (Host.CPUPressure, the share
	// of time runnable tasks waited for a CPU) from which the host counts
	// as saturated: no scale-out on it, since a node adds workers but no
	// CPU; it stays saturated until the pressure falls below CPUClear
	// (hysteresis). 0 disables the check.
	CPUSaturated, CPUClear float64

	// StepGain turns the growth of a saturated host into measured steps
	// (docs/adr/0032-measured-steps.md): while the CPU is saturated the
	// group grows one node at a time, and keeps growing only while each
	// step raised the served rate (PHP requests completed per second,
	// NodeMetric.Done) by at least this share; a step that added less
	// stops the growth, one that added less than half of it is stepped
	// back. 0 turns the steps off: a saturated host then holds the size.
	StepGain float64
	// StepWindow is how long the served rate is measured before a step
	// and, once the new node is in service and a quarter of a window has
	// passed, after it; at least 1 s.
	StepWindow time.Duration
	// StepCooldown is how long a stopped growth stays stopped while the
	// host stays saturated: no step past the size it stopped at before
	// then; at least StepWindow.
	StepCooldown time.Duration
}

// DefaultPolicy returns Min 2 (one node can fail or be replaced without an
// outage), Max 8, Target 0.6 (headroom for a burst while new nodes boot and
// warm), Tolerance 0.1, ScaleInWindow 120 s, MaxStepOut 4 (a spike can
// bring 1 node to 5 in one decision), MaxStepIn 1 (shrink gently: a
// removed node's cache and opcache are gone), a budget of 8 PHP workers
// per core, and a host saturated from a CPU pressure of 80 % until it is
// below 60 % (docs/adr/0024-capacity.md), within which a saturated host
// grows by measured steps of one node while each adds at least 10 % to the
// served rate, measured over 15 s, stopped for 10 minutes once one does not
// (docs/adr/0032-measured-steps.md).
func DefaultPolicy() Policy {
	return Policy{
		Min:           2,
		Max:           8,
		Target:        0.6,
		Tolerance:     0.1,
		ScaleInWindow: 120 * time.Second,
		MaxStepOut:    4,
		MaxStepIn:     1,

		WorkersPerCore: 8,
		CPUSaturated:   0.8,
		CPUClear:       0.6,

		StepGain:     0.1,
		StepWindow:   15 * time.Second,
		StepCooldown: 10 * time.Minute,
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
	if !(p.WorkersPerCore >= 0 && p.WorkersPerCore <= 1024) {
		bad("WorkersPerCore", "must be 0 (no budget) to 1024, got %v", p.WorkersPerCore)
	}
	if !(p.CPUSaturated >= 0 && p.CPUSaturated <= 1) {
		bad("CPUSaturated", "must be 0 (off) to 1, got %v", p.CPUSaturated)
	}
	if !(p.CPUClear >= 0 && p.CPUClear <= p.CPUSaturated) && p.CPUSaturated > 0 {
		bad("CPUClear", "must be 0 to CPUSaturated (%v), got %v", p.CPUSaturated, p.CPUClear)
	}
	if !(p.StepGain >= 0 && p.StepGain <= 10) {
		bad("StepGain", "must be 0 (off) to 10, got %v", p.StepGain)
	}
	if p.StepGain > 0 && p.StepWindow < time.Second {
		bad("StepWindow", "must be at least 1s, got %s", p.StepWindow)
	}
	if p.StepGain > 0 && p.StepCooldown < p.StepWindow {
		bad("StepCooldown", "must be at least StepWindow (%s), got %s", p.StepWindow, p.StepCooldown)
	}
	return errors.Join(errs...)
}
