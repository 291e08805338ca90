package edge

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/balancer"
	"github.com/scalepress/scalepress/internal/upstream"
)

// pipeNode is a fake node reached over in-memory pipes (synctest can tell
// when they block): answer serves one request, or never returns (a node
// whose host's link is cut: it accepted, it never answers).
type pipeNode struct {
	answer func(c net.Conn, req *http.Request) bool // false: close the connection
	mu     sync.Mutex
	reqs   []string // method and URI of each request, health checks aside
	conns  []net.Conn
}

// hang is a node that reads the request and never answers.
func hang(c net.Conn, _ *http.Request) bool {
	io.Copy(io.Discard, c) // until the test closes the pipe
	return false
}

// answerAfter answers "ok from NAME" after d; the head and the body are
// d2 apart when d2 > 0.
func answerAfter(name string, d, d2 time.Duration) func(net.Conn, *http.Request) bool {
	return func(c net.Conn, req *http.Request) bool {
		time.Sleep(d)
		body := "ok from " + name
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s: %s\r\n\r\n", len(body), api.HeaderNode, name)
		time.Sleep(d2)
		_, err := io.WriteString(c, body)
		return err == nil
	}
}

func (n *pipeNode) serve(c net.Conn) {
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			c.Close()
			return
		}
		if req.URL.Path == api.NodePathHealth {
			io.Copy(io.Discard, req.Body)
			if n.answer(c, req) {
				continue
			}
			c.Close()
			return
		}
		n.mu.Lock()
		n.reqs = append(n.reqs, req.Method+" "+req.URL.RequestURI())
		n.mu.Unlock()
		if req.Body != nil {
			io.Copy(io.Discard, req.Body)
		}
		if !n.answer(c, req) {
			c.Close()
			return
		}
	}
}

func (n *pipeNode) requests() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.reqs...)
}

// pipeEdge is an edge whose nodes (a, b, …: addresses a:80, b:80) are
// pipeNodes; everything runs in the caller's synctest bubble.
type pipeEdge struct {
	e     *Edge
	nodes map[string]*pipeNode
	mu    sync.Mutex
	conns []net.Conn
	serve sync.WaitGroup // every node connection's serve goroutine
}

func newPipeEdge(t *testing.T, headerTimeout time.Duration, nodes map[string]*pipeNode) *pipeEdge {
	t.Helper()
	p := &pipeEdge{nodes: nodes}
	e, err := New(api.EdgeSpec{ID: "edge-1", Region: "default", Addr: "127.0.0.1:0", Debug: true,
		Cache: &api.CacheSpec{Enabled: false}}, slog.New(slog.DiscardHandler),
		func(c *balancer.Config) { c.SlowStart = 0 })
	if err != nil {
		t.Fatal(err)
	}
	e.headerTimeout = headerTimeout
	dial := func(_ context.Context, _, addr string) (net.Conn, error) {
		host, _, _ := net.SplitHostPort(addr)
		n, ok := p.nodes[host]
		if !ok {
			return nil, fmt.Errorf("no node %s", addr)
		}
		c, s := net.Pipe()
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		p.serve.Go(func() { n.serve(s) })
		return c, nil
	}
	ucfg := upstream.DefaultConfig()
	ucfg.DialContext = dial
	if e.up, err = upstream.New(ucfg); err != nil {
		t.Fatal(err)
	}
	e.transport.DialContext = dial
	p.e = e
	return p
}

// close ends every pipe and waits for the nodes' serve goroutines: one
// may be in an answer's sleep (a health check that came just before the
// end), and a bubble's clock stops once its main goroutine returns, so
// it must end while the test still waits.
func (p *pipeEdge) close() {
	p.e.transport.CloseIdleConnections()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.serve.Wait()
}

func (p *pipeEdge) set(ids ...string) {
	var ups []api.Upstream
	for _, id := range ids {
		ups = append(ups, api.Upstream{ID: id, Addr: id + ":80"})
	}
	p.e.SetUpstreams(ups)
}

// hold keeps one request in flight on id (excluding the others), so that
// the next pick takes the less loaded node; the returned func ends it.
func (p *pipeEdge) hold(t *testing.T, id string) func() {
	t.Helper()
	var others []string
	for o := range p.nodes {
		if o != id {
			others = append(others, o)
		}
	}
	n, err := p.e.bal.Pick(others...)
	if err != nil || n.ID() != id {
		t.Fatalf("hold %s: %v", id, err)
	}
	return func() { n.Done(balancer.OK) }
}

type cutAnswer struct {
	code    int
	node    string
	body    string
	elapsed time.Duration
}

// do sends one request through the edge in the background.
func (p *pipeEdge) do(method, target string, body string) <-chan cutAnswer {
	ch := make(chan cutAnswer, 1)
	start := time.Now()
	go func() {
		var r *http.Request
		if body != "" {
			r = httptest.NewRequest(method, target, strings.NewReader(body))
		} else {
			r = httptest.NewRequest(method, target, nil)
		}
		w := httptest.NewRecorder()
		defer func() {
			if v := recover(); v != nil { // the answer was cut short (http.ErrAbortHandler)
				ch <- cutAnswer{code: -1, body: fmt.Sprint(v), elapsed: time.Since(start)}
			}
		}()
		p.e.ServeHTTP(w, r)
		ch <- cutAnswer{code: w.Code, node: w.Header().Get(api.HeaderNode), body: w.Body.String(), elapsed: time.Since(start)}
	}()
	return ch
}

