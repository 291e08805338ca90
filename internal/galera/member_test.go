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
