package nodegroup

import (
	"context"
	"time"

	"github.com/scalepress/scalepress/internal/api"
)

// Node is one member of the group as a launcher knows it: an id and the
// address its node agent serves on.
type Node struct {
	ID   string
	Addr string
}

// Process is one OS process of a node, as its launcher reports it.
type Process struct {
	Name     string
	PID      int // 0 when it is not running
	Alive    bool
	Restarts int
}

// Instance is a node a launcher runs, with its processes.
type Instance struct {
	Node
	// Host is the machine it runs on as its launcher names it ("" for the
	// local launcher: this machine; the Nomad node name for Nomad).
	Host  string
	Procs []Process
	// Exit says why the node's processes are gone ("" while they run): the
	// last error of a log, a lost allocation.
	Exit string
}

// Alive reports whether every process of the node runs. A node with no
// process reported is not alive.
func (in Instance) Alive() bool {
	for _, p := range in.Procs {
		if !p.Alive {
			return false
		}
	}
	return len(in.Procs) > 0
}

// Launcher starts and stops the processes of nodes. The local launcher runs
// them as child processes of the controller; another may run them as a
// scheduler's jobs, where a lost allocation is a node whose processes are
// gone.
type Launcher interface {
	// Launch starts n's processes and returns the node as launched (the
	// launcher may choose its address) once they are started, not ready.
	Launch(ctx context.Context, n Node) (Node, error)
	// Stop stops the node's processes gracefully (its agent drains what
	// is left) and returns once they are gone or ctx ends; it forgets the
	// node. Stopping a node that is not running is not an error.
	Stop(ctx context.Context, id string) error
	// List reports every node the launcher runs and has not forgotten.
	List() []Instance
}

// Slotted is a Launcher whose scheduler runs the group as one count of
// numbered slots and chooses by itself which slot a change of the count
// affects: Nomad's reconciler places a new allocation at the lowest free
// allocation index and, when the count goes down, stops the allocations
// with the highest indices. Node i is slot i-1 there. So that the group
// never drains one node while the scheduler stops another, a group over a
// Slotted launcher
//   - drains (on scale-in) only the nodes with the highest indices, and
//     waits instead of draining when one of those is failed;
//   - replaces a failed node at its own index (Fail, then Launch of the
//     same id), never by a node at a new index;
//   - launches no node at a new index while a node drains.
//
// Stop removes the node's slot (the count goes down); Fail stops the
// node's processes and keeps its slot for the replacement. See
// docs/adr/0011-nomad-scheduler.md.
type Slotted interface {
	Launcher
	// Fail stops a failed node's processes and keeps its slot: the next
	// Launch of the same id refills it. Failing a node whose processes
	// are gone is not an error.
	Fail(ctx context.Context, id string) error
}

// NodeHost is a machine that may run nodes, as a launcher that places them
// over several knows it.
type NodeHost struct {
	Name string
	// ReadySince is when it last became ready, as its scheduler says
	// (zero: unknown).
	ReadySince time.Time
}

// Spreader is a Slotted launcher whose scheduler spreads the nodes over
// several hosts (Nomad's spread over its clients) but never moves a
// running one: after a host came back, its nodes stay on the hosts that
// replaced them. The group moves them back, one at a time
// (Config.RebalanceAfter; docs/adr/0030-rebalance-after-heal.md).
type Spreader interface {
	Slotted
	// Hosts are the hosts that may run a node now (ready, eligible, in
	// the job's datacenters and constraints). Busy, when not empty, says
	// why no node may move now (a rolling update runs). It does no I/O.
	Hosts() (hosts []NodeHost, busy string)
}

// Report is the part of a node agent's status document the group uses.
type Report struct {
	InFlight    int64
	Utilization float64 // busy PHP workers / max_children
	Waiting     int     // requests waiting for a PHP worker
	PHPDone     int64   // PHP requests completed since the node started
	PHPOK       bool    // PHP answers
	FilesReady  bool    // the docroot was bootstrapped from the files store
	FilesSeq    uint64  // the last files change the docroot applied
	// FilesQuarantined counts the files changes quarantined on the node
	// (kept failing there, skipped); FilesQuarantineLast is the last.
	FilesQuarantined    int
	FilesQuarantineLast *api.FilesQuarantine
}

// Prober asks a node agent how it is.
type Prober interface {
	// Ready returns nil once the node serves (its health check proves PHP
	// answers).
	Ready(ctx context.Context, n Node) error
	// Report is the node's status document.
	Report(ctx context.Context, n Node) (Report, error)
	// Warm requests paths from the node (Host: host) to prime its caches;
	// failures do not matter.
	Warm(ctx context.Context, n Node, host string, paths []string)
}

// Adopted is a node a launcher found running when the group started: a
// scheduler keeps its nodes while no controller runs, and a new controller
// takes them over. Index is its node-Index; Node.Addr is "" when the node's
// processes do not run (the group replaces it at its index).
type Adopted struct {
	Index int
	Node  Node
}
