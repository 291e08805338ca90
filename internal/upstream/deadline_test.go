package upstream

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"testing/synctest"
	"time"
)

// TestHeadTimeout: the answer head is waited for at most
// ResponseHeaderTimeout (and at least deadlineSlack less: the deadline is
// renewed, not set, per request on a busy connection), on a new
// connection and on a kept one whose last answer left the deadline in
// place; the body has no deadline however slow it is.
func TestHeadTimeout(t *testing.T) {
	const timeout = 10 * time.Second
	type answer struct {
		headAfter, bodyAfter time.Duration
		never                bool
	}
	tests := []struct {
		name    string
		answers []answer
		wantErr int // index of the request that must time out; -1: none
		minWait time.Duration
	}{
		{name: "head in time on a kept connection", answers: []answer{{}, {headAfter: timeout - deadlineSlack - time.Second}, {headAfter: timeout - deadlineSlack - time.Second}}, wantErr: -1},
		{name: "slow body", answers: []answer{{bodyAfter: 3 * timeout}, {}}, wantErr: -1},
		{name: "no head on a new connection", answers: []answer{{never: true}}, wantErr: 0, minWait: timeout - deadlineSlack},
		{name: "no head on a kept connection", answers: []answer{{}, {headAfter: time.Second}, {never: true}}, wantErr: 2, minWait: timeout - deadlineSlack},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var conns []net.Conn
				dials := 0
				dial := func(context.Context, string, string) (net.Conn, error) {
					dials++
					c, s := net.Pipe()
					conns = append(conns, c, s)
					go func() {
						br := bufio.NewReader(s)
						for i := 0; ; i++ {
							req, err := http.ReadRequest(br)
							if err != nil {
								return
							}
							io.Copy(io.Discard, req.Body)
							a := tt.answers[min(i, len(tt.answers)-1)]
							if a.never {
								io.Copy(io.Discard, s) // until the pipe closes
								return
							}
							time.Sleep(a.headAfter)
							if a.bodyAfter == 0 { // one write: the client reads the body with the head
								io.WriteString(s, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody")
								continue
							}
							io.WriteString(s, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n")
							time.Sleep(a.bodyAfter)
							io.WriteString(s, "body")
						}
					}()
					return c, nil
				}
				defer func() {
					for _, c := range conns {
						c.Close()
					}
				}()
				c := newTestClient(t, func(cfg *Config) { cfg.ResponseHeaderTimeout, cfg.DialContext = timeout, dial })
				p := c.NewPool("node:80")
				defer p.Close()
				for i := range tt.answers {
					start := time.Now()
					// GET: one that timed out on a kept connection is not
					// sent again on a new one (a slow node, not a stale
					// connection), so it waits the timeout once.
					resp, err := c.Do(context.Background(), p, get(t, "GET", "/", nil, 0), nil)
					if i == tt.wantErr {
						waited := time.Since(start)
						if !errors.Is(err, os.ErrDeadlineExceeded) || waited < tt.minWait || waited > timeout {
							t.Fatalf("request %d: %v after %s; want a timeout after %s to %s", i, err, waited, tt.minWait, timeout)
						}
						if dials != 1 {
							t.Errorf("%d connections, want one: a timed-out GET was sent again", dials)
						}
						return
					}
					if err != nil {
						t.Fatalf("request %d: %v", i, err)
					}
					b, err := io.ReadAll(resp.Body)
					if err != nil || string(b) != "body" {
						t.Fatalf("request %d: body %q, %v", i, b, err)
					}
				}
				if tt.wantErr >= 0 {
					t.Fatalf("request %d did not time out", tt.wantErr)
				}
				if dials != 1 {
					t.Errorf("%d connections, want one kept", dials)
				}
			})
		})
	}
}
