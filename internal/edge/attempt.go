package edge

import (
	"errors"
	"net/http"
	"time"

	"github.com/scalepress/scalepress/internal/balancer"
	"github.com/scalepress/scalepress/internal/upstream"
)

// DefaultUpstreamHeaderTimeout is http.upstream_header_timeout's default:
// about twice the slowest uncached page measured through the edge, 8.4 s
// at overload (bench/results/capacity-2026-12-07.txt); a GET cut at it
// still gets its answer from the second node, which is waited for as long
// as any (130 s).
const DefaultUpstreamHeaderTimeout = 15 * time.Second

// The causes with which the edge cuts an attempt short before the node's
// response head (ADR 0021): the request is sent once more, to another node.
var (
	errNodeOutOfService = errors.New("the node was taken out of service before it answered")
	errHeadTimeout      = errors.New("no response head from the node within http.upstream_header_timeout")
)

// attemptWatch cuts one attempt of a request that is safe to send again
// (GET, HEAD, OPTIONS without a body) while it waits for the node's
// response head: when the node is taken out of service (registered on the
// node: balancer.Node.WatchDown), and for GET and HEAD when another node
// is in service, after the edge's header timeout. Once the head has
// arrived it no longer cuts (upstream.Watch): a body being passed on is
// never cut short. No context per attempt: one allocation, and a timer
// when there is a header timeout.
type attemptWatch struct {
	up    upstream.Watch
	down  balancer.DownWatch
	timer *time.Timer
}

// watchAttempt returns the watch of one attempt to node, for
// upstream.Client.DoWatched; stop ends it. headTimeout 0: no timeout. A
// node already out of service (the balancer fails open: none is in
// service) is not watched for it.
func watchAttempt(node *balancer.Node, headTimeout time.Duration) *attemptWatch {
	w := &attemptWatch{}
	node.WatchDown(&w.down, w)
	if headTimeout > 0 {
		w.timer = time.AfterFunc(headTimeout, w.headTimeout)
	}
	return w
}

// NodeDown is balancer.DownWatcher's: the node failed out of service.
func (w *attemptWatch) NodeDown() { w.up.Cut(errNodeOutOfService) }

func (w *attemptWatch) headTimeout() { w.up.Cut(errHeadTimeout) }

// stop ends the watch once the attempt's answer head (or its failure) is
// in, and reports whether the watch cut the attempt.
func (w *attemptWatch) stop() (cut bool) {
	w.down.Stop()
	if w.timer != nil {
		w.timer.Stop()
	}
	return w.up.Err() != nil
}

// safeToCut reports whether an attempt of method may be cut short and sent
// again: idempotent and without a body to replay.
func safeToCut(method string, out *http.Request) bool {
	if out.Body != nil {
		return false
	}
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	return false
}

// headTimeoutFor is the header timeout of an attempt of method: only GET
// and HEAD, and only when another node is in service to try instead.
func (e *Edge) headTimeoutFor(method string) time.Duration {
	if e.headerTimeout <= 0 || method != http.MethodGet && method != http.MethodHead {
		return 0
	}
	if e.bal.InService() < 2 {
		return 0
	}
	return e.headerTimeout
}
