package controller

// The fence on the database (ADR 27): members on db.hosts outlive the
// controller, and a controller back from a cut must not start, stop or
// rewrite one that another controller took over. Every change through a
// db-agent asks the fence first, as the node launcher does.

import (
	"context"
	"errors"
	"fmt"

	"github.com/scalepress/scalepress/internal/galera"
)

// fencedHost is a galera.Host whose changes (a datadir initialised,
// cleared or marked, a member started, stopped or bootstrapped) are made
// only while fence says this controller owns the site. Reads (Inspect,
// Adopt, Ping, LastError) pass; Recover runs mariadbd on the datadir and is
// fenced.
//
// The read of the owner is a check before the act; the agents close the
// window between the two (ADR 31): each request carries this run's owner
// epoch, and an agent a newer controller reached refuses it
// (galera.ErrSuperseded), which stands this controller down (lost).
type fencedHost struct {
	galera.Host
	fence func(context.Context) error
	lost  func(why string) // may be nil
}

func (h fencedHost) check(ctx context.Context, op string, m galera.MemberConfig) error {
	if err := h.fence(ctx); err != nil {
		return fmt.Errorf("%s %s: left as it is: %w", op, m.ID, err)
	}
	return nil
}

// seen stands this controller down when an agent refused err's request
// for a newer owner epoch, and returns err.
func (h fencedHost) seen(err error) error {
	if errors.Is(err, galera.ErrSuperseded) && h.lost != nil {
		h.lost(err.Error())
	}
	return err
}

func (h fencedHost) Prepare(ctx context.Context, m galera.MemberConfig) error {
	if err := h.check(ctx, "prepare", m); err != nil {
		return err
	}
	return h.seen(h.Host.Prepare(ctx, m))
}

func (h fencedHost) Init(ctx context.Context, m galera.MemberConfig) error {
	if err := h.check(ctx, "init", m); err != nil {
		return err
	}
	return h.seen(h.Host.Init(ctx, m))
}

func (h fencedHost) Recover(ctx context.Context, m galera.MemberConfig) (galera.Position, error) {
	if err := h.check(ctx, "recover", m); err != nil {
		return galera.Position{}, err
	}
	pos, err := h.Host.Recover(ctx, m)
	return pos, h.seen(err)
}

func (h fencedHost) ClearForSST(ctx context.Context, m galera.MemberConfig) error {
	if err := h.check(ctx, "clear for SST", m); err != nil {
		return err
	}
	return h.seen(h.Host.ClearForSST(ctx, m))
}

func (h fencedHost) SSTDone(ctx context.Context, m galera.MemberConfig) error {
	if err := h.check(ctx, "SST done", m); err != nil {
		return err
	}
	return h.seen(h.Host.SSTDone(ctx, m))
}

func (h fencedHost) SetSafeToBootstrap(ctx context.Context, m galera.MemberConfig, safe bool) error {
	if err := h.check(ctx, "set safe_to_bootstrap", m); err != nil {
		return err
	}
	return h.seen(h.Host.SetSafeToBootstrap(ctx, m, safe))
}

func (h fencedHost) Start(ctx context.Context, m galera.MemberConfig, mode galera.StartMode, pos *galera.Position) (galera.Proc, error) {
	if err := h.check(ctx, "start", m); err != nil {
		return nil, err
	}
	p, err := h.Host.Start(ctx, m, mode, pos)
	if err != nil || p == nil {
		return p, h.seen(err)
	}
	return fencedProc{Proc: p, h: h, id: m.ID}, nil
}

func (h fencedHost) Adopt(ctx context.Context, m galera.MemberConfig) (galera.Proc, bool, error) {
	p, ok, err := h.Host.Adopt(ctx, m)
	if err != nil || !ok || p == nil {
		return p, ok, h.seen(err)
	}
	return fencedProc{Proc: p, h: h, id: m.ID}, true, nil
}

func (h fencedHost) PCBootstrap(ctx context.Context, m galera.MemberConfig) error {
	if err := h.check(ctx, "bootstrap a primary component on", m); err != nil {
		return err
	}
	return h.seen(h.Host.PCBootstrap(ctx, m))
}

// fencedProc is a member's mariadbd that is stopped only while the fence
// is open.
type fencedProc struct {
	galera.Proc
	h  fencedHost
	id string
}

func (p fencedProc) Stop(ctx context.Context) error {
	if err := p.h.fence(ctx); err != nil {
		return fmt.Errorf("stop %s: left running: %w", p.id, err)
	}
	return p.h.seen(p.Proc.Stop(ctx))
}

// Inspect and Ping are reads, let through by the fence; an agent that
// refuses them for a newer owner epoch stands this controller down all
// the same (its health checks reach every agent every few seconds).
func (h fencedHost) Inspect(ctx context.Context, m galera.MemberConfig) (galera.Disk, error) {
	d, err := h.Host.Inspect(ctx, m)
	return d, h.seen(err)
}

func (h fencedHost) Ping(ctx context.Context, m galera.MemberConfig) error {
	return h.seen(h.Host.Ping(ctx, m))
}

// Close closes the host it wraps (the agents' clients), as the cluster
// closes a host that has a Close.
func (h fencedHost) Close() {
	if c, ok := h.Host.(interface{ Close() }); ok {
		c.Close()
	}
}
