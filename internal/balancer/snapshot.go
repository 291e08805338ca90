package balancer

import "time"

// States a node can be in, as Snapshot reports them.
const (
	StateInService = "in-service"
	StateWarming   = "warming" // in service, in slow start
	StateEjected   = "ejected"
	StateUnhealthy = "unhealthy"
	StateDraining  = "draining"
	StateDrained   = "drained" // draining with nothing in flight
)

// Snapshot is the balancer's state for metrics and status.
type Snapshot struct {
	// FailOpen is true when no node is in service and Pick balances over
	// all non-draining nodes.
	FailOpen bool
	Nodes    []NodeStatus // by ID
}

// NodeStatus is one node in a Snapshot.
type NodeStatus struct {
	ID       string
	Addr     string
	State    string    // one of the State constants
	Since    time.Time // last change of health, ejection or drain
	InFlight int64
	Queue    int64 // as last reported by ReportLoad
	Healthy  bool  // active checks
	// EjectedUntil is zero when the node is not ejected.
	EjectedUntil time.Time
	Draining     bool
	// Weight is the slow-start weight: 0.1 to 1.
	Weight      float64
	Picks       uint64
	Failures    uint64 // ConnError and Status5xx outcomes
	Saturations uint64 // Saturated outcomes and saturated ReportLoad calls
	Ejections   uint64
	LastCheck   string // error of the last failed active check; empty after a good one
}

// Snapshot returns the state of every node, draining ones included.
func (b *Balancer) Snapshot() Snapshot {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clock()
	if v := b.view.Load(); now >= v.expires {
		b.publishLocked(now)
	}
	s := Snapshot{FailOpen: b.failOpen, Nodes: make([]NodeStatus, 0, len(b.order))}
	for _, n := range b.order {
		ns := NodeStatus{
			ID:          n.id,
			Addr:        n.addr,
			Since:       b.wall(n.stateSince),
			InFlight:    n.inflight.Load(),
			Queue:       n.queue.Load(),
			Healthy:     n.healthy,
			Draining:    n.draining.Load(),
			Weight:      n.weight(int64(b.cfg.SlowStart), now),
			Picks:       n.picks.Load(),
			Failures:    n.failures.Load(),
			Saturations: n.saturate.Load(),
			Ejections:   n.ejectedTotal,
			LastCheck:   n.lastCheckErr,
		}
		if ejected(n, now) {
			ns.EjectedUntil = b.wall(n.ejectedUntil.Load())
		}
		switch {
		case ns.Draining && n.drainedClosed:
			ns.State = StateDrained
		case ns.Draining:
			ns.State = StateDraining
		case !n.healthy:
			ns.State = StateUnhealthy
		case !ns.EjectedUntil.IsZero():
			ns.State = StateEjected
		case ns.Weight < 1:
			ns.State = StateWarming
		default:
			ns.State = StateInService
		}
		s.Nodes = append(s.Nodes, ns)
	}
	return s
}

// InService is the number of nodes Pick chooses from when it is not failing
// open; 0 means no node passes its health checks. It takes no lock.
func (b *Balancer) InService() int {
	return len(b.view.Load().ready)
}
