package controller

// The controller's home (scheduler nomad, ADR 27): what a new controller
// needs to adopt the running site (the secrets nothing derives, the state
// file) is also kept in a Nomad Variable, so that `up` with an empty --dir,
// on this host or another, restores it and adopts what runs.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scalepress/scalepress/internal/config"
	"github.com/scalepress/scalepress/internal/nomadlaunch"
	"github.com/scalepress/scalepress/internal/statedir"
)

// homeTimeout bounds one read or write of the home variable.
const homeTimeout = 30 * time.Second

// homeStore is the home variable's store; nil for scheduler local.
func (c *Controller) homeStore() (*nomadlaunch.HomeStore, error) {
	if c.cfg.Scheduler.Kind != config.SchedulerNomad {
		return nil, nil
	}
	s, err := nomadlaunch.NewHomeStore(c.nomadConfig())
	if err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	return s, nil
}

// checkNomad asks Nomad whether the controller can work with it
// (nomadlaunch.Config.Check) before anything is written there; nil for
// scheduler local.
func (c *Controller) checkNomad(ctx context.Context) error {
	if c.cfg.Scheduler.Kind != config.SchedulerNomad {
		return nil
	}
	nc := c.nomadConfig()
	if nc.Command == "" {
		// The binaries are found later; the plan only asks whether the
		// token may submit the job, whatever it runs.
		nc.Command = "/usr/local/bin/scalepress"
	}
	ctx, cancel := context.WithTimeout(ctx, homeTimeout)
	defer cancel()
	return nc.Check(ctx) // its errors name the scheduler setting
}

// cannotCarry says what of the site lived only in the old controller's
// directory under cfg, "" when nothing did: a new directory can then take
// the site over from the home variable alone.
func cannotCarry(cfg config.Config) string {
	var why []string
	if len(cfg.DB.Hosts) == 0 {
		why = append(why, "its database ran in that directory (db.hosts is empty)")
	}
	if cfg.Files.Enabled && cfg.Files.Store.Kind != "s3" {
		why = append(why, "its files store was in that directory (files.store.kind is not s3)")
	}
	return strings.Join(why, "; ")
}

// restoreHome fills an empty state directory from the home variable, when
// there is one: this controller then adopts what the last one ran. It
// returns who wrote it ("" when nothing was restored). It refuses when the
// site is installed and part of it lived in the old directory only (a new
// database here would be an empty site over the running nodes).
func (c *Controller) restoreHome(ctx context.Context) (string, error) {
	if c.cfg.Scheduler.Kind != config.SchedulerNomad || !statedir.Empty(c.layout) {
		return "", nil
	}
	s, err := c.homeStore()
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, homeTimeout)
	defer cancel()
	h, ok, err := s.Read(ctx)
	if err != nil {
		return "", fmt.Errorf("controller state in Nomad: %w", err)
	}
	if !ok {
		return "", nil // a new site
	}
	carry, err := statedir.UnmarshalCarry(h.Carry)
	if err != nil {
		return "", fmt.Errorf("controller state in Nomad variable %s: %w", s.Path(), err)
	}
	from := fmt.Sprintf("the controller of %s on %s (written %s)", h.Dir, h.Host, h.At)
	if why := cannotCarry(c.cfg); why != "" && carry.State.Installed {
		return "", fmt.Errorf("%s is empty and Nomad variable %s holds the site's state from %s, but %s: run `up` with that --dir on that host, or restore a backup into this one", c.layout.Dir, s.Path(), from, why)
	}
	if err := statedir.WriteCarry(c.layout, carry); err != nil {
		return "", err
	}
	return from, nil
}

// home is this controller's hold on the home variable: its run's owner id
// and the variable's index as it last wrote it.
type home struct {
	mu    sync.Mutex
	owner string
	index uint64
	// epoch is the variable's index as this run's take-over wrote it: the
	// owner epoch the db-agents hold this controller to (ADR 31).
	epoch  uint64
	fenced atomic.Bool
	taken  chan string // who took the site over, once
}

func newHome() *home {
	b := make([]byte, 8)
	rand.Read(b)
	return &home{owner: hex.EncodeToString(b), taken: make(chan string, 1)}
}

