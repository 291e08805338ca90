// Package dbrouter is the one SQL address of the site. It relays each client
// connection to a synced database member from the list the controller
// publishes. In single-writer mode (the default) every connection goes to
// one member — the first of the list (the lowest synced id), kept while it
// stays in the list — so that WordPress's hot rows never meet Galera's
// certification conflicts; in multi-writer mode each connection goes to the
// member with the fewest. A member that leaves the list has its connections
// closed so that clients reconnect to another one; so has a member a dial
// to which failed (when a client came, or the router's own
// watch of the members it relays to): a host cut off is seen in about a
// second, without waiting for the controller's list.
package dbrouter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/metrics"
)

// Modes.
const (
	ModeSingle = "single"
	ModeMulti  = "multi"
)

// Config of the router.
type Config struct {
	Addr         string   // listen address
	Members      []string // initial member addresses, in preference order
	IDs          []string // optional names of Members, for metrics
	MembersURL   string   // optional: polled for api.DBMembers
	Mode         string   // ModeSingle (default) or ModeMulti
	MetricsAddr  string   // optional: GET /metrics and /status
	PollInterval time.Duration
	DialTimeout  time.Duration
	// DownFor: after a failed dial, a member is skipped this long (or
	// until the controller publishes a new list).
	DownFor time.Duration
}

// DefaultConfig returns a router on the architecture's default address.
func DefaultConfig() Config {
	return Config{Addr: "127.0.0.1:3306", Mode: ModeSingle, PollInterval: time.Second, DialTimeout: time.Second, DownFor: 2 * time.Second}
}

// ConfigFromSpec is the configuration of `scalepress dbrouter --spec`.
func ConfigFromSpec(s api.RouterSpec) Config {
	c := DefaultConfig()
	c.Addr, c.Members, c.MembersURL, c.MetricsAddr = s.Addr, s.Members, s.MembersURL, s.MetricsAddr
	if s.Mode != "" {
		c.Mode = s.Mode
	}
	return c
}

// Validate names the field that is wrong.
func (c Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("dbrouter: addr %q: %w", c.Addr, err)
	}
	if len(c.Members) == 0 && c.MembersURL == "" {
		return fmt.Errorf("dbrouter: members: need at least one member or a members_url")
	}
	if len(c.IDs) > 0 && len(c.IDs) != len(c.Members) {
		return fmt.Errorf("dbrouter: ids: %d names for %d members", len(c.IDs), len(c.Members))
	}
	if c.Mode != "" && c.Mode != ModeSingle && c.Mode != ModeMulti {
		return fmt.Errorf("dbrouter: mode %q: must be single or multi", c.Mode)
	}
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			return fmt.Errorf("dbrouter: metrics_addr %q: %w", c.MetricsAddr, err)
		}
	}
	if c.PollInterval <= 0 || c.DialTimeout <= 0 {
		return fmt.Errorf("dbrouter: poll_interval and dial_timeout must be positive")
	}
	return nil
}

// Router relays SQL connections.
type Router struct {
	cfg        Config
	logger     *slog.Logger
	registry   *prometheus.Registry
	active     atomic.Int64
	total      atomic.Int64
	failovers  atomic.Int64
	dialErrors atomic.Int64
	rejected   atomic.Int64

	mu      sync.Mutex
	members []string             // synced members, preference order
	ids     map[string]string    // addr -> id
	mode    string               // ModeSingle or ModeMulti
	writer  string               // single mode: the member new connections go to
	down    map[string]time.Time // addr -> skipped until (failed dial)
	conns   map[net.Conn]string  // client conn -> member it is relayed to
	perConn map[string]int       // member -> relayed connections now
	perTot  map[string]int64     // member -> relayed connections ever
}

