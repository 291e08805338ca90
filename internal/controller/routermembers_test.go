package controller

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/config"
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

// TestDBMembersBeforeObserved: a controller whose database has not been
// started yet (a take-over's first moments, with the previous controller's
// routers polling its address) answers 503, which routers take as "keep
// your list"; an empty list there had them refuse every connection for a
// poll interval (issue 12). Once started, the list is the finding, an empty
// one too.
func TestDBMembersBeforeObserved(t *testing.T) {
	for _, tt := range []struct {
		name     string
		observed bool
		wantCode int
		want     *api.DBMembers
	}{
		{"starting: nothing observed", false, http.StatusServiceUnavailable, nil},
		{"started: no member synced is a finding", true, http.StatusOK, &api.DBMembers{Members: []string{}, Mode: "single"}}, // ids: omitted when empty
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Default()
			c := &Controller{cfg: cfg, db: &database{cfg: cfg, observed: tt.observed}}
			rec := httptest.NewRecorder()
			c.handleDBMembers(rec, httptest.NewRequest(http.MethodGet, api.APIPathDBMembers, nil))
			if rec.Code != tt.wantCode {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.wantCode, rec.Body)
			}
			if tt.want == nil {
				return
			}
			var got api.DBMembers
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(*tt.want, got); diff != "" {
				t.Errorf("members (-want +got):\n%s", diff)
			}
		})
	}
}

// TestKeepRouterMembers: a controller taking over keeps the running
// routers' spec when it differs from its own only in the initial member
// list (registering a new list would restart every router), and registers
// its own for any other difference or when none runs.
func TestKeepRouterMembers(t *testing.T) {
	mine := api.RouterSpec{Addr: "127.0.0.1:3306", MembersURL: "http://10.77.0.11:9090/v1/db/members", Members: []string{"10.77.0.21:3306"}, Mode: "single"}
	running := func(f func(*api.RouterSpec)) []byte {
		s := mine
		s.Members = []string{"10.77.0.21:3306", "10.77.0.22:3306"}
		s.MetricsAddr = "127.0.0.1:9105" // a controller's own router's; the hosts' get none
		if f != nil {
			f(&s)
		}
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name string
		old  []byte
		keep bool
	}{
		{"none runs", nil, false},
		{"only the members differ", running(nil), true},
		{"another address", running(func(s *api.RouterSpec) { s.Addr = "127.0.0.1:3307" }), false},
		{"another members URL", running(func(s *api.RouterSpec) { s.MembersURL = "http://10.77.0.12:9090/v1/db/members" }), false},
		{"another mode", running(func(s *api.RouterSpec) { s.Mode = "multi" }), false},
		{"not a spec", []byte("{"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, kept := keepRouterMembers(tt.old, mine)
			if kept != tt.keep {
				t.Fatalf("kept %v, want %v", kept, tt.keep)
			}
			want := mine
			if tt.keep {
				want.Members = []string{"10.77.0.21:3306", "10.77.0.22:3306"}
			}
			if !slices.Equal(got.Members, want.Members) || got.Addr != want.Addr || got.MembersURL != want.MembersURL || got.Mode != want.Mode || got.MetricsAddr != "" {
				t.Errorf("spec %+v, want %+v", got, want)
			}
		})
	}
}
