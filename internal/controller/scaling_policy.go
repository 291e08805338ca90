package controller

import (
	"time"

	"github.com/scalepress/scalepress/internal/autoscale"
)

// autoscalePolicy adapts internal/autoscale (pure policy) to the scaler.
type autoscalePolicy struct {
	maxStep int
	sc      *autoscale.Scaler
}

func newPolicy(s settings, maxStep, _ int) *autoscalePolicy {
	p := &autoscalePolicy{maxStep: maxStep}
	p.setSettings(s)
	return p
}

func (p *autoscalePolicy) setSettings(s settings) {
	pol := autoscale.DefaultPolicy()
	pol.Min, pol.Max, pol.Target, pol.ScaleInWindow, pol.MaxStepOut = s.Min, s.Max, s.Target, s.ScaleInWindow, p.maxStep
	sc, err := autoscale.NewScaler(pol)
	if err != nil {
		return // settings were validated; keep the previous scaler
	}
	p.sc = sc
}

func (p *autoscalePolicy) decide(now time.Time, metrics []nodeMetric, current int) decision {
	in := make([]autoscale.NodeMetric, 0, len(metrics))
	for _, m := range metrics {
		in = append(in, autoscale.NodeMetric{
			ID: m.ID, InService: m.InService, Warming: m.Warming,
			Utilization: m.Utilization, ListenQueue: m.Queue, MaxChildren: m.Children,
		})
	}
	d := p.sc.Decide(now, current, in)
	return decision{
		Desired: d.Desired, Action: string(d.Action), Reason: d.Reason,
		Inputs: map[string]any{
			"utilization": d.Inputs.Utilization, "busy": d.Inputs.Busy, "queue": d.Inputs.Queue,
			"in_service": d.Inputs.InService, "warming": d.Inputs.Warming,
			"current": d.Current, "recommended": d.Recommended,
		},
	}
}
