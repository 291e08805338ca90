// Package balancer keeps the edge's set of upstream nodes and chooses one for
// every request.
//
// # Choosing
//
// Pick uses the power of two choices: it draws two distinct nodes at random
// from the nodes in service and takes the one with fewer requests in flight
// (plus the listen queue the node last reported, see ReportLoad); a tie is
// broken at random. The hot path takes no lock and does not allocate.
//
// A node is in service when it is healthy (active checks), not ejected
// (passive checks) and not draining. When no node is in service but some
// nodes are not draining, Pick fails open: it balances over all of them as if
// they were healthy, because a node that may be broken is better than a
// certain 503. Only when every node is draining or gone does Pick return
// ErrNoUpstream.
//
// # Life of a node
//
// Update reconciles the set with the one the controller publishes. A new node
// starts healthy — the controller only publishes nodes that passed its own
// health check — but in slow start: its weight ramps linearly from 10 % to
// 100 % over Config.SlowStart. A node that the controller stops publishing is
// drained: it gets no new requests, requests in flight finish, and Run
// forgets it once it is drained or after Config.DeregistrationDelay. A node
// that the controller publishes again while it drains returns to service,
// in slow start.
//
// Active checks (Run with a Checker) mark a node unhealthy after Fall failed
// checks in a row and healthy again after Rise good ones; a node that comes
// back from unhealthy goes through slow start again, since its php-fpm may
// have restarted with a cold opcache.
//
// Passive checks come from the outcome the caller reports to Node.Done:
// ErrorThreshold connection errors or node-generated 5xx in a row eject the
// node. An error ejection lasts EjectBase, doubling up to EjectMax when the
// node is ejected again within EjectWindow after the previous ejection
// ended. Saturation (a node refusing a request because its queue is full)
// is load, not a fault: by default it ejects nothing, since Pick already
// keeps requests away from a node with more in flight and takes it back as
// soon as its queue shrinks; with a SaturationThreshold, that many signals
// in a row eject the node for SaturationEjection, without escalation.
// Ejection never takes out the last node in service and never more than
// MaxEjectedPercent of the nodes.
package balancer
