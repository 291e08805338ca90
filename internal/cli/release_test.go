package cli

import (
	"strings"
	"testing"

	"github.com/scalepress/scalepress/internal/api"
)

// TestPrintReleasesCurrent: the first line says what the current code is
// when no release matches it: nothing recorded yet, or changed since one.
func TestPrintReleasesCurrent(t *testing.T) {
	tests := []struct {
		name string
		doc  api.Releases
		want string
	}{
		{"nothing recorded", api.Releases{Seq: 3, Current: api.Release{Kind: "unrecorded"}},
			"current release (not recorded yet: the first update records it as r1) at files seq 3\n"},
		{"changed since a release", api.Releases{Seq: 9, Current: api.Release{Kind: "unrecorded", Change: "changed since release r2 (from wp-admin or by hand)"},
			Releases: []api.Release{{ID: "r1"}, {ID: "r2", Status: api.ReleaseLive}}},
			"current release (not recorded: the next update or rollback starts from it) at files seq 9\n  changed since release r2 (from wp-admin or by hand)\n"},
		{"a release", api.Releases{Seq: 9, Current: api.Release{ID: "r2", Status: api.ReleaseLive}, Releases: []api.Release{{ID: "r2", Status: api.ReleaseLive}}},
			"current release r2 at files seq 9\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			printReleases(&b, tt.doc)
			if !strings.HasPrefix(b.String(), tt.want) {
				t.Errorf("got\n%s\nwant it to begin\n%s", b.String(), tt.want)
			}
		})
	}
}
