package filesync

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"golang.org/x/sys/unix"
)

// requestGate keeps a node's PHP requests out of the docroot while a unit
// is swapped (api.SwapStageDir has the protocol).
type requestGate interface {
	// close returns once no request is in flight and new ones wait, or
	// when ctx ends or the wait is too long (err says so; the caller swaps
	// anyway). release lets requests in again; it is never nil.
	close(ctx context.Context) (release func(), err error)
}

var _ requestGate = (*flockGate)(nil)

// flockGate is the agent's side of the gate: flocks on two files of the
// stage, which PHP's auto_prepend_file takes shared.
type flockGate struct {
	gate, inuse *os.File
	// wait bounds how long the agent waits for the requests in flight;
	// new requests wait that long at most.
	wait time.Duration
	// poll is the interval between attempts to take a lock.
	poll time.Duration
}

// openGate creates (0644: PHP opens them read-only) and opens the lock
// files in the docroot's stage.
func (a *Agent) openGate() (*flockGate, error) {
	if err := a.root.MkdirAll(api.SwapStageDir, 0o755); err != nil {
		return nil, err
	}
	if err := a.root.Chmod(api.SwapStageDir, 0o755); err != nil {
		return nil, err
	}
	g := &flockGate{wait: a.cfg.SwapWait, poll: time.Millisecond}
	var err error
	for _, f := range []struct {
		name string
		to   **os.File
	}{{api.SwapGateFile, &g.gate}, {api.SwapInUseFile, &g.inuse}} {
		p := path.Join(api.SwapStageDir, f.name)
		if *f.to, err = a.root.OpenFile(p, os.O_RDONLY|os.O_CREATE, 0o644); err != nil {
			g.closeFiles()
			return nil, err
		}
		if err := a.root.Chmod(p, 0o644); err != nil {
			g.closeFiles()
			return nil, err
		}
	}
	return g, nil
}

func (g *flockGate) closeFiles() {
	for _, f := range []*os.File{g.gate, g.inuse} {
		if f != nil {
			f.Close()
		}
	}
}

func (g *flockGate) close(ctx context.Context) (func(), error) {
	ctx, cancel := context.WithTimeout(ctx, g.wait)
	defer cancel()
	var held []*os.File
	release := func() {
		for _, f := range held {
			unix.Flock(int(f.Fd()), unix.LOCK_UN)
		}
	}
	for _, f := range []*os.File{g.gate, g.inuse} {
		if err := g.lock(ctx, f); err != nil {
			return release, fmt.Errorf("close the request gate: %w", err)
		}
		held = append(held, f)
	}
	return release, nil
}

// lock takes f's flock exclusively, trying every poll until ctx ends.
func (g *flockGate) lock(ctx context.Context, f *os.File) error {
	t := time.NewTicker(g.poll)
	defer t.Stop()
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
