package galera

import (
	"strings"
	"testing"
)

func TestRenderMyCnf(t *testing.T) {
	c := MemberConfig{ID: "db-1", Addr: "127.0.2.1:3306", Dir: "/s/db/db-1", BufferPool: "128M"}
	got := string(RenderMyCnf(c))
	for _, want := range []string{
		"datadir = /s/db/db-1/data\n",
		"socket = /s/db/db-1/run/mysqld.sock\n",
		"bind-address = 127.0.2.1\n",
		"port = 3306\n",
		"innodb_buffer_pool_size = 128M\n",
		"innodb_flush_log_at_trx_commit = 1\n",
		"log_bin = binlog\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("my.cnf lacks %q:\n%s", want, got)
		}
	}
}

func TestMemberValidate(t *testing.T) {
	tests := []struct {
		name string
		c    MemberConfig
		want string
	}{
		{"no id", MemberConfig{Addr: "127.0.0.1:1", Dir: "/x"}, "id is empty"},
		{"bad addr", MemberConfig{ID: "db-1", Addr: "x", Dir: "/x"}, "addr"},
		{"relative dir", MemberConfig{ID: "db-1", Addr: "127.0.0.1:1", Dir: "x"}, "absolute"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
}

func TestEnsureSiteRejectsInjection(t *testing.T) {
	c := MemberConfig{ID: "db-1", Addr: "127.0.0.1:1", Dir: "/x"}
	err := EnsureSite(t.Context(), c, Binaries{}, Grant{Database: "wp", User: "wp", Password: "a'b", MonitorUser: "m", MonitorPassword: "p"})
	if err == nil {
		t.Fatal("a quote in a password was accepted")
	}
	err = EnsureSite(t.Context(), c, Binaries{}, Grant{Database: "wp`; DROP", User: "wp", Password: "ab", MonitorUser: "m", MonitorPassword: "p"})
	if err == nil {
		t.Fatal("a backtick in a database name was accepted")
	}
}

func galeraMember() MemberConfig {
	return MemberConfig{ID: "db-2", Addr: "127.0.2.2:3306", Dir: "/s/db/db-2", BufferPool: "64M",
		Peers: []string{"127.0.2.1:3306", "127.0.2.2:3306", "127.0.2.3:3306"}, PeerIDs: []string{"db-1", "db-2", "db-3"},
		ClusterName: "scalepress", SSTMethod: "rsync", GcacheSize: "32M"}
}

func TestRenderMyCnfGalera(t *testing.T) {
	got := string(RenderMyCnf(galeraMember()))
	for _, want := range []string{
		"wsrep_on = ON\n",
		"wsrep_provider = /usr/lib/galera/libgalera_smm.so\n",
		"wsrep_cluster_address = gcomm://127.0.2.1:4567,127.0.2.2:4567,127.0.2.3:4567\n",
		"wsrep_node_name = db-2\n",
		"wsrep_node_address = 127.0.2.2\n",
		"wsrep_sst_receive_address = 127.0.2.2:4444\n",
		`wsrep_provider_options = "gmcast.listen_addr=tcp://127.0.2.2:4567;ist.recv_addr=127.0.2.2:4568;gcache.size=32M;evs.join_retrans_period=PT0.5S"` + "\n",
		"wsrep_sst_method = rsync\n",
		"wsrep_sst_donor = db-3,db-1,\n", // the writer (lowest id) last
		"log_slave_updates = ON\n",
		"innodb_autoinc_lock_mode = 2\n",
		"tmpdir = /s/db/db-2/tmp\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("my.cnf lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "wsrep-new-cluster") || strings.Contains(got, "wsrep_new_cluster") {
		t.Error("the bootstrap flag must never be persisted")
	}
	if s := string(RenderMyCnf(MemberConfig{ID: "db-1", Addr: "127.0.2.1:3306", Dir: "/s", BufferPool: "1M"})); !strings.Contains(s, "wsrep_on = OFF") {
		t.Error("standalone member without wsrep_on = OFF")
	}
}

func TestMemberValidateGalera(t *testing.T) {
	tests := []struct {
		name string
		f    func(*MemberConfig)
		want string
	}{
		{"ids and peers differ", func(c *MemberConfig) { c.PeerIDs = c.PeerIDs[:2] }, "peer ids"},
		{"bad peer", func(c *MemberConfig) { c.Peers[0] = "localhost:3306" }, "peer"},
		{"not among peers", func(c *MemberConfig) { c.Addr = "127.0.2.9:3306" }, "not among its peers"},
		{"bad cluster name", func(c *MemberConfig) { c.ClusterName = "a b" }, "cluster name"},
		{"bad sst", func(c *MemberConfig) { c.SSTMethod = "xtrabackup" }, "sst method"},
		{"bad gcache", func(c *MemberConfig) { c.GcacheSize = "big" }, "gcache size"},
	}
	if err := galeraMember().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := galeraMember()
			tt.f(&c)
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
}

func TestClusterConfigValidate(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "members") {
		t.Errorf("no members: %v", err)
	}
	m := galeraMember()
	c.Members = []MemberConfig{m, m}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "even") {
		t.Errorf("two members: %v", err)
	}
}
