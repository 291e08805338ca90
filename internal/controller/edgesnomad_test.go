package controller

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scalepress/scalepress/internal/config"
	"github.com/scalepress/scalepress/internal/nomadlaunch"
	"github.com/scalepress/scalepress/internal/statedir"
	"github.com/scalepress/scalepress/internal/token"
)

// TestEdgeRoleJobs: with scheduler.roles edge, each edge is a job of its
// own on its address's host in its region (not scheduler.role_meta's:
// that is for the roles that move), on its port, dropping to the
// role user when the port needs no root; every secret of its spec (the
// forwarding key, the purge secret, its control token) is in the spec,
// which goes to the job's variable, and none is in the job.
func TestEdgeRoleJobs(t *testing.T) {
	cfg := config.Default()
	cfg.Scheduler.Kind, cfg.Scheduler.Address, cfg.Scheduler.Job = config.SchedulerNomad, "http://127.0.0.1:4646", "sp"
	cfg.Scheduler.Roles = []string{config.RoleEdge}
	cfg.Scheduler.RoleMeta = map[string]string{"scalepress_role": "front"}
	cfg.Edges = []config.Edge{
		{ID: "edge-eu", Region: "eu", Addr: "10.77.0.13:8080"},
		{ID: "edge-us", Region: "us", Addr: "10.77.0.14:80"},
	}
	c, err := New(cfg, t.TempDir(), "test", slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.secrets = statedir.Secrets{RootKey: token.NewKey(), PurgeSecret: "purge-secret-of-wordpress"}
	c.bin.Self = "/usr/local/bin/scalepress"
	type got struct {
		Job, HostIP string
		Port        int
		Meta        map[string]string
		Args        string
	}
	want := []got{
		{"sp-edge-edge-eu", "10.77.0.13", 8080, map[string]string{"scalepress_region": "eu"},
			"edge --spec ${NOMAD_SECRETS_DIR}/role.json --addr ${NOMAD_IP_http}:${NOMAD_PORT_http} --keep ${NOMAD_ALLOC_DIR}/data/upstreams.json --user scalepress"},
		{"sp-edge-edge-us", "10.77.0.14", 80, map[string]string{"scalepress_region": "us"},
			"edge --spec ${NOMAD_SECRETS_DIR}/role.json --addr ${NOMAD_IP_http}:${NOMAD_PORT_http} --keep ${NOMAD_ALLOC_DIR}/data/upstreams.json"},
	}
	for i := range cfg.Edges {
		rj, err := c.edgeRoleJob(i)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want[i], got{rj.Job, rj.HostIP, rj.Port, rj.NodeMeta, strings.Join(rj.Args, " ")}); diff != "" {
			t.Errorf("edge %d (-want +got):\n%s", i, diff)
		}
		spec, err := c.edgeSpec(i)
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(nomadlaunch.BuildRoleJob(c.nomadConfig(), rj))
		if err != nil {
			t.Fatal(err)
		}
		for name, secret := range map[string]string{"forward key": spec.ForwardKey, "purge secret": spec.PurgeSecret, "control token": spec.ControlToken} {
			if secret == "" {
				t.Errorf("edge %d: spec has no %s", i, name)
			} else if strings.Contains(string(b), secret) {
				t.Errorf("edge %d: the job holds the %s", i, name)
			}
		}
	}
}
