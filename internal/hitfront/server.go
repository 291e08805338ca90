// Package hitfront answers HTTP/1.1 requests that a handler can
// serve without net/http, on plain connections (Serve) and, after the
// handshake, on TLS connections whose ALPN is http/1.1 (ServeTLS, tls.go) — the edge's cache hits and the GET and HEAD
// requests it proxies to a node without the cache — and gives every other
// connection to net/http.
//
// A connection starts here. For each request it reads the header block
// and, when parseHead accepts it (GET or HEAD, HTTP/1.1, no body framing,
// nothing it does not understand), builds an *http.Request and asks the
// Handler. A handler that answers writes through a ResponseWriter that
// frames the response itself (its Content-Length, else a held body's
// length, else chunked) and sends the status line, header and first body
// bytes in one writev. A handler that does not (a miss, the edge's own
// paths) has written nothing; the connection then
// goes, with every byte of that request still unread, to the listener
// that Handoff returns, for http.Server.Serve: net/http reads the request
// from its first byte, so there is one parser's view of every request
// that is not a plain hit, and the connection stays with net/http.
// ADRs docs/adr/0022-edge-hit-representations.md,
// docs/adr/0028-edge-fast-proxy.md and docs/adr/0034-hitfront-tls.md say
// why.
package hitfront

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config bounds a fast-path connection.
type Config struct {
	// ReadHeaderTimeout bounds reading a request's header once its first
	// byte arrived.
	ReadHeaderTimeout time.Duration
	// IdleTimeout bounds the wait for the next request.
	IdleTimeout time.Duration
	// BufferBytes is the read buffer; a header block larger than it goes
	// to net/http (whose MaxHeaderBytes then applies).
	BufferBytes int
}

// DefaultConfig returns the defaults, net/http's as the edge sets them.
func DefaultConfig() Config {
	return Config{ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second, BufferBytes: 8 << 10}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.ReadHeaderTimeout <= 0:
		return fmt.Errorf("hitfront: config.read_header_timeout: must be positive, got %s", c.ReadHeaderTimeout)
	case c.IdleTimeout <= 0:
		return fmt.Errorf("hitfront: config.idle_timeout: must be positive, got %s", c.IdleTimeout)
	case c.BufferBytes < 1<<10:
		return fmt.Errorf("hitfront: config.buffer_bytes: must be at least 1024, got %d", c.BufferBytes)
	}
	return nil
}

// Handler answers r whole and reports true, or reports false having
// written nothing (not even a header field it keeps: the header map is
// cleared either way). It must not keep r, its Header or their values
// once it returns (no goroutine may use them after): the connection's
// next request reuses them. r's strings (method, target, Host) are the
// request's own and may be kept.
type Handler func(w http.ResponseWriter, r *http.Request) bool

// Server is the fast path in front of one listener.
type Server struct {
	cfg     Config
	handler Handler
	logger  *slog.Logger

	handoff  *handoff
	served   atomic.Int64 // requests answered here
	handed   atomic.Int64 // connections given to net/http
	returned atomic.Int64 // connections net/http gave back

	closing atomic.Bool
	wg      sync.WaitGroup

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	fixed []fixedField // ServeTLS's TLS.Header, rendered
}

// New returns a server; Serve starts it.
func New(cfg Config, h Handler, logger *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Server{cfg: cfg, handler: h, logger: logger, conns: map[net.Conn]struct{}{}}, nil
}

// ErrClosed is Serve's answer once Shutdown ran.
var ErrClosed = errors.New("hitfront: server closed")

// Handoff is the listener to give http.Server.Serve. Call it before Serve.
func (s *Server) Handoff(addr net.Addr) net.Listener {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.handoff == nil {
		s.handoff = newHandoff(addr)
	}
	return s.handoff
}

// Stats are the fast path's counters.
type Stats struct {
	Served   int64 // requests answered without net/http
	Handed   int64 // connections given to net/http
	Returned int64 // connections net/http gave back (Returning)
}

func (s *Server) Stats() Stats {
	return Stats{Served: s.served.Load(), Handed: s.handed.Load(), Returned: s.returned.Load()}
}

// Serve accepts connections on ln until Shutdown; it closes ln.
func (s *Server) Serve(ln net.Listener) error { return s.serve(ln, nil) }

// serve is Serve, and ServeTLS when t is set.
func (s *Server) serve(ln net.Listener, t *TLS) error {
	s.mu.Lock()
	if s.handoff == nil {
		s.handoff = newHandoff(ln.Addr())
	}
	s.ln = ln
	closing := s.closing.Load()
	s.mu.Unlock()
	if closing {
		ln.Close()
		return ErrClosed
	}
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return ErrClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() { // as net/http: back off on EMFILE and the like
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.logger.Warn("accept failed; retrying", "err", err, "in", delay)
				time.Sleep(delay)
				continue
			}
			return fmt.Errorf("hitfront: accept: %w", err)
		}
		delay = 0
		if !s.track(c, true) {
			c.Close()
			return ErrClosed
		}
		go func() {
			defer s.wg.Done() // added by track
			if t != nil {
				s.serveTLSConn(c, t)
				return
			}
			s.serveConn(c, c, true)
		}()
	}
}

