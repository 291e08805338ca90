package galera

import (
	"context"
	"errors"
	"fmt"
)

// Host is everything the cluster does on a member's host: the driver
// (cluster.go) decides, a Host carries out. Local does it on this machine
// (the datadir is read and mariadbd started here); Remote asks the member's
// db-agent over HTTP (docs/adr/0018-galera-across-hosts.md). A Host never
// decides anything: which member bootstraps, joins or is recovered, and the
// data-loss guard, stay in the Cluster.
//
// The interface is wider than most in this codebase on purpose: it is the
// one seam between the cluster and a member's machine, and each method is
// one operation the agent API names.
type Host interface {
	// Prepare makes the member's directories and writes its my.cnf; it
	// never touches the datadir's content.
	Prepare(ctx context.Context, m MemberConfig) error
	// Inspect reads what the member's datadir holds.
	Inspect(ctx context.Context, m MemberConfig) (Disk, error)
	// Init makes a new, empty database in the datadir (what was there is removed).
	Init(ctx context.Context, m MemberConfig) error
	// Recover runs mariadbd --wsrep-recover on the stopped member.
	Recover(ctx context.Context, m MemberConfig) (Position, error)
	// ClearForSST empties the datadir of a member that gets a full copy,
	// marked so that a half-made copy is never taken for data; SSTDone
	// removes the mark once the member is synced.
	ClearForSST(ctx context.Context, m MemberConfig) error
	SSTDone(ctx context.Context, m MemberConfig) error
	// SetSafeToBootstrap rewrites grastate.dat's safe_to_bootstrap.
	SetSafeToBootstrap(ctx context.Context, m MemberConfig, safe bool) error
	// Start runs mariadbd for the member in mode, at pos when known. It is
	// never restarted by the host: every start is the cluster's decision.
	Start(ctx context.Context, m MemberConfig, mode StartMode, pos *Position) (Proc, error)
	// Adopt returns the member's mariadbd when one already runs, started
	// for an earlier controller; ok is false when none does.
	Adopt(ctx context.Context, m MemberConfig) (p Proc, ok bool, err error)
	// LastError is the line of the member's log that says why it failed;
	// LogName says where that log is, for messages.
	LastError(ctx context.Context, m MemberConfig) string
	LogName(m MemberConfig) string
	// Ping asks the running member for SELECT 1 as root over its socket.
	Ping(ctx context.Context, m MemberConfig) error
	// EnsureSite creates the site's database and users (EnsureSite).
	EnsureSite(ctx context.Context, m MemberConfig, g Grant) error
	// PCBootstrap makes the running member a primary component on its own.
	PCBootstrap(ctx context.Context, m MemberConfig) error
}

// ErrUnreachable means the member's host did not answer: nothing is known
// of the member, which is not the same as "it has no data".
var ErrUnreachable = errors.New("host unreachable")

// Disk is what a member's datadir holds.
type Disk struct {
	// Initialized: mariadb-install-db completed here (the init marker).
	Initialized bool `json:"initialized"`
	// HasData: a database made by install-db or received by a completed SST.
	HasData bool `json:"has_data"`
	// Grastate is grastate.dat; nil when there is none (or it does not parse).
	Grastate *GraState `json:"grastate,omitempty"`
	// ViewID is gvwstate.dat's view_id ("" when absent).
	ViewID string `json:"view_id,omitempty"`
}

// StartMode is how mariadbd is started: the one choice a caller makes about
// its command line, which is otherwise built from the member's config.
type StartMode string

const (
	// ModeBootstrap founds a new primary component (--wsrep-new-cluster).
	ModeBootstrap StartMode = "bootstrap"
	// ModeJoin starts plainly: a cluster member joins its peers; a
	// standalone server just starts.
	ModeJoin StartMode = "join"
)

// StartArgs are the one-off options of a start, never persisted anywhere.
func StartArgs(mode StartMode, pos *Position) ([]string, error) {
	var args []string
	switch mode {
	case ModeBootstrap:
		args = append(args, "--wsrep-new-cluster")
	case ModeJoin:
	default:
		return nil, fmt.Errorf("galera: start mode %q: must be bootstrap or join", mode)
	}
	if pos != nil {
		if !pos.Known() {
			return nil, fmt.Errorf("galera: start position %s is not a known position", pos)
		}
		args = append(args, "--wsrep_start_position="+pos.String())
	}
	return args, nil
}
