package edge

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync/atomic"
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
// response head: when the node is taken out of service
// (balancer.Node.OutOfService), and for GET and HEAD when another node is
// in service, after the edge's header timeout. Once the head has arrived
// it no longer cuts: a body being passed on is never cut short.
type attemptWatch struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	// state: watching, headIn (the head arrived in time), or the cut's
	// cause: cutDown, cutTimeout.
	state    atomic.Int32
	stopDown func() bool
	timer    *time.Timer
}

const (
	watching int32 = iota
	headIn
	cutDown
	cutTimeout
)

// watchAttempt returns the watch of one attempt to node; its ctx is the
// attempt's. headTimeout 0: no timeout. A node already out of service
// (the balancer fails open: none is in service) is not watched for it.
func watchAttempt(ctx context.Context, node *balancer.Node, headTimeout time.Duration) *attemptWatch {
	w := &attemptWatch{stopDown: func() bool { return false }}
	w.ctx, w.cancel = context.WithCancelCause(ctx)
	if down := node.OutOfService(); down.Err() == nil {
		w.stopDown = context.AfterFunc(down, func() { w.cut(cutDown, errNodeOutOfService) })
	}
	if headTimeout > 0 {
		w.timer = time.AfterFunc(headTimeout, func() { w.cut(cutTimeout, errHeadTimeout) })
	}
	return w
}

func (w *attemptWatch) cut(state int32, cause error) {
	if w.state.CompareAndSwap(watching, state) {
		w.cancel(cause)
	}
}

// headDone ends the watch when the node's answer (or its failure) is in.
// It returns the cause when the watch cut the attempt short first; the
// attempt's answer, if any, must then be dropped.
func (w *attemptWatch) headDone() error {
	w.stopDown()
	if w.timer != nil {
		w.timer.Stop()
	}
	if w.state.CompareAndSwap(watching, headIn) {
		return nil
	}
	if w.state.Load() == cutTimeout {
		return errHeadTimeout
	}
	return errNodeOutOfService
}

// settle ends the watch with the attempt's result: an answer that came
// after the cut is dropped, a failure caused by the cut gets the cut's
// cause (not context.Canceled: the client is still there), and the
// attempt's context is released now, or when the answer's body is closed.
func (w *attemptWatch) settle(resp *http.Response, err error) (*http.Response, error) {
	cause := w.headDone()
	switch {
	case cause == nil && err == nil:
		resp.Body = &releaseOnClose{ReadCloser: resp.Body, w: w}
		return resp, nil
	case cause == nil:
		w.release()
		return nil, err
	}
	w.release()
	if err == nil {
		// The head came as the cut fell: nothing was passed on yet.
		resp.Body.Close()
		return nil, &upstream.Error{Op: "read", Written: true, Err: cause}
	}
	ue := &upstream.Error{Op: "read", Written: true}
	errors.As(err, &ue)
	return nil, &upstream.Error{Op: ue.Op, Written: ue.Written, GotResponse: ue.GotResponse, Err: cause}
}

func (w *attemptWatch) wasCut() bool { s := w.state.Load(); return s == cutDown || s == cutTimeout }

// release frees the attempt's context: after its body is closed, or at
// once when it failed.
func (w *attemptWatch) release() { w.cancel(nil) }

// releaseOnClose releases the attempt's context when the response body
// is closed: the body is read under that context.
type releaseOnClose struct {
	io.ReadCloser
	w *attemptWatch
}

func (r *releaseOnClose) Close() error {
	err := r.ReadCloser.Close()
	r.w.release()
	return err
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
