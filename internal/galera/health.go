package galera

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Prober asks a member over TCP, as the monitor user, whether it serves.
type Prober struct {
	db *sql.DB
}

// NewProber opens a small pool to addr. It does not connect until Probe.
func NewProber(addr, user, password string) (*Prober, error) {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = user, password, "tcp", addr
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = time.Second, 2*time.Second, 2*time.Second
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("galera: prober: %w", err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(time.Minute)
	return &Prober{db: db}, nil
}

// Probe returns nil when the member answers. A standalone member that answers
// is in the state the contract calls "synced"; the Galera issue adds the wsrep
// checks (ready, Primary, Synced) here.
func (p *Prober) Probe(ctx context.Context) error {
	var one int
	if err := p.db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("galera: probe: %w", err)
	}
	return nil
}

// Close releases the pool.
func (p *Prober) Close() error { return p.db.Close() }
