package balancer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/scalepress/scalepress/internal/api"
)

func TestRetryable(t *testing.T) {
	refused := fmt.Errorf("dial: %w", syscall.ECONNREFUSED)
	// A dial that times out wraps context.DeadlineExceeded; it is retryable.
	ctx, cancel := context.WithTimeout(context.Background(), -time.Second)
	defer cancel()
	_, dialTimeout := (&net.Dialer{}).DialContext(ctx, "tcp", "127.0.0.1:1")
	if !errors.Is(dialTimeout, context.DeadlineExceeded) {
		t.Fatalf("dial with an expired context = %v, want it to wrap context.DeadlineExceeded", dialTimeout)
	}
	tests := []struct {
		name       string
		method     string
		err        error
		wrote, got bool
		want       bool
	}{
		{"no error", "GET", nil, true, true, false},
		{"GET refused", "GET", refused, false, false, true},
		{"POST refused before sending", "POST", refused, false, false, true},
		{"GET reset after sending", "GET", refused, true, false, true},
		{"HEAD after sending", "HEAD", refused, true, false, true},
		{"OPTIONS after sending", "OPTIONS", refused, true, false, true},
		{"POST after sending", "POST", refused, true, false, false},
		{"PUT after sending", "PUT", refused, true, false, false},
		{"GET after a response byte", "GET", refused, true, true, false},
		{"client canceled", "GET", fmt.Errorf("proxy: %w", context.Canceled), false, false, false},
		{"GET dial timeout", "GET", dialTimeout, false, false, true},
		{"POST dial timeout", "POST", dialTimeout, false, false, true},
		{"saturated POST", "POST", ErrSaturated, true, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Retryable(tt.method, tt.err, tt.wrote, tt.got); got != tt.want {
				t.Errorf("Retryable(%s, %v, wrote=%v, got=%v) = %v, want %v", tt.method, tt.err, tt.wrote, tt.got, got, tt.want)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	sat := http.Header{api.HeaderSaturated: {"1"}}
	tests := []struct {
		name       string
		status     int
		header     http.Header
		err        error
		clientGone bool
		want       Outcome
	}{
		{"200", 200, nil, nil, false, OK},
		{"404", 404, nil, nil, false, OK},
		{"application 500", 500, nil, nil, false, OK},
		{"502", 502, nil, nil, false, Status5xx},
		{"503", 503, nil, nil, false, Status5xx},
		{"504", 504, nil, nil, false, Status5xx},
		{"saturated 503", 503, sat, nil, false, Saturated},
		{"saturated header on a 200", 200, sat, nil, false, OK},
		{"transport error", 0, nil, errors.New("reset"), false, ConnError},
		{"client gone", 0, nil, context.Canceled, true, Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Classify(tt.status, tt.header, tt.err, tt.clientGone); got != tt.want {
				t.Errorf("Classify() = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestOutcomeString(t *testing.T) {
	for o, want := range map[Outcome]string{OK: "ok", Saturated: "saturated", Outcome(99): "outcome(99)"} {
		if got := o.String(); got != want {
			t.Errorf("Outcome(%d).String() = %q, want %q", o, got, want)
		}
	}
}
