package hitfront

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// front runs a Server on a loopback port with net/http behind its
// handoff, over TLS when secure (ServeTLS, with net/http's ConnContext).
// The fast handler answers GET/HEAD /hit*; net/http answers everything
// and says so in X-Via. Both say in X-TLS whether the request came over
// TLS (r.TLS).
func front(t *testing.T, secure bool) (*Server, target) {
	t.Helper()
	fast := func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/panic" {
			panic("handler bug")
		}
		if !strings.HasPrefix(r.URL.Path, "/hit") {
			return false
		}
		w.Header().Set("X-Via", "fast")
		tlsHeader(w, r)
		w.Header().Set("Content-Length", "3")
		w.Write([]byte("hit"))
		return true
	}
	s, err := New(DefaultConfig(), fast, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: s.Returning(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Via", "net/http")
		tlsHeader(w, r)
		answer := r.Method + " " + r.URL.Path + " body=" + string(body)
		if !strings.Contains(r.URL.Path, "nolen") {
			w.Header().Set("Content-Length", strconv.Itoa(len(answer)))
		}
		io.WriteString(w, answer)
	}))}
	tg := target{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	handoff := s.Handoff(ln.Addr())
	if secure {
		var cfg *tls.Config
		cfg, tg.tls = testTLS(t)
		srv.ConnContext = ConnContext
		wg.Go(func() { s.ServeTLS(ln, TLS{Config: cfg}) })
	} else {
		wg.Go(func() { s.Serve(ln) })
	}
	wg.Go(func() { srv.Serve(handoff) })
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		srv.Shutdown(ctx)
		wg.Wait()
	})
	return s, tg
}

// tlsHeader sets X-TLS to whether r came over TLS.
func tlsHeader(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-TLS", strconv.FormatBool(r.TLS != nil))
}

// target is where front listens, and the client's TLS config when it
// serves TLS.
type target struct {
	addr string
	tls  *tls.Config
}

// dial connects to tg (and completes the handshake).
func (tg target) dial(t *testing.T) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", tg.addr)
	if err != nil {
		t.Fatal(err)
	}
	if tg.tls == nil {
		return c
	}
	tc := tls.Client(c, tg.tls)
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err != nil {
		c.Close()
		t.Fatal(err)
	}
	return tc
}

// transports are the ways every front test runs: plain HTTP and TLS.
var transports = []struct {
	name   string
	secure bool
}{{"http", false}, {"https", true}}

type answer struct {
	Status int
	Via    string
	Body   string
}

// via is the answer's X-Via, with "+tls" when the handler saw r.TLS.
func via(h http.Header) string {
	if h.Get("X-TLS") == "true" {
		return h.Get("X-Via") + "+tls"
	}
	return h.Get("X-Via")
}

// overTLS is what a handler's answer says over TLS.
func overTLS(v string, secure bool) string {
	if secure && v != "" {
		return v + "+tls"
	}
	return v
}

// exchange writes raw on one connection and reads the responses to
// requests of these methods.
func exchange(t *testing.T, tg target, raw string, methods []string) []answer {
	t.Helper()
	c := tg.dial(t)
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var out []answer
	n := len(methods)
	for _, m := range methods {
		resp, err := http.ReadResponse(br, &http.Request{Method: m})
		if err != nil {
			t.Fatalf("reading response %d: %v", len(out)+1, err)
		}
		b, _ := io.ReadAll(resp.Body)
		out = append(out, answer{resp.StatusCode, via(resp.Header), string(b)})
	}
	// Nothing more: one answer per request.
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if b, err := br.ReadByte(); err == nil {
		t.Errorf("extra bytes after %d responses: %q...", n, b)
	}
	return out
}

// TestHandoff: pipelined requests on one connection are answered in
// order; the first one the fast path does not answer takes the
// connection, with that request unread, to net/http for good.
func TestHandoff(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) { testHandoff(t, tr.secure) })
	}
}

