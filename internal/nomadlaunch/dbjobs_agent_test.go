package nomadlaunch

import (
	"context"
	"testing"
	"time"

	nomad "github.com/hashicorp/nomad/api"
)

// TestDBRoutersSpecAgent: on a real Nomad 1.6.3 dev agent, Spec reads back
// the router spec of the registered router job byte for byte (a controller
// taking over compares it with its own), and nothing when there is no job
// or it was stopped.
func TestDBRoutersSpecAgent(t *testing.T) {
	cfg := testConfig()
	cfg.Address = devAgent(t)
	// Placed nowhere: the job is registered, no router runs.
	cfg.NodeMeta = map[string]string{"scalepress_role": "no-such-role"}
	r, err := NewDBRouters(cfg, "sp-test-dbrouter")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if got, err := r.Spec(ctx); err != nil || got != nil {
		t.Fatalf("no job yet: Spec = %q, %v; want nothing", got, err)
	}
	spec := `{"addr":"127.0.0.1:3306","members_url":"http://10.0.0.11:9090/v1/db/members","members":["10.0.0.12:3306"]}`
	if _, _, err := r.nc.Jobs().Register(DBRouterJob(cfg, r.job, []byte(spec)), (&nomad.WriteOptions{}).WithContext(ctx)); err != nil {
		t.Fatal(err)
	}
	if got, err := r.Spec(ctx); err != nil || string(got) != spec {
		t.Errorf("registered: Spec = %q, %v; want %q", got, err, spec)
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := r.Spec(ctx); err != nil || got != nil {
		t.Errorf("stopped: Spec = %q, %v; want nothing", got, err)
	}
}