// New returns a router; Run serves it.
func New(cfg Config, logger *slog.Logger) (*Router, error) {
	if cfg.Mode == "" {
		cfg.Mode = ModeSingle
	}
	if cfg.DownFor <= 0 {
		cfg.DownFor = 2 * time.Second
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Router{cfg: cfg, logger: logger, mode: cfg.Mode, ids: map[string]string{}, down: map[string]time.Time{},
		conns: map[net.Conn]string{}, perConn: map[string]int{}, perTot: map[string]int64{}}
	r.setLocked(slices.Clone(cfg.Members), cfg.IDs, cfg.Mode)
	r.registry = metrics.NewRegistry(newRouterCollector(r))
	return r, nil
}

// Update applies what the controller published.
func (r *Router) Update(m api.DBMembers) {
	r.mu.Lock()
	defer r.mu.Unlock()
	mode := r.mode
	if m.Mode == ModeSingle || m.Mode == ModeMulti {
		mode = m.Mode
	}
	if len(m.IDs) != len(m.Members) {
		m.IDs = nil
	}
	if slices.Equal(m.Members, r.members) && mode == r.mode {
		return
	}
	r.logger.Info("members changed", "from", r.members, "to", m.Members, "mode", mode)
	r.setLocked(slices.Clone(m.Members), m.IDs, mode)
}

func (r *Router) setLocked(members, ids []string, mode string) {
	r.members, r.mode = members, mode
	for i, id := range ids {
		r.ids[members[i]] = id
	}
	clear(r.down) // a new list from the controller is fresher than our dial failures
	prev := r.writer
	r.pickWriterLocked()
	if prev != "" && r.writer != prev {
		r.failovers.Add(1)
		r.logger.Warn("writer changed", "from", r.name(prev), "to", r.name(r.writer))
	}
	for c, m := range r.conns {
		if !slices.Contains(members, m) || (mode == ModeSingle && m != r.writer) {
			c.Close()
		}
	}
}

// pickWriterLocked keeps the writer while it is usable, else takes the first
// usable member of the list: deterministic, and no needless moves.
func (r *Router) pickWriterLocked() {
	now := time.Now()
	usable := func(m string) bool { return slices.Contains(r.members, m) && !now.Before(r.down[m]) }
	if r.writer != "" && usable(r.writer) {
		return
	}
	r.writer = ""
	for _, m := range r.members {
		if usable(m) {
			r.writer = m
			return
		}
	}
}

// pick chooses the member for a new connection; "" when none is usable.
func (r *Router) pick() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mode == ModeSingle {
		prev := r.writer
		r.pickWriterLocked()
		if prev != "" && r.writer != prev && r.writer != "" {
			r.failovers.Add(1)
			r.logger.Warn("writer changed", "from", r.name(prev), "to", r.name(r.writer))
		}
		return r.writer
	}
	now := time.Now()
	best, bestN := "", 0
	for _, m := range r.members {
		if now.Before(r.down[m]) {
			continue
		}
		if n := r.perConn[m]; best == "" || n < bestN {
			best, bestN = m, n
		}
	}
	return best
}

// markDown skips m for DownFor after a dial to it failed, and closes the
// connections relayed to it: they may hang as long as TCP lets them (a
// host cut off answers nothing), and WordPress waits on them. Clients
// reconnect, as when the controller drops a member; in single mode, to the
// next writer.
func (r *Router) markDown(m string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.down[m] = time.Now().Add(r.cfg.DownFor)
	if r.mode == ModeSingle && r.writer == m {
		r.pickWriterLocked()
		if r.writer != "" {
			r.failovers.Add(1)
			r.logger.Warn("writer changed", "from", r.name(m), "to", r.name(r.writer))
		}
	}
	for c, cm := range r.conns {
		if cm == m {
			c.Close()
		}
	}
}

