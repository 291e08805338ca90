package balancer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

// RetryPolicy says how often the edge retries a request on another node.
type RetryPolicy struct {
	// Max is the number of retries after the first attempt; 0 disables.
	Max int
}

// DefaultRetryPolicy allows 2 retries, so a request tries 3 nodes at most.
func DefaultRetryPolicy() RetryPolicy { return RetryPolicy{Max: 2} }

// Validate names the invalid field.
func (p RetryPolicy) Validate() error {
	if p.Max < 0 {
		return fmt.Errorf("balancer: config: Retry.Max: must not be negative, got %d", p.Max)
	}
	return nil
}

// ErrSaturated is the error the edge passes to Retryable for a response the
// node marked with api.HeaderSaturated.
var ErrSaturated = errors.New("balancer: node saturated")

// Retryable reports whether a failed attempt may be repeated on another
// node:
//   - never after the client went away (context.Canceled); the caller also
//     checks its request's context, because a dial timeout wraps
//     context.DeadlineExceeded too and is retryable;
//   - always for ErrSaturated: the node agent refuses before PHP sees the
//     request, so even a POST has had no effect (the body must be replayable);
//   - never once a response byte arrived;
//   - any method whose request was not written, e.g. after a refused dial;
//   - only GET, HEAD and OPTIONS once the request was written, because a
//     POST may have run on the node.
func Retryable(method string, err error, wroteRequest bool, gotResponse bool) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, context.Canceled):
		return false
	case errors.Is(err, ErrSaturated):
		return true
	case gotResponse:
		return false
	case !wroteRequest:
		return true
	}
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	return false
}
