// Package dbrouter is the one SQL address of the site. It relays each client
// connection to a database member: the first answering member of the list the
// controller publishes (single writer). A member that leaves the list has its
// connections closed so that clients reconnect to the new one.
package dbrouter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scalepress/scalepress/internal/api"
)

// Config of the router.
type Config struct {
	Addr         string   // listen address
	Members      []string // initial member addresses, in preference order
	MembersURL   string   // optional: polled for api.DBMembers
	PollInterval time.Duration
	DialTimeout  time.Duration
}

// DefaultConfig returns a router on the architecture's default address.
func DefaultConfig() Config {
	return Config{Addr: "127.0.0.1:3306", PollInterval: time.Second, DialTimeout: time.Second}
}

// Validate names the field that is wrong.
func (c Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("dbrouter: addr %q: %w", c.Addr, err)
	}
	if len(c.Members) == 0 && c.MembersURL == "" {
		return fmt.Errorf("dbrouter: members: need at least one member or a members_url")
	}
	if c.PollInterval <= 0 || c.DialTimeout <= 0 {
		return fmt.Errorf("dbrouter: poll_interval and dial_timeout must be positive")
	}
	return nil
}

// Router relays SQL connections.
type Router struct {
	cfg    Config
	logger *slog.Logger
	active atomic.Int64
	total  atomic.Int64

	mu      sync.Mutex
	members []string
	conns   map[net.Conn]string // client conn -> member it is relayed to
}

// New returns a router; Run serves it.
func New(cfg Config, logger *slog.Logger) (*Router, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Router{cfg: cfg, logger: logger, members: slices.Clone(cfg.Members), conns: map[net.Conn]string{}}, nil
}

// SetMembers replaces the member list; connections to members no longer in it are closed.
func (r *Router) SetMembers(members []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if slices.Equal(members, r.members) {
		return
	}
	r.logger.Info("members changed", "from", r.members, "to", members)
	r.members = slices.Clone(members)
	for c, m := range r.conns {
		if !slices.Contains(members, m) {
			c.Close()
		}
	}
}

// Run listens and relays until ctx ends; it then closes every connection.
func (r *Router) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", r.cfg.Addr)
	if err != nil {
		return fmt.Errorf("dbrouter: %w", err)
	}
	var wg sync.WaitGroup
	if r.cfg.MembersURL != "" {
		wg.Go(func() { r.poll(ctx) })
	}
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	r.logger.Info("listening", "addr", r.cfg.Addr)
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if errors.Is(err, net.ErrClosed) {
				break
			}
			r.logger.Warn("accept", "err", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		wg.Go(func() { r.relay(ctx, c) })
	}
	r.mu.Lock()
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	wg.Wait()
	return nil
}

func (r *Router) poll(ctx context.Context) {
	client := api.NewClient(r.cfg.MembersURL)
	client.HTTP.Timeout = 2 * time.Second
	t := time.NewTicker(r.cfg.PollInterval)
	defer t.Stop()
	for {
		var m api.DBMembers
		if err := client.Get(ctx, "", &m); err == nil && len(m.Members) > 0 {
			r.SetMembers(m.Members)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (r *Router) relay(ctx context.Context, client net.Conn) {
	defer client.Close()
	r.mu.Lock()
	members := slices.Clone(r.members)
	r.mu.Unlock()
	var server net.Conn
	var member string
	d := net.Dialer{Timeout: r.cfg.DialTimeout}
	for _, m := range members {
		c, err := d.DialContext(ctx, "tcp", m)
		if err == nil {
			server, member = c, m
			break
		}
		r.logger.Warn("member unreachable", "member", m, "err", err)
	}
	if server == nil {
		return // the client sees the connection closed before the handshake
	}
	defer server.Close()
	r.mu.Lock()
	if !slices.Contains(r.members, member) { // left while we dialled
		r.mu.Unlock()
		return
	}
	r.conns[client] = member
	r.mu.Unlock()
	r.active.Add(1)
	r.total.Add(1)
	defer func() {
		r.mu.Lock()
		delete(r.conns, client)
		r.mu.Unlock()
		r.active.Add(-1)
	}()

	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(server, client)
	go pipe(client, server)
	<-done
	// One side finished: end both so the other copy returns too.
	client.Close()
	server.Close()
	<-done
}

// Active is the number of relayed connections now.
func (r *Router) Active() int64 { return r.active.Load() }