// TestCutShortOutOfService: a GET waiting for the answer head of a node
// that is taken out of service (its health checks fail: the node accepts
// and never answers) is cut and sent to another node, as soon as the
// checks have failed (Fall 3 × HealthInterval 2 s, plus the 1 s timeout),
// not after the 130 s head timeout. The header timeout is off here.
func TestCutShortOutOfService(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPipeEdge(t, 0, map[string]*pipeNode{
			"a": {answer: hang},
			"b": {answer: answerAfter("b", 100*time.Millisecond, 0)},
		})
		defer p.close()
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- p.e.bal.Run(ctx) }()
		defer func() { cancel(); <-done }()
		p.set("a", "b")
		release := p.hold(t, "b")
		ans := p.do("GET", "/?s=cut", "")
		synctest.Wait()
		release()
		got := <-ans
		if got.code != http.StatusOK || got.node != "b" {
			t.Fatalf("GET: %d from %q: %s", got.code, got.node, got.body)
		}
		if got.elapsed > 9500*time.Millisecond {
			t.Errorf("GET took %s: not cut when a went out of service (at most 9 s)", got.elapsed)
		}
		if reqs := p.nodes["a"].requests(); len(reqs) != 1 {
			t.Errorf("a got %v, want the one GET", reqs)
		}
	})
}

// TestCutShortHeaderTimeout: a GET or HEAD waits at most the header
// timeout for a node's answer head while another node is in service, then
// goes to that node; a POST is never cut, nor a GET when no other node is
// in service, nor an answer whose head came in time (its body is passed
// on whole, however slow), nor a second attempt (a page slow everywhere is
// still answered).
func TestCutShortHeaderTimeout(t *testing.T) {
	const timeout = 15 * time.Second
	tests := []struct {
		name       string
		method     string
		body       string
		a          func(net.Conn, *http.Request) bool
		b          func(net.Conn, *http.Request) bool // nil: answers at once
		only       bool                               // a is the only node
		wantCode   int
		wantNode   string
		wantBody   string
		minElapsed time.Duration
		maxElapsed time.Duration
		wantB      int // requests b got
	}{
		{name: "GET to a silent node", method: "GET", a: hang,
			wantCode: 200, wantNode: "b", wantBody: "ok from b", minElapsed: timeout, maxElapsed: timeout + time.Second, wantB: 1},
		{name: "HEAD to a silent node", method: "HEAD", a: hang,
			wantCode: 200, wantNode: "b", minElapsed: timeout, maxElapsed: timeout + time.Second, wantB: 1},
		{name: "GET to a slow node that answers in time", method: "GET", a: answerAfter("a", timeout-time.Second, 0),
			wantCode: 200, wantNode: "a", wantBody: "ok from a", maxElapsed: timeout},
		{name: "a slow body after a head in time", method: "GET", a: answerAfter("a", time.Second, 3*timeout),
			wantCode: 200, wantNode: "a", wantBody: "ok from a", minElapsed: 3 * timeout},
		{name: "GET with no other node in service", method: "GET", a: answerAfter("a", 2*timeout, 0), only: true,
			wantCode: 200, wantNode: "a", wantBody: "ok from a", minElapsed: 2 * timeout},
		{name: "a slow page on every node: cut once, the second waited for", method: "GET",
			a: answerAfter("a", 2*timeout, 0), b: answerAfter("b", 2*timeout, 0),
			wantCode: 200, wantNode: "b", wantBody: "ok from b", minElapsed: 3 * timeout, maxElapsed: 3*timeout + time.Second, wantB: 1},
		{name: "POST is never cut", method: "POST", body: "x=1", a: answerAfter("a", 2*timeout, 0),
			wantCode: 200, wantNode: "a", wantBody: "ok from a", minElapsed: 2 * timeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				nodes := map[string]*pipeNode{"a": {answer: tt.a}}
				if !tt.only {
					nodes["b"] = &pipeNode{answer: answerAfter("b", 100*time.Millisecond, 0)}
					if tt.b != nil {
						nodes["b"].answer = tt.b
					}
				}
				p := newPipeEdge(t, timeout, nodes)
				defer p.close()
				release := func() {}
				if tt.only {
					p.set("a")
				} else {
					p.set("a", "b")
					release = p.hold(t, "b")
				}
				ans := p.do(tt.method, "/?s=slow", tt.body)
				synctest.Wait()
				release()
				got := <-ans
				if got.code != tt.wantCode || got.node != tt.wantNode || got.body != tt.wantBody {
					t.Errorf("%s: %d from %q: %q; want %d from %q: %q", tt.method, got.code, got.node, got.body, tt.wantCode, tt.wantNode, tt.wantBody)
				}
				if got.elapsed < tt.minElapsed || tt.maxElapsed > 0 && got.elapsed > tt.maxElapsed {
					t.Errorf("took %s, want %s to %s", got.elapsed, tt.minElapsed, tt.maxElapsed)
				}
				if !tt.only {
					if reqs := p.nodes["b"].requests(); len(reqs) != tt.wantB {
						t.Errorf("b got %v, want %d requests", reqs, tt.wantB)
					}
				}
			})
		})
	}
}
