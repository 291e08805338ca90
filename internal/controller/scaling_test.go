package controller

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scalepress/scalepress/internal/api"
)

func TestHealerRateLimit(t *testing.T) {
	h := &healer{max: 2, window: time.Minute}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	steps := []struct {
		at   time.Duration
		want bool
	}{
		{0, true}, {time.Second, true}, {2 * time.Second, false}, // a third within the minute waits
		{59 * time.Second, false}, {61 * time.Second, true}, {62 * time.Second, true}, {63 * time.Second, false},
	}
	for _, s := range steps {
		if got := h.allow(t0.Add(s.at)); got != s.want {
			t.Errorf("allow at +%s = %v, want %v", s.at, got, s.want)
		}
	}
}

func TestSettingsApply(t *testing.T) {
	base := settings{Min: 2, Max: 8, Target: 0.6, ScaleInWindow: 2 * time.Minute}
	i := func(n int) *int { return &n }
	f := func(v float64) *float64 { return &v }
	s := func(v string) *string { return &v }
	tests := []struct {
		name    string
		req     api.ScaleRequest
		want    settings
		wantErr string
	}{
		{"nothing changes", api.ScaleRequest{}, base, ""},
		{"min and max", api.ScaleRequest{Min: i(1), Max: i(4)}, settings{Min: 1, Max: 4, Target: 0.6, ScaleInWindow: 2 * time.Minute}, ""},
		{"window", api.ScaleRequest{ScaleInWindow: s("30s")}, settings{Min: 2, Max: 8, Target: 0.6, ScaleInWindow: 30 * time.Second}, ""},
		{"max below min", api.ScaleRequest{Min: i(5), Max: i(3)}, base, "max: must be between min (5)"},
		{"target above 1", api.ScaleRequest{Target: f(1.5)}, base, "target: must be in (0, 1]"},
		{"window too short", api.ScaleRequest{ScaleInWindow: s("10ms")}, base, "scale_in_window: must be at least 1s"},
		{"window not a duration", api.ScaleRequest{ScaleInWindow: s("soon")}, base, "scale_in_window"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := base.apply(tt.req)
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

func TestEventLogPersistsAndWaits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.log")
	l, err := openEventLog(path)
	if err != nil {
		t.Fatal(err)
	}
	l.Add(api.Event{Kind: "scale", Message: "1 → 2"})
	l.Add(api.Event{Kind: "node", Message: "node-2 in service"})
	page := l.Since(context.Background(), 1, 0)
	if len(page.Events) != 1 || page.Events[0].Seq != 2 || page.Next != 2 {
		t.Fatalf("Since(1) = %+v", page)
	}
	done := make(chan api.Events)
	go func() { done <- l.Since(context.Background(), 2, 5*time.Second) }()
	time.Sleep(20 * time.Millisecond)
	l.Add(api.Event{Kind: "heal", Message: "replaced"})
	select {
	case got := <-done:
		if len(got.Events) != 1 || got.Events[0].Kind != "heal" {
			t.Errorf("long poll got %+v", got)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("long poll did not return when an event came")
	}
	l.Close()

	// A restarted controller continues the sequence.
	l2, err := openEventLog(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if e := l2.Add(api.Event{Kind: "config", Message: "again"}); e.Seq != 4 {
		t.Errorf("seq after reopen = %d, want 4", e.Seq)
	}
	if got := l2.countByKind(); got["config"] != 1 || got["scale"] != 0 {
		t.Errorf("counts of this controller: %v", got)
	}
}
