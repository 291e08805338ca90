package galera

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Status is what a member says about itself in SHOW GLOBAL STATUS LIKE 'wsrep%'.
type Status struct {
	Ready             bool    `json:"ready"`          // wsrep_ready=ON
	Connected         bool    `json:"connected"`      // wsrep_connected=ON
	ClusterStatus     string  `json:"cluster_status"` // Primary, non-Primary, Disconnected
	LocalState        int     `json:"local_state"`    // 1 Joining, 2 Donor/Desynced, 3 Joined, 4 Synced
	LocalStateComment string  `json:"local_state_comment"`
	ClusterSize       int     `json:"cluster_size"`
	StateUUID         string  `json:"state_uuid"` // wsrep_cluster_state_uuid: the cluster's history
	LastCommitted     int64   `json:"last_committed"`
	FlowControlPaused float64 `json:"flow_control_paused"` // fraction of time paused since the last FLUSH STATUS
	RecvQueue         int64   `json:"recv_queue"`
	EVSState          string  `json:"evs_state,omitempty"`
}

// Primary reports whether the member is in the primary component (has quorum).
func (s Status) Primary() bool { return s.ClusterStatus == "Primary" }

// Synced is the one state in which a member may take traffic.
func (s Status) Synced() bool { return s.Ready && s.Primary() && s.LocalState == 4 }

// Position is the member's current place in the cluster history.
func (s Status) Position() Position { return Position{UUID: s.StateUUID, Seqno: s.LastCommitted} }

// ParseStatus reads the wsrep_* variables (names lowercased or not).
func ParseStatus(vars map[string]string) Status {
	get := func(k string) string {
		if v, ok := vars[k]; ok {
			return v
		}
		return vars[strings.ToUpper(k)]
	}
	var s Status
	s.Ready = strings.EqualFold(get("wsrep_ready"), "ON")
	s.Connected = strings.EqualFold(get("wsrep_connected"), "ON")
	s.ClusterStatus = get("wsrep_cluster_status")
	s.LocalState, _ = strconv.Atoi(get("wsrep_local_state"))
	s.LocalStateComment = get("wsrep_local_state_comment")
	s.ClusterSize, _ = strconv.Atoi(get("wsrep_cluster_size"))
	s.StateUUID = get("wsrep_cluster_state_uuid")
	s.LastCommitted, _ = strconv.ParseInt(get("wsrep_last_committed"), 10, 64)
	s.FlowControlPaused, _ = strconv.ParseFloat(get("wsrep_flow_control_paused"), 64)
	s.RecvQueue, _ = strconv.ParseInt(get("wsrep_local_recv_queue"), 10, 64)
	s.EVSState = get("wsrep_evs_state")
	return s
}

// Prober asks a member over TCP, as the monitor user, how it is.
type Prober struct {
	db *sql.DB
}

// NewProber opens a small pool to addr, connecting through dial (nil: a
// plain TCP dial). It does not connect until Probe.
func NewProber(addr, user, password string, dial func(ctx context.Context, network, addr string) (net.Conn, error)) (*Prober, error) {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = user, password, "tcp", addr
	cfg.DialFunc = dial
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

// Probe returns nil when the member answers SELECT 1 (a standalone member
// that answers serves).
func (p *Prober) Probe(ctx context.Context) error {
	var one int
	if err := p.db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("galera: probe: %w", err)
	}
	return nil
}

// Status reads the member's wsrep status.
func (p *Prober) Status(ctx context.Context) (Status, error) {
	rows, err := p.db.QueryContext(ctx, "SHOW GLOBAL STATUS LIKE 'wsrep%'")
	if err != nil {
		return Status{}, fmt.Errorf("galera: status: %w", err)
	}
	defer rows.Close()
	vars := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return Status{}, fmt.Errorf("galera: status: %w", err)
		}
		vars[strings.ToLower(k)] = v
	}
	if err := rows.Err(); err != nil {
		return Status{}, fmt.Errorf("galera: status: %w", err)
	}
	return ParseStatus(vars), nil
}

// Close releases the pool.
func (p *Prober) Close() error { return p.db.Close() }