// track adds or removes c from the connections Shutdown closes; false
// when adding after Shutdown. Adding also adds the goroutine that will
// serve c to wg, under the mutex Shutdown takes before it waits, so no
// Add can come after Shutdown's Wait began.
func (s *Server) track(c net.Conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !add {
		delete(s.conns, c)
		return true
	}
	if s.closing.Load() {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

// Shutdown stops accepting, ends every connection once its current
// response is written (one waiting for a request ends at once), and waits
// for them until ctx ends, then closes the rest.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing.Store(true)
	if s.ln != nil {
		s.ln.Close()
	}
	for c := range s.conns {
		c.SetReadDeadline(time.Now()) // a blocked read returns; the loop sees closing
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		<-done
		return ctx.Err()
	}
}

// conn is one connection's reusable state.
type conn struct {
	c    net.Conn // the connection itself: deadlines, writes, Close
	br   *bufio.Reader
	w    responseWriter
	req  http.Request
	head request
	vals []string
	tls  *tls.ConnectionState // nil: plain HTTP
	// fresh: no request read yet on a new connection. Its first request
	// must arrive whole within ReadHeaderTimeout of the connection's start
	// (after the handshake, over TLS), as net/http has it; IdleTimeout is
	// the wait between requests of a connection that has served one.
	fresh bool
	// deadline is the read deadline this loop last set on c (Shutdown's
	// own is not in it: a stale value only skips a renewal, and the read
	// then ends as Shutdown wants).
	deadline time.Time
}

// deadlineSlack: an idle connection is closed after IdleTimeout at most
// and IdleTimeout minus this at least. Renewing the deadline only when it
// has moved this far saves a deadline update (a runtime timer change) on
// most requests of a busy connection.
const deadlineSlack = 2 * time.Second

// idleDeadline makes sure the wait for the next request ends after d at
// most, and not before d minus deadlineSlack.
func (cs *conn) idleDeadline(d time.Duration) {
	now := time.Now()
	if !cs.deadline.IsZero() && cs.deadline.Sub(now) >= d-min(deadlineSlack, d/2) {
		return
	}
	cs.setDeadline(now.Add(d))
}

func (cs *conn) setDeadline(t time.Time) {
	cs.deadline = t
	cs.c.SetReadDeadline(t)
}

// serveConn serves the connection nc, reading from rd: nc itself, or a
// reader that holds bytes net/http had read when the connection returned.
// fresh: nc is new (not given back by net/http after a request).
func (s *Server) serveConn(nc net.Conn, rd io.Reader, fresh bool) {
	cs := &conn{c: nc, br: bufio.NewReaderSize(rd, s.cfg.BufferBytes), fresh: fresh}
	cs.w.conn = nc
	cs.w.served = &s.served
	cs.w.h = make(http.Header, 16)
	cs.req.Header = make(http.Header, 16)
	if tc, ok := nc.(*tls.Conn); ok {
		st := tc.ConnectionState()
		cs.tls = &st
		cs.w.cork, _ = tc.NetConn().(*corkConn)
		s.mu.Lock()
		cs.w.fixed = s.fixed
		s.mu.Unlock()
	}
	handed := false
	defer func() {
		// As net/http does: a panic ends this connection, not the process.
		if v := recover(); v != nil && v != http.ErrAbortHandler {
			s.logger.Error("panic serving a request", "err", v, "stack", string(debug.Stack()))
		}
		s.track(nc, false)
		if !handed {
			nc.Close()
		}
	}()
	remote := nc.RemoteAddr().String()
	for !s.closing.Load() {
		n, ok := s.readHead(cs)
		if n < 0 {
			return // closed, timed out or shutting down
		}
		if ok {
			ok = s.serveOne(cs, n, remote)
		}
		if !ok {
			if s.closing.Load() {
				return
			}
			handed = true
			s.handed.Add(1)
			s.track(nc, false)
			nc.SetReadDeadline(time.Time{}) // net/http sets its own
			src, _ := rd.(*prefixReader)
			s.handoff.give(&bufConn{Conn: nc, r: cs.br, src: src})
			return
		}
		if !cs.w.finish() {
			return
		}
		cs.br.Discard(n)
	}
}

// readHead waits for a complete header block at the start of the buffer:
// n is its length and ok whether the fast path may try it; n < 0 ends the
// connection (EOF, timeout, error, or an incomplete request when shutting
// down). ok false with n >= 0 hands the connection over.
func (s *Server) readHead(cs *conn) (n int, ok bool) {
	headerDeadline := false
	switch {
	case cs.fresh:
		// One bound for the whole first request, from the start: a client
		// that connects and sends nothing (or a byte at a time) holds the
		// connection ReadHeaderTimeout, not IdleTimeout.
		cs.fresh = false
		cs.setDeadline(time.Now().Add(s.cfg.ReadHeaderTimeout))
		headerDeadline = true
	case cs.br.Buffered() == 0:
		cs.idleDeadline(s.cfg.IdleTimeout)
	}
	for {
		b, _ := cs.br.Peek(cs.br.Buffered())
		n, bad := scanHead(b)
		switch {
		case bad:
			return 0, false
		case n > 0:
			return n, true
		case len(b) >= s.cfg.BufferBytes:
			return 0, false // a large header: net/http's limits decide
		}
		if len(b) > 0 && !headerDeadline {
			cs.setDeadline(time.Now().Add(s.cfg.ReadHeaderTimeout))
			headerDeadline = true
		}
		if s.closing.Load() {
			return -1, false // after setting a deadline: Shutdown's may be overwritten
		}
		if _, err := cs.br.Peek(len(b) + 1); err != nil {
			return -1, false // EOF, reset, a timeout (net/http closes then too), Shutdown
		}
	}
}

// serveOne parses the header block of n bytes and runs the handler;
// false means hand the connection over (nothing was written).
func (s *Server) serveOne(cs *conn, n int, remote string) bool {
	b, _ := cs.br.Peek(n)
	block := string(b) // the one allocation the request's strings share
	var ok bool
	cs.vals, ok = parseHead(block, &cs.head, cs.req.Header, cs.vals)
	if !ok {
		return false
	}
	r := &cs.req
	*r = http.Request{
		Method: cs.head.method, URL: cs.head.url, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: r.Header, Body: http.NoBody, Host: cs.head.host, RemoteAddr: remote, RequestURI: cs.head.target,
		TLS: cs.tls, Close: cs.head.close,
	}
	cs.w.reset(cs.head.method == http.MethodHead, cs.head.close)
	if s.handler(&cs.w, r) {
		return true
	}
	if cs.w.sent || cs.w.wroteHeader {
		// The handler broke its contract: what it wrote is the answer
		// (finish ends the connection if it is not framed whole).
		s.logger.Error("handler wrote and declined", "uri", cs.head.target)
		return true
	}
	return false
}

// Returning wraps the handler net/http runs for the connections hitfront
// handed over. After a GET or HEAD without a body whose response it
// framed by Content-Length (written whole) or sent without a body (204,
// 304), it takes the connection back from net/http (Hijack, after a
// flush) for the fast path, with whatever net/http had read of the next
// request: one miss does not keep a long-lived connection (a browser's, a
// CDN's) off the fast path for good. Anything else stays with net/http.
func (s *Server) Returning(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			if st, ok := r.Context().Value(tlsStateKey{}).(*tls.ConnectionState); ok {
				r.TLS = st // a TLS connection hitfront handed over (ConnContext)
			}
		}
		if s.closing.Load() || r.ProtoMajor != 1 || (r.Method != http.MethodGet && r.Method != http.MethodHead) ||
			r.ContentLength != 0 || len(r.TransferEncoding) > 0 || r.Close || !r.ProtoAtLeast(1, 1) {
			h.ServeHTTP(w, r)
			return
		}
		cw := &countingWriter{ResponseWriter: w}
		h.ServeHTTP(cw, r)
		if !cw.complete(r.Method == http.MethodHead) || s.closing.Load() {
			return
		}
		rc := http.NewResponseController(w)
		if rc.Flush() != nil {
			return
		}
		c, brw, err := rc.Hijack()
		if err != nil {
			return
		}
		s.resume(c, brw.Reader)
	})
}

