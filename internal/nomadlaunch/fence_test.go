package nomadlaunch

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	nomad "github.com/hashicorp/nomad/api"

	"github.com/scalepress/scalepress/internal/nodegroup"
)

// A controller that no longer owns the site (Config.Fence says so) sends
// Nomad no change of the node job: not a register, a scale, a reschedule,
// a signal or a stop (ADR 27). Nomad here answers every request with 500
// and counts them: none may come.
func TestFenceStopsEveryChange(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		http.Error(w, "not expected", http.StatusInternalServerError)
	}))
	defer srv.Close()
	ops := []struct {
		name string
		do   func(context.Context, *Launcher) error
	}{
		{"submit", func(ctx context.Context, l *Launcher) error { _, err := l.Submit(ctx, []byte("{}")); return err }},
		{"close", func(ctx context.Context, l *Launcher) error { return l.Close(ctx) }},
		{"launch a new node (scale)", func(ctx context.Context, l *Launcher) error {
			_, err := l.Launch(ctx, nodegroup.Node{ID: "node-2"})
			return err
		}},
		{"stop a node (scale)", func(ctx context.Context, l *Launcher) error { return l.Stop(ctx, "node-1") }},
		{"fail a node (signal)", func(ctx context.Context, l *Launcher) error { return l.Fail(ctx, "node-1") }},
		{"refill (reschedule)", func(ctx context.Context, l *Launcher) error { return l.refill(ctx, []int{0}) }},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			requests.Store(0)
			cfg := DefaultConfig()
			cfg.Address, cfg.Command, cfg.Job = srv.URL, "/usr/bin/scalepress", "site"
			cfg.Fence = func(context.Context) error { return ErrTakenOver }
			l, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
			if err != nil {
				t.Fatal(err)
			}
			l.slots[0] = &slot{id: "node-1", alloc: "a1"}
			l.allocs[0] = &nomad.AllocationListStub{ID: "a1", ClientStatus: nomad.AllocClientStatusRunning, DesiredStatus: nomad.AllocDesiredStatusRun}
			l.count = 1
			err = op.do(t.Context(), l)
			if !errors.Is(err, ErrTakenOver) {
				t.Errorf("%s with the fence closed: %v, want ErrTakenOver", op.name, err)
			}
			if n := requests.Load(); n != 0 {
				t.Errorf("%s with the fence closed: %d requests to Nomad, want none", op.name, n)
			}
		})
	}
}