func testHandoff(t *testing.T, secure bool) {
	_, tg := front(t, secure)
	req := func(method, path string, extra ...string) string {
		return method + " " + path + " HTTP/1.1\r\nHost: site.test\r\n" + strings.Join(extra, "") + "\r\n"
	}
	tests := []struct {
		name string
		raw  string
		want []answer
	}{
		{"hits stay fast", req("GET", "/hit1") + req("HEAD", "/hit2") + req("GET", "/hit3"),
			[]answer{{200, "fast", "hit"}, {200, "fast", ""}, {200, "fast", "hit"}}},
		{"Connection: close is answered and ends the connection", req("GET", "/hit1", "Connection: close\r\n") + req("GET", "/hit2"),
			[]answer{{200, "fast", "hit"}}},
		{"a miss comes back after a framed answer", req("GET", "/hit1") + req("GET", "/miss") + req("GET", "/hit2"),
			[]answer{{200, "fast", "hit"}, {200, "net/http", "GET /miss body="}, {200, "fast", "hit"}}},
		{"pipelined misses and hits", req("GET", "/miss1") + req("GET", "/miss2") + req("GET", "/hit1") + req("GET", "/miss3") + req("HEAD", "/hit2"),
			[]answer{{200, "net/http", "GET /miss1 body="}, {200, "net/http", "GET /miss2 body="}, {200, "fast", "hit"}, {200, "net/http", "GET /miss3 body="}, {200, "fast", ""}}},
		{"an unframed answer keeps the connection in net/http", req("GET", "/miss-nolen") + req("GET", "/hit"),
			[]answer{{200, "net/http", "GET /miss-nolen body="}, {200, "net/http", "GET /hit body="}}},
		{"POST with a body", req("POST", "/hit", "Content-Length: 4\r\n") + "abcd" + req("GET", "/hit"),
			[]answer{{200, "net/http", "POST /hit body=abcd"}, {200, "net/http", "GET /hit body="}}},
		// Smuggling: a body hidden in a GET is read as a body, by net/http,
		// never taken for the next request.
		{"GET with Content-Length", req("GET", "/hit", "Content-Length: 25\r\n") + req("GET", "/hit-smuggled") + req("GET", "/hit"),
			[]answer{{200, "net/http", "GET /hit body=" + req("GET", "/hit-smuggled")[:25]}, {400, "", "400 Bad Request"}}},
		{"GET chunked", req("GET", "/hit", "Transfer-Encoding: chunked\r\n") + "5\r\nabcde\r\n0\r\n\r\n" + req("GET", "/hit"),
			[]answer{{200, "net/http", "GET /hit body=abcde"}, {200, "net/http", "GET /hit body="}}},
		{"bare LF goes to net/http", "GET /hit HTTP/1.1\nHost: site.test\n\n", []answer{{200, "net/http", "GET /hit body="}}},
		{"no Host: net/http refuses", "GET /hit HTTP/1.1\r\n\r\n", []answer{{400, "", "400 Bad Request: missing required Host header"}}},
		{"HTTP/1.0", "GET /hit HTTP/1.0\r\nHost: site.test\r\n\r\n", []answer{{200, "net/http", "GET /hit body="}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			methods := make([]string, len(tt.want))
			for i := range methods {
				methods[i] = http.MethodGet
			}
			for i, m := range strings.Split(tt.raw, "\r\n\r\n") {
				if strings.HasPrefix(m, "HEAD ") && i < len(methods) {
					methods[i] = http.MethodHead
				}
			}
			for i := range tt.want {
				tt.want[i].Via = overTLS(tt.want[i].Via, secure)
			}
			got := exchange(t, tg, tt.raw, methods)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("answers mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPanicEndsTheConnection: a handler's panic closes its connection, as
// in net/http, and the server goes on.
func TestPanicEndsTheConnection(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) { testPanicEndsTheConnection(t, tr.secure) })
	}
}

func testPanicEndsTheConnection(t *testing.T, secure bool) {
	_, tg := front(t, secure)
	c := tg.dial(t)
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET /panic HTTP/1.1\r\nHost: a\r\n\r\n")
	if b, err := io.ReadAll(c); err != nil || len(b) != 0 {
		t.Errorf("after a panic: %q, %v; want the connection closed, nothing sent", b, err)
	}
	got := exchange(t, tg, "GET /hit HTTP/1.1\r\nHost: a\r\n\r\n", []string{"GET"})
	if diff := cmp.Diff([]answer{{200, overTLS("fast", secure), "hit"}}, got); diff != "" {
		t.Errorf("the next connection (-want +got):\n%s", diff)
	}
}

// TestSplitHeader: a header block that arrives in pieces is answered once
// complete.
func TestSplitHeader(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) { testSplitHeader(t, tr.secure) })
	}
}