// resume serves a connection net/http gave back. c is the bufConn hitfront
// handed over; r holds what net/http read past the last request.
func (s *Server) resume(c net.Conn, r *bufio.Reader) {
	raw, rd := takeBack(c, r)
	raw.SetDeadline(time.Time{})
	if !s.track(raw, true) {
		raw.Close()
		return
	}
	s.returned.Add(1)
	go func() {
		defer s.wg.Done() // added by track
		s.serveConn(raw, rd, false)
	}()
}

// countingWriter records what a handler sent, to tell whether the
// response is framed whole. Unwrap keeps http.ResponseController working
// through it.
type countingWriter struct {
	http.ResponseWriter
	status   int
	declared int64 // -1: no Content-Length
	written  int64
}

func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *countingWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
		w.declared = -1
		if v := w.Header()["Content-Length"]; len(v) == 1 {
			if n, err := strconv.ParseInt(v[0], 10, 64); err == nil && n >= 0 {
				w.declared = n
			}
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *countingWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(p)
	w.written += int64(n)
	return n, err
}

// complete: a final status was sent, the connection is not closing, and
// the body is all there is by Content-Length (or there is none).
func (w *countingWriter) complete(head bool) bool {
	if w.status == 0 || strings.Contains(strings.ToLower(strings.Join(w.Header()["Connection"], ",")), "close") {
		return false
	}
	if !bodyAllowed(w.status) {
		return true
	}
	return w.declared >= 0 && (head || w.written == w.declared)
}
