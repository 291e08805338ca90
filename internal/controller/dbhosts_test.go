package controller

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scalepress/scalepress/internal/config"
)

// TestDBStatusNamesHosts: a db.hosts member's status names its host (the
// db.hosts id) and its address there; a local member names none.
func TestDBStatusNamesHosts(t *testing.T) {
	hosts := []config.DBHost{
		{ID: "d1", Addr: "10.0.0.11", Agent: "10.0.0.11:7480", Dir: "/srv/db"},
		{ID: "d2", Addr: "10.0.0.12", Agent: "10.0.0.12:7480", Dir: "/srv/db"},
		{ID: "d3", Addr: "10.0.0.13", Agent: "10.0.0.13:7480", Dir: "/srv/db"},
	}
	tests := []struct {
		name  string
		hosts []config.DBHost
		want  [][2]string // host, addr per member
	}{
		{"local", nil, [][2]string{{"", "127.0.2.1:3306"}, {"", "127.0.2.2:3306"}, {"", "127.0.2.3:3306"}}},
		{"db.hosts", hosts, [][2]string{{"d1", "10.0.0.11:3306"}, {"d2", "10.0.0.12:3306"}, {"d3", "10.0.0.13:3306"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.DB.Members, cfg.DB.IPBase, cfg.DB.Hosts = 3, "127.0.2.0", tt.hosts
			d := &database{cfg: cfg}
			var got [][2]string
			for _, m := range d.Status(0).Members {
				got = append(got, [2]string{m.Host, m.Addr})
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
