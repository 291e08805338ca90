package controller

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scalepress/scalepress/internal/galera"
)

func TestRouterMembers(t *testing.T) {
	v := func(id, state string) galera.MemberView {
		return galera.MemberView{ID: id, Addr: id + ":3306", State: state}
	}
	for _, tt := range []struct {
		name       string
		views      []galera.MemberView
		withDonors bool
		want       []string
	}{
		{"synced only", []galera.MemberView{v("db-1", galera.StateSynced), v("db-2", galera.StateDonor), v("db-3", galera.StateJoining)}, true, []string{"db-1"}},
		{"the only synced member gives a joiner a copy: serve from the donor",
			[]galera.MemberView{v("db-1", galera.StateDonor), v("db-2", galera.StateJoining), v("db-3", galera.StateDown)}, true, []string{"db-1"}},
		{"donors never for the synced list", []galera.MemberView{v("db-1", galera.StateDonor)}, false, []string{}},
		{"joining and down members never", []galera.MemberView{v("db-1", galera.StateJoining), v("db-2", galera.StateDown)}, true, []string{}},
		{"no cluster yet", nil, true, []string{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addrs, ids := routerMembers(tt.views, tt.withDonors)
			if diff := cmp.Diff(tt.want, ids); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
			if len(addrs) != len(ids) {
				t.Errorf("%d addresses for %d ids", len(addrs), len(ids))
			}
		})
	}
}
