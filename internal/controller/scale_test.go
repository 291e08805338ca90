package controller

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/config"
)

func TestApplyScale(t *testing.T) {
	base := config.Default().Autoscale
	base.Min, base.Max, base.Target, base.ScaleInWindow = 2, 8, 0.6, 2*time.Minute
	i := func(n int) *int { return &n }
	f := func(v float64) *float64 { return &v }
	s := func(v string) *string { return &v }
	with := func(fn func(*config.Autoscale)) config.Autoscale {
		a := base
		fn(&a)
		return a
	}
	tests := []struct {
		name    string
		req     api.ScaleRequest
		want    config.Autoscale
		wantErr string
	}{
		{"nothing changes", api.ScaleRequest{}, base, ""},
		{"min and max", api.ScaleRequest{Min: i(1), Max: i(4)}, with(func(a *config.Autoscale) { a.Min, a.Max = 1, 4 }), ""},
		{"window", api.ScaleRequest{ScaleInWindow: s("30s")}, with(func(a *config.Autoscale) { a.ScaleInWindow = 30 * time.Second }), ""},
		{"max below min", api.ScaleRequest{Min: i(5), Max: i(3)}, base, "autoscaling.max: must be between autoscaling.min (5)"},
		{"target above 1", api.ScaleRequest{Target: f(1.5)}, base, "autoscaling.target: must be in (0, 1]"},
		{"window too short", api.ScaleRequest{ScaleInWindow: s("10ms")}, base, "autoscaling.scale_in_window: must be at least 1s"},
		{"window not a duration", api.ScaleRequest{ScaleInWindow: s("soon")}, base, "autoscaling.scale_in_window"},
		{"max above the reserved addresses", api.ScaleRequest{Max: i(9)}, base, "autoscaling.max: at most 8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := applyScale(base, tt.req, 8)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Error(diff)
			}
		})
	}
}
