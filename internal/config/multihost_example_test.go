package config

import (
	"net/netip"
	"testing"
)

// TestMultiHostExample: examples/multi-host.yaml is valid, runs the nodes
// on Nomad and the files on S3, places the Galera members on their hosts,
// and binds every address another machine reaches to a routable one.
func TestMultiHostExample(t *testing.T) {
	c, err := Load("../../examples/multi-host.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Scheduler.Kind != SchedulerNomad || c.Scheduler.TokenFile == "" || c.Scheduler.NodeMeta["scalepress_role"] != "node" {
		t.Errorf("scheduler: %+v", c.Scheduler)
	}
	if c.Files.Store.Kind != "s3" || c.Files.Store.Bucket == "" {
		t.Errorf("files.store: %+v", c.Files.Store)
	}
	if len(c.DB.Hosts) != c.DB.Members || c.DB.Members != 3 {
		t.Errorf("db: %d members on %d hosts", c.DB.Members, len(c.DB.Hosts))
	}
	if !c.DB.RouterPerHost || c.DB.Agents != DBAgentsNomad {
		t.Errorf("db: router_per_host %v, agents %q: the example runs both on Nomad", c.DB.RouterPerHost, c.DB.Agents)
	}
	// db.router is loopback: a router on every host at that address.
	for field, addr := range map[string]string{
		"api.addr": c.API.Addr, "edges[0].addr": c.Edges[0].Addr, "files.addr": c.Files.Addr,
		"redis.addr": c.Redis.Addr,
	} {
		ap, err := netip.ParseAddrPort(addr)
		if err != nil || ap.Addr().IsLoopback() || ap.Addr().IsUnspecified() {
			t.Errorf("%s = %q: other hosts must reach it", field, addr)
		}
	}
}
