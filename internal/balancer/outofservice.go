package balancer

import "context"

// downSignal is one in-service period of a node: cancelled when the node
// is taken out of service for failing.
type downSignal struct {
	ctx    context.Context
	cancel context.CancelFunc
}

func newDownSignal() *downSignal {
	ctx, cancel := context.WithCancel(context.Background())
	return &downSignal{ctx: ctx, cancel: cancel}
}

// OutOfService returns a context that is cancelled when n is taken out of
// service because it fails: its active checks failed Fall times in a row,
// or it was ejected for connection errors or its own 5xx (not for
// saturation: a busy node finishes what it has). A drain does not cancel
// it: requests in flight on a draining node finish. The edge cancels with
// it the requests in flight there that are safe to send again (HAProxy's
// on-marked-down shutdown-sessions). Once n is back in service a new
// context is returned. It takes no lock and does not allocate.
func (n *Node) OutOfService() context.Context {
	if d := n.down.Load(); d != nil {
		return d.ctx
	}
	return context.Background() // a Node the balancer did not make
}

// takenOutLocked signals n's requests in flight that n failed out of
// service. b.mu must be held.
func (b *Balancer) takenOutLocked(n *Node) {
	if d := n.down.Load(); d != nil && d.ctx.Err() == nil {
		d.cancel()
		b.logger.Info("node out of service: requests in flight cancelled where safe", "node", n.id, "addr", n.addr, "in_flight", n.inflight.Load())
	}
}

// backInLocked gives n a new in-service period once it is healthy and not
// ejected. b.mu must be held.
func (b *Balancer) backInLocked(n *Node, now int64) {
	if !n.healthy || ejected(n, now) {
		return
	}
	if d := n.down.Load(); d == nil || d.ctx.Err() != nil {
		n.down.Store(newDownSignal())
	}
}
