package dbagent

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/galera"
)

// TestOwnerEpoch: once a controller of a newer owner epoch reached the
// agent (a read is enough), the one it took over is refused every request,
// changes and reads alike, with galera.ErrSuperseded, and nothing reaches
// the host; so is a request without an epoch. The newer one goes on.
func TestOwnerEpoch(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a, h := newAgent(t, ln.Addr().String())
	srv := httptest.NewUnstartedServer(a.Handler())
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	defer srv.Close()
	remote := func(epoch uint64) *galera.Remote {
		rc := galera.DefaultRemoteConfig()
		rc.Agents = map[string]galera.Agent{"db-2": {URL: "http://" + ln.Addr().String(), Token: controllerToken}}
		rc.Epoch = epoch
		r, err := galera.NewRemote(rc, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(r.Close)
		return r
	}
	ctx := context.Background()
	mc := testConfig("").Members[0]
	old, taker, none := remote(5), remote(7), remote(0)

	if err := old.Prepare(ctx, mc); err != nil {
		t.Fatalf("prepare by the owner of epoch 5: %v", err)
	}
	if _, err := taker.Inspect(ctx, mc); err != nil {
		t.Fatalf("inspect by the controller of epoch 7: %v", err)
	}
	if err := old.Init(ctx, mc); !errors.Is(err, galera.ErrSuperseded) {
		t.Errorf("init by epoch 5 after epoch 7: %v, want ErrSuperseded", err)
	}
	if _, err := old.Inspect(ctx, mc); !errors.Is(err, galera.ErrSuperseded) {
		t.Errorf("inspect by epoch 5 after epoch 7: %v, want ErrSuperseded", err)
	}
	if err := none.Init(ctx, mc); !errors.Is(err, galera.ErrSuperseded) {
		t.Errorf("init without an epoch after epoch 7: %v, want ErrSuperseded", err)
	}
	if err := taker.Init(ctx, mc); err != nil {
		t.Errorf("init by epoch 7: %v", err)
	}
	if diff := cmp.Diff([]string{"prepare db-2", "init db-2"}, h.Calls()); diff != "" {
		t.Errorf("operations that reached the host (-want +got):\n%s", diff)
	}
	for _, v := range []string{"x", "0", "-3", "18446744073709551616"} {
		hr := httptest.NewRequest(http.MethodGet, "http://"+ln.Addr().String()+api.DBAgentPathMembers+"db-2", nil)
		hr.Header.Set("Authorization", "Bearer "+controllerToken)
		hr.Header.Set(api.DBAgentHeaderEpoch, v)
		w := httptest.NewRecorder()
		a.Handler().ServeHTTP(w, hr)
		if w.Code != http.StatusBadRequest {
			t.Errorf("epoch %q: status %d, want 400", v, w.Code)
		}
	}
}

// TestOwnerEpochKept: the highest epoch outlives the agent (kept in each
// member's directory): restarted, it refuses the controller that was taken
// over before any newer one reached it again. A kept epoch it cannot read
// stops the agent from starting (it would let an older controller in).
func TestOwnerEpochKept(t *testing.T) {
	cfg := testConfig(agentAddr)
	cfg.Members[0].Dir = t.TempDir()
	get := func(a *Agent, epoch string) int {
		hr := httptest.NewRequest(http.MethodGet, "http://"+agentAddr+api.DBAgentPathMembers+"db-2", nil)
		hr.Header.Set("Authorization", "Bearer "+controllerToken)
		hr.Header.Set(api.DBAgentHeaderEpoch, epoch)
		w := httptest.NewRecorder()
		a.Handler().ServeHTTP(w, hr)
		return w.Code
	}
	first, err := New(cfg, &fakeHost{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if code := get(first, "7"); code != http.StatusOK {
		t.Fatalf("epoch 7 on a new agent: %d, want 200", code)
	}
	restarted, err := New(cfg, &fakeHost{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if code := get(restarted, "5"); code != http.StatusConflict {
		t.Errorf("epoch 5 on the restarted agent that had seen 7: %d, want 409", code)
	}
	if code := get(restarted, "7"); code != http.StatusOK {
		t.Errorf("epoch 7 on the restarted agent: %d, want 200", code)
	}
	if err := os.WriteFile(filepath.Join(cfg.Members[0].Dir, EpochFile), []byte("seven\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfg, &fakeHost{}, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), EpochFile) {
		t.Errorf("an agent over an unreadable epoch file: %v, want an error naming %s", err, EpochFile)
	}
}
