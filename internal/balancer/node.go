package balancer

import (
	"io"
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/scalepress/scalepress/internal/api"
)

// Upstream is one node as the controller publishes it.
type Upstream struct {
	ID   string
	Addr string
}

// Outcome is what became of a request sent to a node, as the caller saw it.
type Outcome uint8

// Outcomes reported to Node.Done.
const (
	// OK: the node answered (any status the application produced). It
	// resets the node's error and saturation streaks.
	OK Outcome = iota
	// ConnError: no usable answer — dial refused, reset, timeout before the
	// response header.
	ConnError
	// Status5xx: a 5xx the node generated itself (502, 503, 504 from the
	// agent when php-fpm fails), not one the application chose.
	Status5xx
	// Saturated: the node answered 503 with api.HeaderSaturated.
	Saturated
	// Canceled: the client went away; neither success nor failure.
	Canceled
)

var outcomeNames = [...]string{"ok", "conn-error", "status-5xx", "saturated", "canceled"}

func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "outcome(" + strconv.Itoa(int(o)) + ")"
}

// Classify maps a proxied attempt to an Outcome: a transport error is a
// ConnError (Canceled when the client's context ended); a 503 with
// api.HeaderSaturated (a node whose PHP workers are all busy and whose
// queue is full) is Saturated; 502, 503 and 504 are Status5xx because the
// agent produces them when php-fpm fails; anything else — including 500,
// which WordPress itself answers on application errors — is OK.
func Classify(status int, header http.Header, err error, clientGone bool) Outcome {
	switch {
	case clientGone:
		return Canceled
	case err != nil:
		return ConnError
	case status == http.StatusServiceUnavailable && header.Get(api.HeaderSaturated) == "1":
		return Saturated
	case status == http.StatusBadGateway, status == http.StatusServiceUnavailable, status == http.StatusGatewayTimeout:
		return Status5xx
	}
	return OK
}

// Node is one upstream as the balancer tracks it. Pick returns it with one
// more request in flight; the caller must call Done exactly once.
type Node struct {
	id   string
	addr string
	b    *Balancer
	// conns is Config.NewConns's value for this node; nil without one.
	conns io.Closer

	// Hot: every Pick and Done.
	inflight atomic.Int64
	// unmetered counts the requests in flight taken by PickBody: in
	// inflight (drains wait for them) but not toward NodeLimit.
	unmetered atomic.Int64
	picks     atomic.Uint64
	queue     atomic.Int64 // listen queue last reported by ReportLoad
	errRun    atomic.Int32 // consecutive ConnError/Status5xx
	satRun    atomic.Int32 // consecutive saturation signals
	failures  atomic.Uint64
	saturate  atomic.Uint64

	// Read by Pick without a lock, written with b.mu held.
	draining     atomic.Bool
	slowStartEnd atomic.Int64 // clock ns at which slow start ends; 0: not warming
	ejectedUntil atomic.Int64 // clock ns at which the ejection ends; 0: not ejected
	// down is the current in-service period (OutOfService); written with
	// b.mu held.
	down atomic.Pointer[downSignal]

	// Guarded by b.mu.
	healthy       bool
	removed       bool
	explicitDrain bool  // Drain, not Update: sticky until Remove
	drainStart    int64 // clock ns
	drained       chan struct{}
	drainedClosed bool
	ejections     int // escalation step of the next error ejection
	ejectedTotal  uint64
	lastEjectEnd  int64 // clock ns at which the previous ejection ended
	rises, falls  int
	lastCheckErr  string
	stateSince    int64 // clock ns of the last health, ejection or drain change
}

// ID is the node's ID as the controller published it.
func (n *Node) ID() string { return n.id }

// Addr is the node's host:port.
func (n *Node) Addr() string { return n.addr }

// Conns is the per-node state Config.NewConns made for n, or nil.
func (n *Node) Conns() io.Closer { return n.conns }

// Done ends one request that Pick gave to n and records its outcome for
// passive health checking. It does not allocate.
func (n *Node) Done(o Outcome) {
	switch o {
	case OK:
		// Load before Store: the common case writes nothing shared.
		if n.errRun.Load() != 0 {
			n.errRun.Store(0)
		}
		if n.satRun.Load() != 0 {
			n.satRun.Store(0)
		}
	case ConnError, Status5xx:
		n.failures.Add(1)
		if int(n.errRun.Add(1)) >= n.b.cfg.ErrorThreshold {
			n.b.eject(n, o)
		}
	case Saturated:
		n.saturate.Add(1)
		if th := n.b.cfg.SaturationThreshold; th > 0 && int(n.satRun.Add(1)) >= th {
			n.b.eject(n, o)
		}
	}
	n.release()
}

// release takes one request off n and signals Drained when it was the last
// one of a draining node.
func (n *Node) release() {
	if n.inflight.Add(-1) == 0 && n.draining.Load() {
		n.b.drainCheck(n)
	}
	// After the decrement: an Acquire that counted itself waiting before
	// it looked for a free node either saw this place or is seen here.
	if n.b.adm.waiting.Load() > 0 {
		n.b.dispatch()
	}
}