// homeState is the carried state, stamped with this controller.
func (c *Controller) homeState() (nomadlaunch.Home, error) {
	carry, err := statedir.ReadCarry(c.layout)
	if err != nil {
		return nomadlaunch.Home{}, err
	}
	raw, err := statedir.MarshalCarry(carry)
	if err != nil {
		return nomadlaunch.Home{}, err
	}
	host, _ := os.Hostname()
	return nomadlaunch.Home{Carry: raw, Dir: c.layout.Dir, Host: host, At: time.Now().UTC().Format(time.RFC3339), Owner: c.home.owner}, nil
}

// saveHome writes the carried state to the home variable whoever wrote it
// last: this controller takes the site over (a last one still running
// stands down, ADR 27).
func (c *Controller) saveHome(ctx context.Context) error {
	s, err := c.homeStore()
	if err != nil || s == nil {
		return err
	}
	h, err := c.homeState()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, homeTimeout)
	defer cancel()
	c.home.mu.Lock()
	defer c.home.mu.Unlock()
	index, err := s.Write(ctx, h)
	if err != nil {
		return fmt.Errorf("controller state to Nomad: %w", err)
	}
	c.home.index, c.home.epoch = index, index
	return nil
}

// ownerEpoch is this run's owner epoch, 0 before its take-over (or
// without Nomad).
func (c *Controller) ownerEpoch() uint64 {
	c.home.mu.Lock()
	defer c.home.mu.Unlock()
	return c.home.epoch
}

// saveHomeLater writes a change of the state while the site runs, only if
// no other controller wrote the variable since (else this one stands
// down); a failure is logged and recorded, the site goes on.
func (c *Controller) saveHomeLater(ctx context.Context) {
	s, err := c.homeStore()
	if s == nil && err == nil {
		return
	}
	if err == nil {
		var h nomadlaunch.Home
		if h, err = c.homeState(); err == nil {
			wctx, cancel := context.WithTimeout(ctx, homeTimeout)
			c.home.mu.Lock()
			var index uint64
			if index, err = s.Update(wctx, h, c.home.index); err == nil {
				c.home.index = index
			}
			c.home.mu.Unlock()
			cancel()
		}
	}
	if errors.Is(err, nomadlaunch.ErrTakenOver) {
		c.standDown(err.Error())
		return
	}
	if err != nil {
		c.logger.Warn("controller state not saved to Nomad", "err", err)
		c.event("config", "", "controller state not saved to Nomad: %v", err)
	}
}

// watchHome stands this controller down when another one writes the home
// variable (it took the site over), until ctx ends.
func (c *Controller) watchHome(ctx context.Context) {
	s, err := c.homeStore()
	if err != nil || s == nil {
		return
	}
	h, err := s.Watch(ctx, c.home.owner)
	if err != nil {
		return
	}
	c.standDown(fmt.Sprintf("the controller of %s on %s took the site over at %s", h.Dir, h.Host, h.At))
}

// fenceNomad is the node launcher's fence: before it changes the node job,
// this controller checks that it still owns the site (the home variable's
// owner is its run). A controller back from a cut may act before its watch
// sees the take-over (a blocking query stuck on a connection the cut
// broke); it then stands down here instead, and the change is not made.
// When the variable cannot be read, the change is not made either.
func (c *Controller) fenceNomad(ctx context.Context) error {
	if c.home.fenced.Load() {
		return nomadlaunch.ErrTakenOver
	}
	s, err := c.homeStore()
	if err != nil || s == nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, homeTimeout)
	defer cancel()
	h, ok, err := s.Read(rctx)
	if err != nil {
		return fmt.Errorf("who owns the site: %w", err)
	}
	if ok && h.Owner != "" && h.Owner != c.home.owner {
		why := fmt.Sprintf("the controller of %s on %s took the site over at %s", h.Dir, h.Host, h.At)
		c.standDown(why)
		return fmt.Errorf("%w: %s", nomadlaunch.ErrTakenOver, why)
	}
	return nil
}

// standDown stops this controller without stopping what runs on Nomad or
// through the db-agents: they are the new controller's now. Run returns;
// only this controller's own children stop.
func (c *Controller) standDown(why string) {
	if !c.home.fenced.CompareAndSwap(false, true) {
		return
	}
	c.logger.Error("another controller took this site over: standing down, leaving what runs on Nomad to it", "why", why)
	c.event("config", "", "standing down: %s; what runs on Nomad is left to it", why)
	c.home.taken <- why
}