func testSplitHeader(t *testing.T, secure bool) {
	_, tg := front(t, secure)
	c := tg.dial(t)
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	for _, part := range []string{"GET /hit HT", "TP/1.1\r\nHost: a\r", "\n\r\n"} {
		io.WriteString(c, part)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := via(resp.Header), overTLS("fast", secure); got != want {
		t.Errorf("X-Via = %q, want %s", got, want)
	}
}

// TestShutdownClosesIdle: Shutdown ends a connection waiting for its next
// request at once and Serve returns ErrClosed.
func TestShutdownClosesIdle(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) { testShutdownClosesIdle(t, tr.secure) })
	}
}

func testShutdownClosesIdle(t *testing.T, secure bool) {
	s, err := New(DefaultConfig(), func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Content-Length", "0")
		return true
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	tg := target{addr: ln.Addr().String()}
	if secure {
		var scfg *tls.Config
		scfg, tg.tls = testTLS(t)
		go func() { served <- s.ServeTLS(ln, TLS{Config: scfg}) }()
	} else {
		go func() { served <- s.Serve(ln) }()
	}
	c := tg.dial(t)
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	br := bufio.NewReader(c)
	if _, err := http.ReadResponse(br, nil); err != nil { // the connection is now idle in the fast path
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown() = %v, want nil (an idle connection ends at once)", err)
	}
	if err := <-served; !errors.Is(err, ErrClosed) {
		t.Errorf("Serve() = %v, want ErrClosed", err)
	}
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Errorf("read after Shutdown: %v, want EOF", err)
	}
}

