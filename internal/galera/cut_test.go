package galera

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"testing"
	"testing/synctest"

	"github.com/google/go-cmp/cmp"
)

type stubProc struct{ done chan struct{} }

func (p *stubProc) Pid() int                   { return 1 }
func (p *stubProc) Done() <-chan struct{}      { return p.done }
func (p *stubProc) Stop(context.Context) error { return nil }

// TestCutHostNotSyncedAtOnce: every member ran synced; now no SQL probe
// answers. db-1 and db-2's agents still answer (their members are busy:
// they keep their last status for two missed probes); db-3's agent does not
// either (its host is cut off): db-3 stops counting as synced at the first
// round, so the routers' list drops it without waiting two more rounds.
func TestCutHostNotSyncedAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := &stubHost{unreachable: map[string]bool{"db-3": true}, disk: map[string]Disk{
			"db-1": {Initialized: true, HasData: true}, "db-2": {Initialized: true, HasData: true}}}
		peers := []string{"10.0.0.11:3306", "10.0.0.12:3306", "10.0.0.13:3306"}
		ids := []string{"db-1", "db-2", "db-3"}
		cfg := DefaultConfig()
		for i := range 3 {
			cfg.Members = append(cfg.Members, MemberConfig{ID: ids[i], Addr: peers[i], Dir: "/db/" + ids[i], BufferPool: "64M",
				UID: -1, GID: -1, Peers: peers, PeerIDs: ids, ClusterName: "scalepress", SSTMethod: "rsync", GcacheSize: "32M"})
		}
		cfg.Site = Grant{Database: "wp", User: "wp", Password: "p", MonitorUser: "m", MonitorPassword: "q"}
		// No probe leaves the process: every one fails.
		cfg.Dial = func(context.Context, string, string) (net.Conn, error) { return nil, errors.New("no answer") }
		c, err := New(cfg, h, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for _, m := range c.members {
			m.proc = &stubProc{done: make(chan struct{})}
			m.status = &Status{Ready: true, Connected: true, ClusterStatus: "Primary", LocalState: 4, ClusterSize: 3}
		}
		c.observe(context.Background())
		got := map[string]string{}
		for _, v := range c.Members() {
			got[v.ID] = v.State
		}
		want := map[string]string{"db-1": StateSynced, "db-2": StateSynced, "db-3": c.Members()[2].State}
		if got["db-3"] == StateSynced {
			t.Errorf("db-3, probe and agent both unreachable, still counts as synced after one round")
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("states after one round without probes (-want +got):\n%s", diff)
		}
	})
}

// TestStandaloneMissedProbe: a single member that served and misses a probe
// (busy) stays synced for two misses in a row, as a Galera member does; at
// the third it counts as not serving. Its routers are told it is gone only
// then, not for one slow SELECT 1 (issue 12: one missed probe emptied the
// list, and every router refused connections until the next probe).
func TestStandaloneMissedProbe(t *testing.T) {
	h := &stubHost{}
	cfg := DefaultConfig()
	cfg.Members = []MemberConfig{{ID: "db-1", Addr: "10.0.0.11:3306", Dir: "/db/db-1", BufferPool: "64M", UID: -1, GID: -1}}
	cfg.Site = Grant{Database: "wp", User: "wp", Password: "p", MonitorUser: "m", MonitorPassword: "q"}
	cfg.Dial = func(context.Context, string, string) (net.Conn, error) { return nil, errors.New("no answer") }
	c, err := New(cfg, h, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m := c.members[0]
	m.proc = &stubProc{done: make(chan struct{})}
	m.status = &Status{Ready: true, ClusterStatus: "Primary", LocalState: 4, LocalStateComment: "Synced", ClusterSize: 1}
	m.joined = 1
	for miss := 1; miss <= 3; miss++ {
		c.probeStandalone(context.Background())
		state := c.Members()[0].State
		if want := miss <= 2; (state == StateSynced) != want {
			t.Errorf("after %d missed probes in a row: state %q, synced want %v", miss, state, want)
		}
	}
}
