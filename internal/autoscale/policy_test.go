package autoscale

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Policy)
		field  string // "" means valid
	}{
		{"defaults", func(*Policy) {}, ""},
		{"min 1", func(p *Policy) { p.Min = 1 }, ""},
		{"min equals max", func(p *Policy) { p.Min, p.Max = 3, 3 }, ""},
		{"target 1", func(p *Policy) { p.Target = 1 }, ""},
		{"no tolerance", func(p *Policy) { p.Tolerance = 0 }, ""},
		{"window 1s", func(p *Policy) { p.ScaleInWindow = time.Second }, ""},
		{"min 0", func(p *Policy) { p.Min = 0 }, "Min"},
		{"max below min", func(p *Policy) { p.Min, p.Max = 4, 3 }, "Max"},
		{"target 0", func(p *Policy) { p.Target = 0 }, "Target"},
		{"target above 1", func(p *Policy) { p.Target = 1.2 }, "Target"},
		{"target NaN", func(p *Policy) { p.Target = math.NaN() }, "Target"},
		{"tolerance negative", func(p *Policy) { p.Tolerance = -0.1 }, "Tolerance"},
		{"tolerance 1", func(p *Policy) { p.Tolerance = 1 }, "Tolerance"},
		{"tolerance NaN", func(p *Policy) { p.Tolerance = math.NaN() }, "Tolerance"},
		{"window below 1s", func(p *Policy) { p.ScaleInWindow = 999 * time.Millisecond }, "ScaleInWindow"},
		{"step out", func(p *Policy) { p.MaxStepOut = 0 }, "MaxStepOut"},
		{"step in", func(p *Policy) { p.MaxStepIn = 0 }, "MaxStepIn"},
		{"no budget", func(p *Policy) { p.WorkersPerCore = 0 }, ""},
		{"negative budget", func(p *Policy) { p.WorkersPerCore = -1 }, "WorkersPerCore"},
		{"budget NaN", func(p *Policy) { p.WorkersPerCore = math.NaN() }, "WorkersPerCore"},
		{"saturation off", func(p *Policy) { p.CPUSaturated, p.CPUClear = 0, 0 }, ""},
		{"saturation above 1", func(p *Policy) { p.CPUSaturated = 1.5 }, "CPUSaturated"},
		{"clear above saturated", func(p *Policy) { p.CPUClear = 0.9 }, "CPUClear"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := DefaultPolicy()
			tt.modify(&p)
			checkField(t, p.Validate(), "autoscale: policy: ", tt.field)
		})
	}
}

func TestHealPolicyValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*HealPolicy)
		field  string
	}{
		{"defaults", func(*HealPolicy) {}, ""},
		{"no grace", func(p *HealPolicy) { p.Grace = 0 }, ""},
		{"max", func(p *HealPolicy) { p.MaxReplacements = 0 }, "MaxReplacements"},
		{"window", func(p *HealPolicy) { p.Window = 0 }, "Window"},
		{"grace", func(p *HealPolicy) { p.Grace = -time.Second }, "Grace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := DefaultHealPolicy()
			tt.modify(&p)
			checkField(t, p.Validate(), "autoscale: heal policy: ", tt.field)
		})
	}
}

func checkField(t *testing.T, err error, prefix, field string) {
	t.Helper()
	switch {
	case field == "" && err != nil:
		t.Fatalf("Validate() = %v, want nil", err)
	case field != "" && err == nil:
		t.Fatalf("Validate() = nil, want an error naming %s", field)
	case field != "" && !strings.Contains(err.Error(), prefix+field+": "):
		t.Fatalf("Validate() = %q, want it to name %s", err, field)
	}
}

func TestNewRejectsInvalidPolicies(t *testing.T) {
	if _, err := NewScaler(Policy{}); err == nil {
		t.Error("NewScaler(Policy{}) = nil error")
	}
	if _, err := NewHealer(HealPolicy{}); err == nil {
		t.Error("NewHealer(HealPolicy{}) = nil error")
	}
}