// TestSlowClientTimeouts: a new connection's first request that does not
// arrive whole within ReadHeaderTimeout of the connection's start, a later
// header not whole within ReadHeaderTimeout of its first byte, and a kept
// connection idle for IdleTimeout, are closed with nothing sent (net/http's
// behaviour); a header completed in time is answered.
func TestSlowClientTimeouts(t *testing.T) {
	cfg := DefaultConfig()
	tests := []struct {
		name   string
		parts  []string      // written one after another
		wait   time.Duration // before the next part
		answer bool
	}{
		{"header too slow", []string{"GET / HTTP/1.1\r\n", "Host: a\r\n\r\n"}, cfg.ReadHeaderTimeout + time.Second, false},
		// A new connection's first request: ReadHeaderTimeout from its start
		// (after the handshake), as net/http; not IdleTimeout.
		{"first request too late", []string{"", "GET / HTTP/1.1\r\nHost: a\r\n\r\n"}, cfg.ReadHeaderTimeout + time.Second, false},
		{"first request in time", []string{"", "GET / HTTP/1.1\r\nHost: a\r\n\r\n"}, cfg.ReadHeaderTimeout - time.Second, true},
		{"first request begun in time, ended too late", []string{"", "GET / HTTP/1.1\r\n", "Host: a\r\n\r\n"}, cfg.ReadHeaderTimeout/2 + time.Second, false},
		{"header in time", []string{"GET / HTTP/1.1\r\n", "Host: a\r\n\r\n"}, cfg.ReadHeaderTimeout - time.Second, true},
		// The idle deadline is renewed, not set, per request (deadlineSlack):
		// a kept connection still gets its full IdleTimeout, less the slack.
		{"kept connection, each request in time", []string{"GET / HTTP/1.1\r\nHost: a\r\n\r\n", "GET /2 HTTP/1.1\r\nHost: a\r\n\r\n", "GET /3 HTTP/1.1\r\nHost: a\r\n\r\n"}, cfg.IdleTimeout - deadlineSlack - time.Second, true},
		{"kept connection, idle too long", []string{"GET / HTTP/1.1\r\nHost: a\r\n\r\n", "GET /2 HTTP/1.1\r\nHost: a\r\n\r\n"}, cfg.IdleTimeout + time.Second, false},
	}
	scfg, ccfg := testTLS(t)
	issued := time.Now()
	ccfg.Time = func() time.Time { return issued } // synctest's clock starts in 2000
	for _, tr := range transports {
		for _, tt := range tests {
			t.Run(tr.name+"/"+tt.name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					s, err := New(cfg, func(w http.ResponseWriter, r *http.Request) bool {
						w.Header().Set("Content-Length", "2")
						io.WriteString(w, "ok")
						return true
					}, slog.New(slog.DiscardHandler))
					if err != nil {
						t.Fatal(err)
					}
					rawClient, server := net.Pipe()
					defer rawClient.Close()
					client := rawClient
					done := make(chan struct{})
					s.track(server, true) // as the accept loop does
					go func() {
						defer close(done)
						defer s.wg.Done()
						if tr.secure {
							s.serveTLSConn(server, &TLS{Config: scfg})
							return
						}
						s.serveConn(server, server, true)
					}()
					if tr.secure {
						tc := tls.Client(rawClient, ccfg)
						if err := tc.Handshake(); err != nil { // the timeouts below start after it
							t.Fatal(err)
						}
						client = tc
					}
					var got []byte
					reads := make(chan struct{})
					go func() {
						defer close(reads)
						got, _ = io.ReadAll(client)
					}()
					for i, p := range tt.parts {
						if i > 0 {
							time.Sleep(tt.wait)
							synctest.Wait()
						}
						if p != "" {
							client.Write([]byte(p)) // fails once the server closed: that is the point
						}
					}
					synctest.Wait()
					answered := false
					select {
					case <-done:
					default:
						answered = true // still serving after the answer: close our side
						rawClient.Close()
					}
					<-done
					<-reads
					answered = answered && strings.HasPrefix(string(got), "HTTP/1.1 200 OK")
					if answered != tt.answer {
						t.Errorf("answered = %v (%q), want %v", answered, got, tt.answer)
					}
				})
			})
		}
	}
}

// TestTakeBackFlat: a connection that goes to net/http and back many
// times is read in stream order, from one prefix reader over the
// connection itself, never from a chain that grows with each trip (each
// read went through every layer: a long-lived connection alternating
// misses and hits got slower with every miss).
func TestTakeBackFlat(t *testing.T) {
	client, raw := net.Pipe()
	defer client.Close()
	defer raw.Close()
	var rd io.Reader = &prefixReader{buf: []byte("0123456789"), conn: raw}
	var got []byte
	for trip := range 4 {
		// hitfront reads ahead and consumes one byte...
		br := bufio.NewReaderSize(rd, 16)
		if _, err := br.Peek(1); err != nil {
			t.Fatal(err)
		}
		b, _ := br.ReadByte()
		got = append(got, b)
		src, _ := rd.(*prefixReader)
		bc := &bufConn{Conn: raw, r: br, src: src}
		// ...net/http reads ahead through bc and consumes one more.
		nr := bufio.NewReaderSize(bc, 16)
		b, err := nr.ReadByte()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, b)
		var c net.Conn
		c, rd = takeBack(bc, nr)
		if c != raw {
			t.Fatalf("trip %d: takeBack returned %T, want the connection itself", trip, c)
		}
		if p, ok := rd.(*prefixReader); rd != io.Reader(raw) && (!ok || p.conn != raw) {
			t.Fatalf("trip %d: reader %T, want the connection or one prefixReader over it", trip, rd)
		}
	}
	go func() { client.Write([]byte("tail")) }()
	rest := make([]byte, len("89tail"))
	if _, err := io.ReadFull(rd, rest); err != nil {
		t.Fatal(err)
	}
	if s := string(got) + string(rest); s != "0123456789tail" {
		t.Errorf("read %q, want the stream in order", s)
	}
}
