package galera

import "testing"

// TestServes: Start returns once one member is synced in a primary
// component; a donor, a joiner or a member in a non-primary component does
// not count.
func TestServes(t *testing.T) {
	synced := &Status{Ready: true, ClusterStatus: "Primary", LocalState: 4}
	donor := &Status{Ready: true, ClusterStatus: "Primary", LocalState: 2}
	nonPrimary := &Status{Ready: false, ClusterStatus: "non-Primary", LocalState: 4}
	for _, tt := range []struct {
		name string
		obs  []Observation
		want string
	}{
		{"bootstrapped member synced, others joining", []Observation{{ID: "db-1", Running: true, Status: synced}, {ID: "db-2", Running: true}, {ID: "db-3"}}, "db-1"},
		{"only a donor", []Observation{{ID: "db-1", Running: true, Status: donor}, {ID: "db-2", Running: true}}, ""},
		{"non-primary", []Observation{{ID: "db-1", Running: true, Status: nonPrimary}}, ""},
		{"status of a member no longer running", []Observation{{ID: "db-1", Status: synced}}, ""},
		{"nothing yet", []Observation{{ID: "db-1"}, {ID: "db-2"}}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := serves(tt.obs)
			if got != tt.want || ok != (tt.want != "") {
				t.Errorf("serves = %q, %v; want %q", got, ok, tt.want)
			}
		})
	}
}
