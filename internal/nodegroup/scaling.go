package nodegroup

import (
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
}

func (s Scaling) policy() autoscale.Policy {
	p := autoscale.DefaultPolicy()
	p.Min, p.Max, p.Target, p.ScaleInWindow, p.MaxStepOut = s.Min, s.Max, s.Target, s.ScaleInWindow, s.MaxStep
	return p
}

// inputs are a decision's inputs as an event records them.
func inputs(d autoscale.Decision) map[string]any {
	return map[string]any{
		"utilization": d.Inputs.Utilization, "busy": d.Inputs.Busy, "queue": d.Inputs.Queue,
		"in_service": d.Inputs.InService, "warming": d.Inputs.Warming,
		"current": d.Current, "recommended": d.Recommended,
	}
}
