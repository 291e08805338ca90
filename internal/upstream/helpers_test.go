package upstream

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rawNode is a loopback server that answers each request head it reads
// with the next of answers (raw bytes, cycled), so that tests can send what
// no well-behaved server would.
type rawNode struct {
	ln      net.Listener
	accepts atomic.Int32
	answer  func(n int, req *http.Request) string
	mu      sync.Mutex
	reqs    []string // method, target and body of each request received
	headers []http.Header
	wg      sync.WaitGroup
}

func newRawNode(t *testing.T, answer func(n int, req *http.Request) string) *rawNode {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawNode{ln: ln, answer: answer}
	s.wg.Go(s.serve)
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *rawNode) addr() string { return s.ln.Addr().String() }

func (s *rawNode) serve() {
	var conns sync.WaitGroup
	defer conns.Wait()
	n := 0
	var mu sync.Mutex
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.accepts.Add(1)
		conns.Go(func() {
			defer c.Close()
			br := bufio.NewReader(c)
			for {
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				body, _ := io.ReadAll(req.Body)
				mu.Lock()
				i := n
				n++
				mu.Unlock()
				s.mu.Lock()
				s.reqs = append(s.reqs, req.Method+" "+req.RequestURI+" "+string(body))
				s.headers = append(s.headers, req.Header)
				s.mu.Unlock()
				a := s.answer(i, req)
				if a == "" {
					return // close without answering
				}
				a, closeAfter := strings.CutSuffix(a, closeMark)
				if _, err := io.WriteString(c, a); err != nil || closeAfter {
					return
				}
			}
		})
	}
}

func newTestClient(t *testing.T, mod func(*Config)) *Client {
	t.Helper()
	cfg := DefaultConfig()
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func get(t *testing.T, method, target string, body io.Reader, n int64) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, "http://site.test"+target, body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = n
	if body == nil {
		req.Body = nil
	}
	return req
}

// ok200 is a well-formed answer with body b.
func ok200(b string) string {
	return "HTTP/1.1 200 OK\r\nContent-Length: " + itoa(len(b)) + "\r\n\r\n" + b
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var d []byte
	for ; n > 0; n /= 10 {
		d = append([]byte{byte('0' + n%10)}, d...)
	}
	return string(d)
}

// fakeConn is a net.Conn that is never used but closed.
type fakeConn struct{ net.Conn }

func (fakeConn) Close() error { return nil }

// closeMark at the end of an answer: close the connection after it.
const closeMark = "\x00close"

func (s *rawNode) received() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.reqs...)
}
