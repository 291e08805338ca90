package preflight

import (
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scalepress/scalepress/internal/config"
)

func TestCheckUDPPort(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	err = checkUDPPort("dns.addr", pc.LocalAddr().String())
	if err == nil || !strings.Contains(err.Error(), "dns.addr "+pc.LocalAddr().String()+" (UDP) is already in use") {
		t.Errorf("taken port: %v", err)
	}
	if got := dnsUDPAddrs(config.Default()); got != nil {
		t.Errorf("dns off: UDP addresses %v", got)
	}
}

// Members on db.hosts bind their own hosts' addresses: up checks none of
// them here (it could not bind them), and still checks every local member.
func TestListenAddrsDBHosts(t *testing.T) {
	members := func(cfg config.Config) []string {
		var out []string
		for _, a := range listenAddrs(cfg) {
			if strings.HasPrefix(a[0], "db member") {
				out = append(out, a[0]+" "+a[1])
			}
		}
		return out
	}
	cfg := config.Default()
	cfg.DB.Members = 3
	want := []string{"db member db-1 " + cfg.DBMemberAddr(1), "db member db-2 " + cfg.DBMemberAddr(2), "db member db-3 " + cfg.DBMemberAddr(3)}
	if diff := cmp.Diff(want, members(cfg)); diff != "" {
		t.Errorf("local members (-want +got):\n%s", diff)
	}
	cfg.DB.Hosts = []config.DBHost{
		{ID: "d1", Addr: "10.0.0.11", Agent: "10.0.0.11:7480", Dir: "/var/lib/db"},
		{ID: "d2", Addr: "10.0.0.12", Agent: "10.0.0.12:7480", Dir: "/var/lib/db"},
		{ID: "d3", Addr: "10.0.0.13", Agent: "10.0.0.13:7480", Dir: "/var/lib/db"},
	}
	if got := members(cfg); len(got) != 0 {
		t.Errorf("members on db.hosts checked here: %v", got)
	}
}

// Edges on Nomad bind their own hosts' addresses: up checks none of them
// here; edges it runs itself it checks.
func TestListenAddrsEdgesOnNomad(t *testing.T) {
	edges := func(cfg config.Config) []string {
		var out []string
		for _, a := range listenAddrs(cfg) {
			if strings.HasPrefix(a[0], "edges[") {
				out = append(out, a[0]+" "+a[1])
			}
		}
		return out
	}
	cfg := config.Default()
	cfg.Edges = []config.Edge{{ID: "edge-1", Region: "default", Addr: "10.0.0.21:80"}}
	if diff := cmp.Diff([]string{"edges[0].addr 10.0.0.21:80"}, edges(cfg)); diff != "" {
		t.Errorf("local edges (-want +got):\n%s", diff)
	}
	cfg.Scheduler.Kind, cfg.Scheduler.Roles = config.SchedulerNomad, []string{config.RoleEdge}
	if got := edges(cfg); len(got) != 0 {
		t.Errorf("edges on Nomad checked here: %v", got)
	}
}

// Files, redis and dns on Nomad listen on the clients Nomad places them on:
// a controller taking the site over on another host (ADR 0027) has none
// of their addresses, so up checks none of them there.
func TestListenAddrsRolesOnNomad(t *testing.T) {
	names := func(cfg config.Config) []string {
		var out []string
		for _, a := range listenAddrs(cfg) {
			out = append(out, a[0])
		}
		return out
	}
	cfg := config.Default()
	cfg.Nodes.Count = 0
	cfg.Files.Enabled, cfg.DNS.Enabled = true, true
	cfg.Files.Addr, cfg.DNS.Addr = "10.0.0.11:8081", "10.0.0.11:53"
	for _, tc := range []struct {
		roles []string
		want  []string
	}{
		{nil, []string{"api.addr", "db.router", "redis.addr", "dns.addr", "files.addr"}},
		{[]string{config.RoleFiles}, []string{"api.addr", "db.router", "redis.addr", "dns.addr"}},
		{[]string{config.RoleFiles, config.RoleRedis, config.RoleDNS}, []string{"api.addr", "db.router"}},
	} {
		cfg.Scheduler.Kind, cfg.Scheduler.Roles = config.SchedulerNomad, tc.roles
		if len(tc.roles) == 0 {
			cfg.Scheduler.Kind = config.SchedulerLocal
		}
		got := slices.DeleteFunc(names(cfg), func(n string) bool { return strings.HasPrefix(n, "db member") || strings.HasPrefix(n, "edges[") })
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("roles on Nomad %v: checked (-want +got):\n%s", tc.roles, diff)
		}
	}
}
