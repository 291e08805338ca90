package controller

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scalepress/scalepress/internal/galera"
	"github.com/scalepress/scalepress/internal/nomadlaunch"
)

// recHost is a galera.Host that records the operations that reach it.
type recHost struct {
	galera.Host // nil: an operation not overridden here panics
	ops         *[]string
}

func (h recHost) rec(op string) { *h.ops = append(*h.ops, op) }
func (h recHost) Prepare(context.Context, galera.MemberConfig) error {
	h.rec("prepare")
	return nil
}
func (h recHost) Inspect(context.Context, galera.MemberConfig) (galera.Disk, error) {
	h.rec("inspect")
	return galera.Disk{}, nil
}
func (h recHost) Init(context.Context, galera.MemberConfig) error { h.rec("init"); return nil }
func (h recHost) Recover(context.Context, galera.MemberConfig) (galera.Position, error) {
	h.rec("recover")
	return galera.Position{}, nil
}
func (h recHost) ClearForSST(context.Context, galera.MemberConfig) error { h.rec("clear"); return nil }
func (h recHost) SSTDone(context.Context, galera.MemberConfig) error     { h.rec("sst-done"); return nil }
func (h recHost) SetSafeToBootstrap(context.Context, galera.MemberConfig, bool) error {
	h.rec("safe")
	return nil
}
func (h recHost) Start(context.Context, galera.MemberConfig, galera.StartMode, *galera.Position) (galera.Proc, error) {
	h.rec("start")
	return recProc{h}, nil
}
func (h recHost) Adopt(context.Context, galera.MemberConfig) (galera.Proc, bool, error) {
	h.rec("adopt")
	return recProc{h}, true, nil
}
func (h recHost) Ping(context.Context, galera.MemberConfig) error { h.rec("ping"); return nil }
func (h recHost) PCBootstrap(context.Context, galera.MemberConfig) error {
	h.rec("pc-bootstrap")
	return nil
}

type recProc struct{ h recHost }

func (p recProc) Pid() int                       { return 1 }
func (p recProc) Done() <-chan struct{}          { return nil }
func (p recProc) Stop(ctx context.Context) error { p.h.rec("stop"); return nil }

// Every change to a member through its db-agent (a datadir made, cleared
// or marked, mariadbd started, stopped, recovered or bootstrapped) is
// made only while the fence is open; reads pass either way (ADR 27).
func TestFencedHost(t *testing.T) {
	m := galera.MemberConfig{ID: "db-1"}
	all := func(ctx context.Context, h galera.Host) {
		h.Prepare(ctx, m)
		h.Inspect(ctx, m)
		h.Init(ctx, m)
		h.Recover(ctx, m)
		h.ClearForSST(ctx, m)
		h.SSTDone(ctx, m)
		h.SetSafeToBootstrap(ctx, m, true)
		h.Ping(ctx, m)
		h.PCBootstrap(ctx, m)
		if p, err := h.Start(ctx, m, galera.ModeJoin, nil); err == nil {
			p.Stop(ctx)
		}
		if p, ok, err := h.Adopt(ctx, m); err == nil && ok {
			p.Stop(ctx)
		}
	}
	for _, tc := range []struct {
		name  string
		fence error
		want  []string
	}{
		{"owner", nil, []string{"prepare", "inspect", "init", "recover", "clear", "sst-done", "safe", "ping", "pc-bootstrap", "start", "stop", "adopt", "stop"}},
		{"taken over", nomadlaunch.ErrTakenOver, []string{"inspect", "ping", "adopt"}},
		{"owner unknown (Nomad unreachable)", errors.New("nomad: read variable: connection refused"), []string{"inspect", "ping", "adopt"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ops []string
			h := fencedHost{Host: recHost{ops: &ops}, fence: func(context.Context) error { return tc.fence }}
			all(t.Context(), h)
			if diff := cmp.Diff(tc.want, ops); diff != "" {
				t.Errorf("operations that reached the agent (-want +got):\n%s", diff)
			}
			if tc.fence != nil {
				if err := h.Init(t.Context(), m); !errors.Is(err, tc.fence) {
					t.Errorf("init with the fence closed: %v, want %v", err, tc.fence)
				}
			}
		})
	}
}

// supersededHost answers every change and ping as an agent that a newer
// controller reached does.
type supersededHost struct{ recHost }

func (supersededHost) Init(context.Context, galera.MemberConfig) error {
	return fmt.Errorf("galera: init db-1: %w", galera.ErrSuperseded)
}
func (supersededHost) Ping(context.Context, galera.MemberConfig) error {
	return fmt.Errorf("galera: ping db-1: %w", galera.ErrSuperseded)
}

// An agent that refuses a request for a newer owner epoch (the fence's
// read said this controller owned the site, a take-over came between)
// stands this controller down, on a change or a ping alike; other errors
// do not (ADR 31).
func TestFencedHostSuperseded(t *testing.T) {
	m := galera.MemberConfig{ID: "db-1"}
	var lost []string
	var ops []string
	h := fencedHost{Host: supersededHost{recHost{ops: &ops}}, fence: func(context.Context) error { return nil }, lost: func(why string) { lost = append(lost, why) }}
	if err := h.Init(t.Context(), m); !errors.Is(err, galera.ErrSuperseded) {
		t.Errorf("init: %v, want ErrSuperseded", err)
	}
	if err := h.Ping(t.Context(), m); !errors.Is(err, galera.ErrSuperseded) {
		t.Errorf("ping: %v, want ErrSuperseded", err)
	}
	if err := h.Prepare(t.Context(), m); err != nil {
		t.Errorf("prepare: %v", err)
	}
	if len(lost) != 2 {
		t.Errorf("stood down %d times (%q), want 2 (init, ping; not prepare)", len(lost), lost)
	}
}
