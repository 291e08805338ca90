package edge

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// rawBackend reads each request and answers with answer's bytes as they
// are ("" closes the connection without an answer), counting requests.
type rawBackend struct {
	ln   net.Listener
	reqs atomic.Int32
	wg   sync.WaitGroup

	mu    sync.Mutex
	conns []net.Conn
}

func newRawBackend(t *testing.T, answer string) *rawBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &rawBackend{ln: ln}
	b.wg.Go(func() {
		var conns sync.WaitGroup
		defer conns.Wait()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.conns = append(b.conns, c)
			b.mu.Unlock()
			conns.Go(func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					b.reqs.Add(1)
					if answer == "" {
						return
					}
					if _, err := io.WriteString(c, answer); err != nil {
						return
					}
				}
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		b.mu.Lock()
		for _, c := range b.conns {
			c.Close() // the edge's pooled connections
		}
		b.mu.Unlock()
		b.wg.Wait()
	})
	return b
}

// server makes the backend look like an httptest.Server to newEdge.
func (b *rawBackend) server() *httptest.Server {
	return &httptest.Server{URL: "http://" + b.ln.Addr().String()}
}

// TestRetriesOverUpstream: the retry rules of roundTripOut hold with the
// upstream client. Of two nodes, one misbehaves; each request must end on
// exactly the nodes the rules allow: a request the node may have run (the
// connection closed after the node read it) is repeated elsewhere only when
// it is a GET; an answer the edge cannot frame is neither repeated (the
// node answered) nor passed on.
func TestRetriesOverUpstream(t *testing.T) {
	tests := []struct {
		name    string
		bad     string // the misbehaving node's answer
		method  string
		retried bool // a request that met the bad node went on to the good one
	}{
		{"GET after a close without answer goes elsewhere", "", "GET", true},
		{"POST after a close without answer is not repeated", "", "POST", false},
		{"CL+TE answer: no retry, 502", "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "GET", false},
		{"bare-LF answer: no retry, 502", "HTTP/1.1 200 OK\nContent-Length: 0\n\n", "GET", false},
		{"two Content-Length: no retry, 502", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!", "GET", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := newRawBackend(t, tt.bad)
			good := newRawBackend(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			s := newEdge(t, false, bad.server(), good.server())
			const n = 20
			codes := map[int]int32{}
			for range n {
				var body io.Reader
				if tt.method == "POST" {
					body = strings.NewReader("comment=1")
				}
				req, _ := http.NewRequest(tt.method, s.URL+"/?s=x", body)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				codes[resp.StatusCode]++
				if resp.StatusCode == 200 && string(b) != "ok" {
					t.Errorf("body %q", b)
				}
			}
			if bad.reqs.Load() == 0 {
				t.Fatal("the bad node got no request")
			}
			if tt.retried {
				if codes[200] != n || good.reqs.Load() != n {
					t.Errorf("statuses %v, good node %d requests: want every request answered by the good node", codes, good.reqs.Load())
				}
				return
			}
			if codes[502] != bad.reqs.Load() || codes[200] != good.reqs.Load() || codes[200]+codes[502] != n {
				t.Errorf("statuses %v, bad node %d requests, good node %d: want one node per request, 502 for the bad one's",
					codes, bad.reqs.Load(), good.reqs.Load())
			}
		})
	}
}

// TestEarlyHintsAndHopFields: a node's 103 reaches the client before the
// final answer, without leaking its fields into it; hop-by-hop fields of
// the node's answer (and those its Connection names) do not reach the
// client.
func TestEarlyHintsAndHopFields(t *testing.T) {
	node := newRawBackend(t, "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"+
		"HTTP/1.1 200 OK\r\nConnection: X-Secret\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\nX-Kept: yes\r\nContent-Length: 4\r\n\r\npage")
	s := newEdge(t, false, node.server())
	var hints []string
	req, _ := http.NewRequest("GET", s.URL+"/?s=x", nil)
	req = req.WithContext(httptraceContext(req, func(code int, h http.Header) { hints = append(hints, h.Get("Link")) }))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "page" || len(hints) != 1 || hints[0] != "</s.css>; rel=preload" {
		t.Fatalf("body %q, hints %q: want page and one 103 with the Link", b, hints)
	}
	for _, k := range []string{"Link", "X-Secret", "Keep-Alive", "Connection"} {
		if v := resp.Header.Get(k); v != "" {
			t.Errorf("%s: %q reached the client", k, v)
		}
	}
	if resp.Header.Get("X-Kept") != "yes" {
		t.Error("an end-to-end field was dropped")
	}
}

// httptraceContext reports the 1xx responses the client sees.
func httptraceContext(req *http.Request, got func(int, http.Header)) context.Context {
	return httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error { got(code, http.Header(h)); return nil },
	})
}

// TestHopHeadersCanonical: removeHop deletes hopHeaders by map key, so each
// must be in the canonical form net/http stores keys in.
func TestHopHeadersCanonical(t *testing.T) {
	for _, k := range hopHeaders {
		if c := http.CanonicalHeaderKey(k); c != k {
			t.Errorf("hopHeaders has %q, canonical %q", k, c)
		}
	}
}