// watch dials, every PollInterval, each member that carries connections
// (and the single-mode writer): a member whose host is cut off is seen
// within a dial timeout even when no new client comes to find it, which
// the controller's list takes far longer to show across hosts. A dial
// closed before the handshake counts in the member's Aborted_connects; it
// never blocks the router's host (max_connect_errors): the members run
// with skip-name-resolve, which bypasses MariaDB's host cache.
func (r *Router) watch(ctx context.Context) {
	t := time.NewTicker(r.cfg.PollInterval)
	defer t.Stop()
	d := net.Dialer{Timeout: r.cfg.DialTimeout}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, m := range r.watched() {
			c, err := d.DialContext(ctx, "tcp", m)
			if err == nil {
				c.Close()
				continue
			}
			if ctx.Err() != nil {
				return
			}
			r.dialErrors.Add(1)
			r.logger.Warn("member unreachable", "member", r.name(m), "err", err, "by", "watch")
			r.markDown(m)
		}
	}
}

// watched is the members watch dials: those with relayed connections and
// the writer, not skipped already.
func (r *Router) watched() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	var out []string
	for _, m := range r.members {
		if now.Before(r.down[m]) {
			continue
		}
		if r.perConn[m] > 0 || (r.mode == ModeSingle && m == r.writer) {
			out = append(out, m)
		}
	}
	return out
}

func (r *Router) name(addr string) string {
	if id, ok := r.ids[addr]; ok {
		return id
	}
	return addr
}

// Run listens and relays until ctx ends; it then closes every connection.
func (r *Router) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", r.cfg.Addr)
	if err != nil {
		return fmt.Errorf("dbrouter: %w", err)
	}
	var wg sync.WaitGroup
	if r.cfg.MetricsAddr != "" {
		mln, err := net.Listen("tcp", r.cfg.MetricsAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("dbrouter: metrics: %w", err)
		}
		srv := &http.Server{Handler: r.Handler(), ReadHeaderTimeout: 5 * time.Second}
		wg.Go(func() { srv.Serve(mln) })
		wg.Go(func() {
			<-ctx.Done()
			srv.Close()
		})
	}
	if r.cfg.MembersURL != "" {
		wg.Go(func() { r.poll(ctx) })
	}
	wg.Go(func() { r.watch(ctx) })
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	r.logger.Info("listening", "addr", r.cfg.Addr, "mode", r.cfg.Mode)
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
		r.pollOnce(ctx, client)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// pollOnce asks the controller for the members and applies its answer. An
// empty list is applied too: no synced member means no new connection,
// rather than one to a member that is not synced. Any answer but a 200 (no
// answer, or 503 from a controller that has not observed the members yet:
// one starting, or taking the site over) keeps the list: the members that
// served go on serving until a controller that looked says otherwise.
func (r *Router) pollOnce(ctx context.Context, client *api.Client) {
	var m api.DBMembers
	if err := client.Get(ctx, "", &m); err == nil {
		r.Update(m)
	}
}

func (r *Router) relay(ctx context.Context, client net.Conn) {
	defer client.Close()
	var server net.Conn
	var member string
	d := net.Dialer{Timeout: r.cfg.DialTimeout}
	for range 8 {
		m := r.pick()
		if m == "" {
			break
		}
		c, err := d.DialContext(ctx, "tcp", m)
		if err == nil {
			server, member = c, m
			break
		}
		r.dialErrors.Add(1)
		r.logger.Warn("member unreachable", "member", r.name(m), "err", err)
		r.markDown(m)
	}
	if server == nil {
		r.rejected.Add(1)
		return // the client sees the connection closed before the handshake
	}
	defer server.Close()
	r.mu.Lock()
	if !slices.Contains(r.members, member) || (r.mode == ModeSingle && member != r.writer) { // changed while we dialled
		r.mu.Unlock()
		r.rejected.Add(1)
		return
	}
	r.conns[client] = member
	r.perConn[member]++
	r.perTot[member]++
	r.mu.Unlock()
	r.active.Add(1)
	r.total.Add(1)
	defer func() {
		r.mu.Lock()
		delete(r.conns, client)
		r.perConn[member]--
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
