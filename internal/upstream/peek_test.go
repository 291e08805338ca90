package upstream

import (
	"context"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// countingRaw is a syscall.RawConn whose Read counts the liveness peeks
// and answers "no byte waiting" without a socket.
type countingRaw struct {
	syscall.RawConn
	peeks int
}

func (r *countingRaw) Read(f func(fd uintptr) bool) error {
	r.peeks++
	return nil // f is not called: alive reads peekOK as set before
}

// TestPeekAfter: a pooled connection is peeked at before reuse unless it
// was idle for less than PeekAfter and the request is safe to send again
// on a new connection (a stale one then costs a resend, nothing else).
func TestPeekAfter(t *testing.T) {
	tests := []struct {
		name       string
		peekAfter  time.Duration
		idle       time.Duration
		resendable bool
		wantPeek   bool
	}{
		{"resendable, used just now", time.Second, time.Millisecond, true, false},
		{"resendable, idle longer", time.Second, 2 * time.Second, true, true},
		{"not resendable, used just now", time.Second, time.Millisecond, false, true},
		{"PeekAfter 0: always", 0, time.Millisecond, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestClient(t, func(cfg *Config) { cfg.PeekAfter = tt.peekAfter })
			p := c.NewPool("127.0.0.1:1") // never dialled: the idle connection is taken
			defer p.Close()
			raw := &countingRaw{}
			cn := &conn{nc: fakeConn{}, raw: raw, pool: p}
			cn.peek = func(uintptr) bool { return true }
			p.slots <- struct{}{}
			p.put(cn)
			cn.idleAt = time.Now().Add(-tt.idle)
			// The peek reports a dead connection (peekOK stays false): a
			// peeked connection is closed and a new one dialled, which fails.
			got, reused, err := p.get(context.Background(), tt.resendable)
			if diff := cmp.Diff(tt.wantPeek, raw.peeks == 1); diff != "" {
				t.Errorf("peeked (-want +got):\n%s", diff)
			}
			if !tt.wantPeek && (err != nil || got != cn || !reused) {
				t.Errorf("get: %v, %v, %v; want the idle connection, reused", got, reused, err)
			}
			if tt.wantPeek && err == nil {
				t.Errorf("get: %v, want the dial's error after the peek closed the connection", got)
			}
		})
	}
}

// TestStaleResendable: a GET on a connection the node closed while it was
// idle (for less than PeekAfter: not peeked) is sent again on a new
// connection and answered; the node saw one GET on each connection.
func TestStaleResendable(t *testing.T) {
	n := newRawNode(t, func(i int, r *http.Request) string { return ok200("ok") + closeMark })
	c := newTestClient(t, func(cfg *Config) { cfg.PeekAfter = time.Hour })
	p := c.NewPool(n.addr())
	defer p.Close()
	for i := range 3 {
		if got, err := do(t, c, p, get(t, "GET", "/page", nil, 0), nil); err != nil || got != "ok" {
			t.Fatalf("GET %d on a connection the node closed: %q, %v", i, got, err)
		}
		waitIdleClosed(t, p)
	}
	if diff := cmp.Diff([]string{"GET /page ", "GET /page ", "GET /page "}, n.received()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

// TestAnswerStorage: a response's head is parsed into storage shared with
// its body (one allocation); a head with more fields than that storage
// holds keeps every value, and the header an Interim callback kept is not
// overwritten by the final response's.
func TestAnswerStorage(t *testing.T) {
	var many strings.Builder
	want := http.Header{"Content-Length": {"4"}}
	for i := range 40 {
		k := "X-F" + itoa(i+1)
		many.WriteString(k + ": v" + itoa(i) + "\r\n")
		want[k] = []string{"v" + itoa(i)}
	}
	n := newRawNode(t, func(i int, r *http.Request) string {
		return "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\nX-Hint: one\r\n\r\n" +
			"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n" + many.String() + "\r\npage"
	})
	c := newTestClient(t, nil)
	p := c.NewPool(n.addr())
	defer p.Close()
	var hints []http.Header
	resp, err := c.Do(context.Background(), p, get(t, "GET", "/", nil, 0), func(code int, h http.Header) {
		hints = append(hints, h)
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(b) != "page" {
		t.Fatalf("%q, %v", b, err)
	}
	if diff := cmp.Diff(want, resp.Header); diff != "" {
		t.Errorf("final header (-want +got):\n%s", diff)
	}
	wantHints := []http.Header{{"Link": {"</a.css>; rel=preload"}, "X-Hint": {"one"}}}
	if diff := cmp.Diff(wantHints, hints); diff != "" {
		t.Errorf("interim headers after the final answer (-want +got):\n%s", diff)
	}
}
