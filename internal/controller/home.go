package controller

// The controller's home (scheduler nomad, ADR 27): what a new controller
// needs to adopt the running site (the secrets nothing derives, the state
// file) is also kept in a Nomad Variable, so that `up` with an empty --dir,
// on this host or another, restores it and adopts what runs.

import (
	"context"
	"fmt"
	"os"
	"strings"
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

// saveHome writes the carried state to the home variable.
func (c *Controller) saveHome(ctx context.Context) error {
	s, err := c.homeStore()
	if err != nil || s == nil {
		return err
	}
	carry, err := statedir.ReadCarry(c.layout)
	if err != nil {
		return err
	}
	raw, err := statedir.MarshalCarry(carry)
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	ctx, cancel := context.WithTimeout(ctx, homeTimeout)
	defer cancel()
	if err := s.Write(ctx, nomadlaunch.Home{Carry: raw, Dir: c.layout.Dir, Host: host, At: time.Now().UTC().Format(time.RFC3339)}); err != nil {
		return fmt.Errorf("controller state to Nomad: %w", err)
	}
	return nil
}

// saveHomeLater is saveHome after a change of the state while the site
// runs: a failure is logged and recorded, the site goes on.
func (c *Controller) saveHomeLater(ctx context.Context) {
	if err := c.saveHome(ctx); err != nil {
		c.logger.Warn("controller state not saved to Nomad", "err", err)
		c.event("config", "", "controller state not saved to Nomad: %v", err)
	}
}
