package backup

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestRetentionPlan(t *testing.T) {
	now := time.Date(2026, 12, 7, 10, 30, 0, 0, time.UTC)
	at := func(d time.Duration) Dated { return Dated{ID: NewID(now.Add(-d)), Time: now.Add(-d)} }
	id := func(d time.Duration) string { return NewID(now.Add(-d)) }
	tests := []struct {
		name       string
		r          Retention
		backups    []Dated
		keep, drop []string
	}{
		{name: "none", r: Retention{KeepHourly: 24, KeepDaily: 7}},
		{
			name: "the newest is kept with no retention at all", r: Retention{},
			backups: []Dated{at(time.Hour), at(2 * time.Hour)},
			keep:    []string{id(time.Hour)}, drop: []string{id(2 * time.Hour)},
		},
		{
			name: "newest of each hour", r: Retention{KeepHourly: 3},
			backups: []Dated{at(10 * time.Minute), at(20 * time.Minute), at(40 * time.Minute), at(90 * time.Minute), at(200 * time.Minute)},
			// 10:20 and 10:10 are this hour (10:20 newest), 09:50 and 09:00 the
			// one before (09:50 newest); 07:10 is outside three hours.
			keep: []string{id(10 * time.Minute), id(40 * time.Minute)},
			drop: []string{id(20 * time.Minute), id(90 * time.Minute), id(200 * time.Minute)},
		},
		{
			name: "newest of each day beyond the hours", r: Retention{KeepHourly: 1, KeepDaily: 3},
			backups: []Dated{at(5 * time.Minute), at(2 * time.Hour), at(11 * time.Hour), at(13 * time.Hour), at(30 * time.Hour), at(80 * time.Hour)},
			// days: 7th (10:25, 08:30), 6th (23:30, 21:30, 04:30), 5th none;
			// the 4th is outside three days.
			keep: []string{id(5 * time.Minute), id(11 * time.Hour)},
			drop: []string{id(2 * time.Hour), id(13 * time.Hour), id(30 * time.Hour), id(80 * time.Hour)},
		},
		{
			name: "a backup from the future is kept", r: Retention{KeepHourly: 1},
			backups: []Dated{at(-time.Hour), at(5 * time.Minute), at(3 * time.Hour)},
			keep:    []string{id(-time.Hour), id(5 * time.Minute)}, drop: []string{id(3 * time.Hour)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keep, drop := tt.r.Plan(tt.backups, now)
			if d := cmp.Diff(tt.keep, keep); d != "" {
				t.Errorf("keep (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tt.drop, drop); d != "" {
				t.Errorf("remove (-want +got):\n%s", d)
			}
		})
	}
}
