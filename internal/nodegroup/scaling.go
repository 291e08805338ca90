package nodegroup

import (
	"math"
	"time"

	"github.com/scalepress/scalepress/internal/autoscale"
)

// Scaling is the group's size policy: a fixed Count, or target tracking
// between Min and Max. The limits are validated where they are read (the
// config file, `scalepress scale`), once, by internal/config.
type Scaling struct {
	Enabled       bool
	Count         int // the initial size, and the size while autoscaling is off
	Min, Max      int
	Target        float64
	ScaleInWindow time.Duration
	MaxStep       int
	// The host's CPU budget and saturation (autoscale.Policy); zero
	// values turn them off.
	WorkersPerCore         float64
	CPUSaturated, CPUClear float64
	// Measured steps on a saturated host (autoscale.Policy.StepGain…);
	// StepGain 0 turns them off.
	StepGain                 float64
	StepWindow, StepCooldown time.Duration
}

func (s Scaling) policy() autoscale.Policy {
	p := autoscale.DefaultPolicy()
	p.Min, p.Max, p.Target, p.ScaleInWindow, p.MaxStepOut = s.Min, s.Max, s.Target, s.ScaleInWindow, s.MaxStep
	p.WorkersPerCore, p.CPUSaturated, p.CPUClear = s.WorkersPerCore, s.CPUSaturated, s.CPUClear
	p.StepGain, p.StepWindow, p.StepCooldown = s.StepGain, s.StepWindow, s.StepCooldown
	return p
}

// inputs are a decision's inputs as an event records them.
func inputs(d autoscale.Decision) map[string]any {
	return map[string]any{
		"utilization": d.Inputs.Utilization, "busy": d.Inputs.Busy, "queue": d.Inputs.Queue,
		"in_service": d.Inputs.InService, "warming": d.Inputs.Warming,
		"current": d.Current, "recommended": d.Recommended, "cpu_pressure": orNil(d.Inputs.CPUPressure),
		"served_per_s": orNil(d.Inputs.Served),
	}
}

// orNil is a measure for an event: nil when unknown (JSON has no NaN).
func orNil(v float64) any {
	if math.IsNaN(v) {
		return nil
	}
	return v
}
