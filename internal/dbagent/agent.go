// Package dbagent is the db-agent role (`scalepress db-agent --spec FILE`):
// on a DB host, it does for the controller's galera.Cluster what the
// cluster cannot do from another machine — read a member's datadir, run
// --wsrep-recover, clear it for SST, set safe_to_bootstrap, start and stop
// mariadbd, tail its log — over an authenticated HTTP API
// (docs/adr/0018-galera-across-hosts.md).
//
// It decides nothing: which member bootstraps, joins or is recovered, and
// the data-loss guard, stay in the cluster. It runs no arbitrary command:
// mariadbd's command line is built from the agent's spec and one of two
// start modes; it refuses a second start, and anything that writes the
// datadir, while the member runs.
package dbagent

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/scalepress/scalepress/internal/galera"
	"github.com/scalepress/scalepress/internal/token"
)

// Config of an Agent.
type Config struct {
	// ID names the agent (its token identity is the controller's, issued
	// under Key for this id).
	ID string
	// Addr is the HTTP listen address (the host's address:port).
	Addr string
	// Key verifies the controller's token (token.AgentKey(root, token.DB, ID)).
	Key token.Key
	// Members are the members on this host.
	Members []galera.MemberConfig
	// MaxStop caps how long a stop waits before it kills mariadbd.
	MaxStop time.Duration
	// MaxBody bounds a request body in bytes.
	MaxBody int64
}

// DefaultConfig has the bounds; ID, Addr, Key and Members are to be filled.
func DefaultConfig() Config {
	return Config{MaxStop: 2 * time.Minute, MaxBody: 64 << 10}
}

// Validate names the field that is wrong.
func (c Config) Validate() error {
	if err := token.ValidID(c.ID); err != nil {
		return fmt.Errorf("dbagent: id: %w", err)
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("dbagent: addr %q: %w", c.Addr, err)
	}
	if c.Key.IsZero() {
		return fmt.Errorf("dbagent: key: not set")
	}
	if len(c.Members) == 0 {
		return fmt.Errorf("dbagent: members: at least one is needed")
	}
	seen := map[string]bool{}
	for _, m := range c.Members {
		if err := m.Validate(); err != nil {
			return fmt.Errorf("dbagent: members: %w", err)
		}
		if seen[m.ID] {
			return fmt.Errorf("dbagent: members: %s appears twice", m.ID)
		}
		seen[m.ID] = true
	}
	if c.MaxStop <= 0 || c.MaxBody <= 0 {
		return fmt.Errorf("dbagent: max_stop and max_body must be positive")
	}
	return nil
}

// Agent serves the API for its members.
type Agent struct {
	cfg    Config
	host   galera.Host
	logger *slog.Logger

	mu      sync.Mutex
	members map[string]*member

	// epochMu is held for reading by every request while it runs, and for
	// writing while epoch is raised (epoch.go).
	epochMu sync.RWMutex
	epoch   uint64 // the highest owner epoch seen (0: none)
}

type member struct {
	cfg galera.MemberConfig
	// busy serialises the operations on one member: a start and a clear
	// never interleave.
	busy sync.Mutex
	proc galera.Proc // the last run; nil before the first start
}

// New returns an agent that carries out the operations on host (the
// galera.Local of this machine; a fake in tests).
func New(cfg Config, host galera.Host, logger *slog.Logger) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	epoch, err := loadEpoch(cfg.Members)
	if err != nil {
		return nil, fmt.Errorf("dbagent: owner epoch: %w", err)
	}
	a := &Agent{cfg: cfg, host: host, logger: logger, members: map[string]*member{}, epoch: epoch}
	for _, m := range cfg.Members {
		a.members[m.ID] = &member{cfg: m}
	}
	return a, nil
}

func running(p galera.Proc) bool {
	if p == nil {
		return false
	}
	select {
	case <-p.Done():
		return false
	default:
		return true
	}
}

// Run serves on cfg.Addr until ctx ends, then stops every member it runs
// (mariadbd writes its position on a clean stop) and returns.
func (a *Agent) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", a.cfg.Addr)
	if err != nil {
		return fmt.Errorf("dbagent: listen: %w", err)
	}
	srv := &http.Server{
		Handler:           a.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(a.logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	a.logger.Info("db-agent serving", "addr", ln.Addr().String(), "members", len(a.members))
	select {
	case <-ctx.Done():
	case err := <-errc:
		a.stopAll()
		return fmt.Errorf("dbagent: serve: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	srv.Shutdown(sctx)
	cancel()
	<-errc
	a.stopAll()
	return nil
}

func (a *Agent) stopAll() {
	var wg sync.WaitGroup
	for _, m := range a.members {
		m.busy.Lock()
		p := m.proc
		m.busy.Unlock()
		if !running(p) {
			continue
		}
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), a.cfg.MaxStop)
			defer cancel()
			if err := p.Stop(ctx); err != nil {
				a.logger.Warn("stop member", "member", m.cfg.ID, "err", err)
			}
			<-p.Done()
		})
	}
	wg.Wait()
}
