package preflight

import (
	"net"
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
