package galera

import (
	"context"
	"log/slog"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// runningHost is a stubHost whose members all run: Adopt takes them over.
type runningHost struct{ stubHost }

func (h *runningHost) Adopt(_ context.Context, m MemberConfig) (Proc, bool, error) {
	return &stubProc{done: make(chan struct{})}, true, h.call("adopt", m.ID)
}

// TestStandaloneAdopts: a single member whose agent reports it running (a
// new controller) is taken over as it is: never prepared, initialised nor
// started again; only asked whether it answers and for the site's grants.
func TestStandaloneAdopts(t *testing.T) {
	h := &runningHost{}
	cfg := DefaultConfig()
	cfg.Members = []MemberConfig{{ID: "db-1", Addr: "10.0.0.11:3306", Dir: "/db/db-1", BufferPool: "64M", UID: -1, GID: -1}}
	cfg.Site = Grant{Database: "wp", User: "wp", Password: "p", MonitorUser: "m", MonitorPassword: "q"}
	c, err := New(cfg, h, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // the SQL probe at the end answers nothing here: only the calls count
	c.Start(ctx)
	if diff := cmp.Diff([]string{"adopt db-1", "ping db-1", "ensure-site db-1"}, h.calls); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}
