package controller

import (
	"fmt"
	"sync"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/config"
)

// scaler wraps the autoscaling policy with the run-time settings `scalepress
// scale` changes.
type scaler struct {
	mu sync.Mutex
	// fixed keeps the group at count (autoscaling disabled).
	enabled    bool
	count      int
	set        settings
	maxAllowed int
	policy     scalePolicy
}

// scalePolicy is the pure policy (internal/autoscale) the scaler applies.
type scalePolicy interface {
	decide(now time.Time, metrics []nodeMetric, current int) decision
	setSettings(settings)
}

func (s *scaler) decide(now time.Time, metrics []nodeMetric, current int) decision {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.enabled {
		return decision{Desired: s.count, Action: "none", Reason: "autoscaling disabled"}
	}
	return s.policy.decide(now, metrics, current)
}

// healer rate-limits replacements: at most max in any window.
type healer struct {
	mu     sync.Mutex
	max    int
	window time.Duration
	times  []time.Time
}

func (h *healer) allow(now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	kept := h.times[:0]
	for _, t := range h.times {
		if now.Sub(t) < h.window {
			kept = append(kept, t)
		}
	}
	h.times = kept
	if len(h.times) >= h.max {
		return false
	}
	h.times = append(h.times, now)
	return true
}

// settings are the policy knobs `scalepress scale` may change.
type settings struct {
	Min, Max      int
	Target        float64
	ScaleInWindow time.Duration
}

func newScaler(cfg config.Config, saved *api.ScaleRequest) *scaler {
	s := &scaler{enabled: cfg.Autoscale.Enabled, count: cfg.Nodes.Count}
	set := settings{Min: cfg.Autoscale.Min, Max: cfg.Autoscale.Max, Target: cfg.Autoscale.Target, ScaleInWindow: cfg.Autoscale.ScaleInWindow}
	if saved != nil {
		if next, err := set.apply(*saved); err == nil {
			set = next
		}
	}
	s.set = set
	s.maxAllowed = cfg.Autoscale.Max
	s.policy = newPolicy(set, cfg.Autoscale.MaxStep, cfg.Nodes.Count)
	return s
}

func (s settings) apply(req api.ScaleRequest) (settings, error) {
	if req.Min != nil {
		s.Min = *req.Min
	}
	if req.Max != nil {
		s.Max = *req.Max
	}
	if req.Target != nil {
		s.Target = *req.Target
	}
	if req.ScaleInWindow != nil {
		d, err := time.ParseDuration(*req.ScaleInWindow)
		if err != nil {
			return s, fmt.Errorf("scale_in_window: %v", err)
		}
		s.ScaleInWindow = d
	}
	switch {
	case s.Min < 1 || s.Min > 64:
		return s, fmt.Errorf("min: must be 1-64, got %d", s.Min)
	case s.Max < s.Min || s.Max > 64:
		return s, fmt.Errorf("max: must be between min (%d) and 64, got %d", s.Min, s.Max)
	case s.Target <= 0 || s.Target > 1:
		return s, fmt.Errorf("target: must be in (0, 1], got %g", s.Target)
	case s.ScaleInWindow < time.Second:
		return s, fmt.Errorf("scale_in_window: must be at least 1s, got %s", s.ScaleInWindow)
	}
	return s, nil
}

// update applies a run-time change; the node addresses reserved at start
// bound max.
func (s *scaler) update(req api.ScaleRequest) (settings, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	next, err := s.set.apply(req)
	if err != nil {
		return s.set, fmt.Errorf("scale: %w", err)
	}
	if next.Max > s.maxAllowed && s.maxAllowed > 0 {
		return s.set, fmt.Errorf("scale: max: at most %d (autoscaling.max in the config reserves the node addresses)", s.maxAllowed)
	}
	s.set = next
	s.policy.setSettings(next)
	return next, nil
}

func (s *scaler) status(desired int, util float64) *api.Autoscaling {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &api.Autoscaling{Min: s.set.Min, Max: s.set.Max, Desired: desired, Target: s.set.Target, Utilization: util}
}
