package galera

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// stubHost is a Host whose members are all stopped; unreachable members
// answer nothing (ErrUnreachable), the others say what disk says.
type stubHost struct {
	unreachable map[string]bool
	disk        map[string]Disk
	recovered   map[string]Position

	mu    sync.Mutex
	calls []string
}

func (h *stubHost) call(op, id string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, op+" "+id)
	if h.unreachable[id] {
		return fmt.Errorf("galera: %s %s: %w", op, id, ErrUnreachable)
	}
	return nil
}

func (h *stubHost) Prepare(_ context.Context, m MemberConfig) error { return h.call("prepare", m.ID) }
func (h *stubHost) Inspect(_ context.Context, m MemberConfig) (Disk, error) {
	if h.unreachable[m.ID] {
		return Disk{}, fmt.Errorf("galera: read %s: %w", m.ID, ErrUnreachable)
	}
	return h.disk[m.ID], nil
}
func (h *stubHost) Init(_ context.Context, m MemberConfig) error { return h.call("init", m.ID) }
func (h *stubHost) Recover(_ context.Context, m MemberConfig) (Position, error) {
	if err := h.call("recover", m.ID); err != nil {
		return Position{}, err
	}
	return h.recovered[m.ID], nil
}
func (h *stubHost) ClearForSST(_ context.Context, m MemberConfig) error {
	return h.call("clear-sst", m.ID)
}
func (h *stubHost) SSTDone(_ context.Context, m MemberConfig) error { return h.call("sst-done", m.ID) }
func (h *stubHost) SetSafeToBootstrap(_ context.Context, m MemberConfig, _ bool) error {
	return h.call("safe", m.ID)
}
func (h *stubHost) Start(_ context.Context, m MemberConfig, mode StartMode, _ *Position) (Proc, error) {
	return nil, h.call("start-"+string(mode), m.ID)
}
func (h *stubHost) Adopt(_ context.Context, m MemberConfig) (Proc, bool, error) {
	return nil, false, h.call("adopt", m.ID)
}
func (h *stubHost) LastError(context.Context, MemberConfig) string { return "" }
func (h *stubHost) LogName(MemberConfig) string                    { return "" }
func (h *stubHost) Ping(_ context.Context, m MemberConfig) error   { return h.call("ping", m.ID) }
func (h *stubHost) EnsureSite(_ context.Context, m MemberConfig, _ Grant) error {
	return h.call("ensure-site", m.ID)
}
func (h *stubHost) PCBootstrap(_ context.Context, m MemberConfig) error {
	return h.call("pc-bootstrap", m.ID)
}

func stubCluster(t *testing.T, h Host) *Cluster {
	t.Helper()
	peers := []string{"10.0.0.11:3306", "10.0.0.12:3306", "10.0.0.13:3306"}
	ids := []string{"db-1", "db-2", "db-3"}
	cfg := DefaultConfig()
	for i := range 3 {
		cfg.Members = append(cfg.Members, MemberConfig{ID: ids[i], Addr: peers[i], Dir: "/db/" + ids[i], BufferPool: "64M",
			UID: -1, GID: -1, Peers: peers, PeerIDs: ids, ClusterName: "scalepress", SSTMethod: "rsync", GcacheSize: "32M"})
	}
	cfg.Site = Grant{Database: "wp", User: "wp", Password: "p", MonitorUser: "m", MonitorPassword: "q"}
	c, err := New(cfg, h, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestUnknownIsNotEmpty: a member whose host cannot be read is never taken
// for an empty one. The whole cluster is down; db-3's host does not answer.
// Had db-3 counted as empty, the plan would initialise or bootstrap the
// others and throw away what db-3 may hold; it only asks db-3 for its
// position again and again.
func TestUnknownIsNotEmpty(t *testing.T) {
	data := Disk{Initialized: true, HasData: true, Grastate: &GraState{UUID: "6c2b2a0e-8c11-11ee-9d5e-2b1f2f0e7a11", Seqno: -1}}
	pos := Position{UUID: "6c2b2a0e-8c11-11ee-9d5e-2b1f2f0e7a11", Seqno: 10}
	tests := []struct {
		name string
		disk map[string]Disk
	}{
		// All empty but the unknown one: "no data anywhere" would initialise db-1.
		{"the others are empty", map[string]Disk{"db-1": {}, "db-2": {}}},
		// The others hold data: bootstrapping the most advanced of them would
		// lose db-3's writes if it is ahead.
		{"the others hold data", map[string]Disk{"db-1": data, "db-2": data}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := &stubHost{unreachable: map[string]bool{"db-3": true}, disk: tt.disk,
					recovered: map[string]Position{"db-1": pos, "db-2": pos}}
				c := stubCluster(t, h)
				defer c.Close()
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				c.Run(ctx)
				var acted []string
				for _, call := range slices.Compact(slices.Clone(h.calls)) {
					if call != "recover db-1" && call != "recover db-2" && call != "recover db-3" {
						acted = append(acted, call)
					}
				}
				if diff := cmp.Diff([]string(nil), acted); diff != "" {
					t.Errorf("acted while db-3 was unknown (-want +got):\n%s", diff)
				}
				if !slices.Contains(h.calls, "recover db-3") {
					t.Errorf("db-3's position was not asked for: %q", h.calls)
				}
			})
		})
	}
}
