package upstream

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

func do(t *testing.T, c *Client, p *Pool, req *http.Request, interim Interim) (string, error) {
	t.Helper()
	resp, err := c.Do(req.Context(), p, req, interim)
	if err != nil {
		return "", err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return string(b), err
}

// TestKeepAlive: sequential requests share one connection.
func TestKeepAlive(t *testing.T) {
	n := newRawNode(t, func(i int, r *http.Request) string { return ok200("answer " + itoa(i)) })
	c := newTestClient(t, nil)
	p := c.NewPool(n.addr())
	defer p.Close()
	for i := range 3 {
		got, err := do(t, c, p, get(t, "GET", "/x?i="+itoa(i), nil, 0), nil)
		if err != nil || got != "answer "+itoa(i) {
			t.Fatalf("request %d: %q, %v", i, got, err)
		}
	}
	if a := n.accepts.Load(); a != 1 {
		t.Errorf("%d connections for 3 keep-alive requests, want 1", a)
	}
}

// TestStaleConnection: a node that closes an idle connection (its idle
// timeout, a restart) costs no request: the closed connection is noticed
// before the request is written to it (the liveness peek); and when the
// close races the request, a GET is sent again on a new connection, a POST
// is not (it may have run), and says so.
func TestStaleConnection(t *testing.T) {
	t.Run("closed while idle", func(t *testing.T) {
		n := newRawNode(t, func(i int, r *http.Request) string { return ok200("ok") + closeMark })
		c := newTestClient(t, nil)
		p := c.NewPool(n.addr())
		defer p.Close()
		for i := range 3 {
			if got, err := do(t, c, p, get(t, "POST", "/form", strings.NewReader("a=1"), 3), nil); err != nil || got != "ok" {
				t.Fatalf("POST %d on a connection the node closed: %q, %v", i, got, err)
			}
			waitIdleClosed(t, p)
		}
		if diff := cmp.Diff([]string{"POST /form a=1", "POST /form a=1", "POST /form a=1"}, n.received()); diff != "" {
			t.Errorf("requests (-want +got):\n%s", diff)
		}
	})
	for _, tt := range []struct {
		method  string
		body    string
		wantErr bool
	}{{"GET", "", false}, {"POST", "a=1", true}} {
		t.Run("closed under the "+tt.method, func(t *testing.T) {
			n := newRawNode(t, func(i int, r *http.Request) string {
				if i == 1 {
					return "" // read the request, close without an answer
				}
				return ok200("ok")
			})
			c := newTestClient(t, nil)
			p := c.NewPool(n.addr())
			defer p.Close()
			if _, err := do(t, c, p, get(t, "GET", "/", nil, 0), nil); err != nil {
				t.Fatal(err)
			}
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			got, err := do(t, c, p, get(t, tt.method, "/again", body, int64(len(tt.body))), nil)
			if tt.wantErr {
				var ue *Error
				if !errors.As(err, &ue) || !ue.Written || ue.GotResponse {
					t.Fatalf("error %#v, want an *Error with Written and not GotResponse", err)
				}
				if len(n.received()) != 2 {
					t.Errorf("the node got %d requests, want 2: a POST is not sent twice", len(n.received()))
				}
				return
			}
			if err != nil || got != "ok" {
				t.Fatalf("%q, %v", got, err)
			}
		})
	}
}

// waitIdleClosed waits until the node's close of p's idle connection has
// arrived (the peer's FIN is asynchronous), bounded.
func waitIdleClosed(t *testing.T, p *Pool) {
	t.Helper()
	for range 1000 {
		p.mu.Lock()
		alive := len(p.idle) == 0 || p.idle[len(p.idle)-1].alive()
		p.mu.Unlock()
		if !alive {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// TestNoReuseAfterError: a connection that saw a protocol error, or whose
// body was not read to its end, is closed: the next request gets a new one.
func TestNoReuseAfterError(t *testing.T) {
	tests := []struct {
		name   string
		answer string
		read   bool
	}{
		{"CL and TE", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", true},
		{"bytes after the response", ok200("ok") + "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true},
		{"body closed before its end", ok200(strings.Repeat("x", 100<<10)), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newRawNode(t, func(i int, r *http.Request) string {
				if i == 0 {
					return tt.answer
				}
				return ok200("fine")
			})
			c := newTestClient(t, nil)
			p := c.NewPool(n.addr())
			defer p.Close()
			resp, err := c.Do(context.Background(), p, get(t, "GET", "/", nil, 0), nil)
			if err == nil {
				if tt.read {
					io.ReadAll(resp.Body)
				} else {
					io.ReadFull(resp.Body, make([]byte, 10))
				}
				resp.Body.Close()
			}
			if got, err := do(t, c, p, get(t, "GET", "/", nil, 0), nil); err != nil || got != "fine" {
				t.Fatalf("next request: %q, %v", got, err)
			}
			if a := n.accepts.Load(); a != 2 {
				t.Errorf("%d connections, want 2: the first was reused", a)
			}
		})
	}
}

// TestRequestFraming: the node sees the body framed by the client alone,
// and none of the caller's framing or connection fields.
func TestRequestFraming(t *testing.T) {
	n := newRawNode(t, func(i int, r *http.Request) string { return ok200("ok") })
	c := newTestClient(t, nil)
	p := c.NewPool(n.addr())
	defer p.Close()
	sized := get(t, "POST", "/a", strings.NewReader("0123456789"), 4) // only 4 of it is the body
	sized.Header.Set("Content-Length", "100")
	sized.Header.Set("Transfer-Encoding", "chunked")
	sized.Header.Set("Connection", "close")
	sized.Header.Set("Expect", "100-continue")
	sized.Header.Set("X-Keep", "yes")
	chunked := get(t, "PUT", "/b", strings.NewReader("streamed body"), -1)
	empty := get(t, "POST", "/c", nil, 0)
	for _, r := range []*http.Request{sized, chunked, empty} {
		if _, err := do(t, c, p, r, nil); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff([]string{"POST /a 0123", "PUT /b streamed body", "POST /c "}, n.received()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	n.mu.Lock()
	h := n.headers[0]
	n.mu.Unlock()
	if diff := cmp.Diff(http.Header{"Content-Length": {"4"}, "X-Keep": {"yes"}}, h); diff != "" {
		t.Errorf("fields of the sized POST (-want +got):\n%s", diff)
	}
	if a := n.accepts.Load(); a != 1 {
		t.Errorf("%d connections, want 1", a)
	}
}

// TestInvalidRequest: what cannot be written unambiguously is not sent.
func TestInvalidRequest(t *testing.T) {
	n := newRawNode(t, func(i int, r *http.Request) string { return ok200("ok") })
	c := newTestClient(t, nil)
	p := c.NewPool(n.addr())
	defer p.Close()
	for _, mod := range []func(*http.Request){
		func(r *http.Request) { r.Header["X-A"] = []string{"a\r\nX-Injected: 1"} },
		func(r *http.Request) { r.Header["Bad Name"] = []string{"1"} },
		func(r *http.Request) { r.Host = "a b" },
		func(r *http.Request) { r.Method = "GET /x" },
	} {
		req := get(t, "GET", "/", nil, 0)
		mod(req)
		_, err := do(t, c, p, req, nil)
		var ue *Error
		if !errors.Is(err, ErrInvalidRequest) || !errors.As(err, &ue) || ue.Written {
			t.Errorf("error %v, want ErrInvalidRequest, not written", err)
		}
	}
	if a := n.accepts.Load(); a != 0 {
		t.Errorf("%d connections, want none", a)
	}
}

// TestInterim: 103 Early Hints reach the caller with their fields; 100
// Continue does not; the final response follows on the same connection.
func TestInterim(t *testing.T) {
	n := newRawNode(t, func(i int, r *http.Request) string {
		return "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n" + ok200("page")
	})
	c := newTestClient(t, nil)
	p := c.NewPool(n.addr())
	defer p.Close()
	var got []string
	body, err := do(t, c, p, get(t, "GET", "/", nil, 0), func(code int, h http.Header) {
		got = append(got, itoa(code)+" "+h.Get("Link"))
	})
	if err != nil || body != "page" {
		t.Fatalf("%q, %v", body, err)
	}
	if diff := cmp.Diff([]string{"103 </s.css>; rel=preload"}, got); diff != "" {
		t.Errorf("interim responses (-want +got):\n%s", diff)
	}
	n2 := newRawNode(t, func(i int, r *http.Request) string {
		return strings.Repeat("HTTP/1.1 103 Early Hints\r\n\r\n", 20) + ok200("page")
	})
	p2 := c.NewPool(n2.addr())
	defer p2.Close()
	if _, err := do(t, c, p2, get(t, "GET", "/", nil, 0), nil); !errors.Is(err, ErrTooManyInterim) {
		t.Errorf("20 interim responses: %v, want ErrTooManyInterim", err)
	}
}

// TestCancel: a request whose client went away stops waiting for the node.
func TestCancel(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	n := newRawNode(t, func(i int, r *http.Request) string { <-release; return "" })
	c := newTestClient(t, nil)
	p := c.NewPool(n.addr())
	defer p.Close()
	ctx, cancel := context.WithCancel(context.Background())
	req := get(t, "GET", "/slow", nil, 0).WithContext(ctx)
	done := make(chan error, 1)
	go func() { _, err := c.Do(ctx, p, req, nil); done <- err }()
	for len(n.received()) == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
	if p.Idle() != 0 {
		t.Error("the canceled request's connection was kept")
	}
}

// TestMaxConnsPerNode: a request beyond the bound waits for a connection.
func TestMaxConnsPerNode(t *testing.T) {
	n := newRawNode(t, func(i int, r *http.Request) string { return ok200("ok") })
	c := newTestClient(t, func(cfg *Config) { cfg.MaxConnsPerNode, cfg.MaxIdlePerNode = 1, 1 })
	p := c.NewPool(n.addr())
	defer p.Close()
	first, err := c.Do(context.Background(), p, get(t, "GET", "/1", nil, 0), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Do(ctx, p, get(t, "GET", "/2", nil, 0), nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second request while the only connection is in use: %v, want it to wait", err)
	}
	io.ReadAll(first.Body)
	first.Body.Close()
	if got, err := do(t, c, p, get(t, "GET", "/3", nil, 0), nil); err != nil || got != "ok" {
		t.Fatalf("after the first finished: %q, %v", got, err)
	}
	if a := n.accepts.Load(); a != 1 {
		t.Errorf("%d connections, want 1", a)
	}
}

// TestIdleSweep: connections idle since before the cutoff are closed, so
// no node keeps a connection (and the edge a socket) for nothing.
func TestIdleSweep(t *testing.T) {
	n := newRawNode(t, func(i int, r *http.Request) string { return ok200("ok") })
	c := newTestClient(t, nil)
	p := c.NewPool(n.addr())
	defer p.Close()
	if _, err := do(t, c, p, get(t, "GET", "/", nil, 0), nil); err != nil {
		t.Fatal(err)
	}
	c.sweep(time.Now().Add(-time.Hour))
	if p.Idle() != 1 {
		t.Fatalf("%d idle after a sweep of older connections, want 1", p.Idle())
	}
	c.sweep(time.Now().Add(time.Second))
	if p.Idle() != 0 {
		t.Fatalf("%d idle after the sweep, want 0", p.Idle())
	}
	p.Close()
	if _, err := do(t, c, p, get(t, "GET", "/", nil, 0), nil); err != nil {
		t.Fatal(err)
	}
	if p.Idle() != 0 {
		t.Error("a closed pool kept a connection")
	}
}

// TestEarlyAnswer: a node that answers before it read the whole body (its
// 413, a saturation 503) and stops reading: the client gets that answer,
// not a write error, and the connection is not reused.
func TestEarlyAnswer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		io.ReadFull(br, make([]byte, 1024))
		io.WriteString(c, "HTTP/1.1 413 Request Entity Too Large\r\nConnection: close\r\nContent-Length: 9\r\n\r\ntoo large")
		// As net/http's server does: FIN first, so the answer is not lost
		// to a reset, then drain a while before closing.
		c.(*net.TCPConn).CloseWrite()
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		io.Copy(io.Discard, io.LimitReader(br, 1<<20))
	}()
	c := newTestClient(t, nil)
	p := c.NewPool(ln.Addr().String())
	defer p.Close()
	const size = 64 << 20 // more than any socket buffer
	req := get(t, "POST", "/upload", io.LimitReader(zeros{}, size), size)
	resp, err := c.Do(context.Background(), p, req, nil)
	if err != nil {
		t.Fatalf("error %v, want the node's 413", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 413 || string(b) != "too large" {
		t.Errorf("got %d %q, want 413 too large", resp.StatusCode, b)
	}
	if p.Idle() != 0 {
		t.Error("the connection was kept")
	}
	<-done
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestIdleTimeout: Run closes a connection once it has been idle for
// IdleTimeout, so a node is not held by connections nobody uses; one idle
// for less is kept.
func TestIdleTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var closed atomic.Int32
		dial := func(context.Context, string, string) (net.Conn, error) {
			a, b := net.Pipe()
			go func() {
				defer b.Close()
				br := bufio.NewReader(b)
				for {
					if _, err := http.ReadRequest(br); err != nil {
						closed.Add(1) // the client closed its end
						return
					}
					io.WriteString(b, ok200("ok"))
				}
			}()
			return a, nil
		}
		c := newTestClient(t, func(cfg *Config) { cfg.DialContext = dial })
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { c.Run(ctx); close(done) }()
		p := c.NewPool("node.test:80")
		if _, err := do(t, c, p, get(t, "GET", "/", nil, 0), nil); err != nil {
			t.Fatal(err)
		}
		time.Sleep(c.cfg.IdleTimeout / 2)
		synctest.Wait()
		if p.Idle() != 1 || closed.Load() != 0 {
			t.Fatalf("after half the idle timeout: %d idle, %d closed; want 1, 0", p.Idle(), closed.Load())
		}
		time.Sleep(c.cfg.IdleTimeout)
		synctest.Wait()
		if p.Idle() != 0 || closed.Load() != 1 {
			t.Fatalf("after the idle timeout: %d idle, %d closed; want 0, 1", p.Idle(), closed.Load())
		}
		cancel()
		<-done
	})
}

// TestWatch: Watch.Cut cuts a round trip waiting for its answer head
// (the error is the cut's cause, the connection is not kept), does
// nothing once the head is in (the body is read whole and the connection
// kept), and a round trip cut before it started sends nothing.
func TestWatch(t *testing.T) {
	errCut := errors.New("cut by the test")
	t.Run("waiting for the head", func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		n := newRawNode(t, func(i int, r *http.Request) string { <-release; return "" })
		c := newTestClient(t, nil)
		p := c.NewPool(n.addr())
		defer p.Close()
		var w Watch
		done := make(chan error, 1)
		req := get(t, "GET", "/slow", nil, 0)
		go func() {
			_, err := c.DoWatched(context.Background(), p, req, nil, &w)
			done <- err
		}()
		for len(n.received()) == 0 {
			time.Sleep(time.Millisecond)
		}
		if !w.Cut(errCut) {
			t.Fatal("Cut reported false while the round trip waited")
		}
		err := <-done
		var ue *Error
		if !errors.Is(err, errCut) || !errors.As(err, &ue) || !ue.Written || ue.GotResponse {
			t.Errorf("error %#v, want the cut's cause, written, no response", err)
		}
		if p.Idle() != 0 {
			t.Error("the cut request's connection was kept")
		}
		if w.Cut(errCut) {
			t.Error("a second Cut reported true")
		}
	})
	t.Run("after the head", func(t *testing.T) {
		n := newRawNode(t, func(i int, r *http.Request) string { return ok200("whole body") })
		c := newTestClient(t, nil)
		p := c.NewPool(n.addr())
		defer p.Close()
		var w Watch
		resp, err := c.DoWatched(context.Background(), p, get(t, "GET", "/", nil, 0), nil, &w)
		if err != nil {
			t.Fatal(err)
		}
		if w.Cut(errCut) {
			t.Error("Cut reported true after the head")
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil || string(b) != "whole body" {
			t.Errorf("body %q, %v", b, err)
		}
		if p.Idle() != 1 || w.Err() != nil {
			t.Errorf("idle %d, Err %v: want the connection kept and no cut", p.Idle(), w.Err())
		}
	})
	t.Run("the head as the cut falls", func(t *testing.T) {
		c1, c2 := net.Pipe()
		defer c1.Close()
		defer c2.Close()
		var w Watch
		if err := w.attach(c1); err != nil {
			t.Fatal(err)
		}
		w.Cut(errCut)
		if err := w.headIn(); !errors.Is(err, errCut) {
			t.Errorf("headIn after Cut: %v, want the cut's cause (the head is dropped)", err)
		}
	})
	t.Run("before the round trip", func(t *testing.T) {
		n := newRawNode(t, func(i int, r *http.Request) string { return ok200("x") })
		c := newTestClient(t, nil)
		p := c.NewPool(n.addr())
		defer p.Close()
		var w Watch
		w.Cut(errCut)
		_, err := c.DoWatched(context.Background(), p, get(t, "GET", "/", nil, 0), nil, &w)
		var ue *Error
		if !errors.Is(err, errCut) || !errors.As(err, &ue) || ue.Written {
			t.Errorf("error %#v, want the cut's cause, not written", err)
		}
		if got := n.received(); len(got) != 0 {
			t.Errorf("node received %v", got)
		}
	})
}
