package hitfront

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"time"
)

// TLS is how ServeTLS serves HTTPS: after the handshake, a connection
// whose ALPN is http/1.1 (or none) is served as a plain one is, over the
// *tls.Conn (the same parser, writer, limits and hand-over); any other
// protocol (h2) goes to net/http at once, unread.
type TLS struct {
	Config *tls.Config
	// HandshakeError, when set, is told of each failed handshake, with
	// net/http's wording (the edge counts and logs them).
	HandshakeError func(remote net.Addr, reason string)
	// Header holds fields every response on these connections carries
	// (the edge's Strict-Transport-Security and Alt-Svc), rendered
	// unless the handler set the same field (a rendered cache block
	// that holds the field keeps its own).
	Header http.Header
}

// ServeTLS accepts connections on ln, completes each TLS handshake, and
// serves them until Shutdown; it closes ln. The handshake is bounded by
// ReadHeaderTimeout (net/http's bound, as the edge sets it).
func (s *Server) ServeTLS(ln net.Listener, t TLS) error {
	s.mu.Lock()
	s.fixed = renderFixed(t.Header)
	s.mu.Unlock()
	return s.serve(ln, &t)
}

// renderFixed renders h as header lines, sorted by name for a stable
// order; nil when h is empty.
func renderFixed(h http.Header) []fixedField {
	var out []fixedField
	for k, vs := range h {
		k = http.CanonicalHeaderKey(k)
		if !validName(k) {
			continue
		}
		var b []byte
		for _, v := range vs {
			if !validValue(v) || !plainValue(v) {
				continue
			}
			b = append(append(append(append(b, k...), ": "...), v...), "\r\n"...)
		}
		if len(b) > 0 {
			out = append(out, fixedField{name: k, line: b, mark: []byte("\n" + k + ":")})
		}
	}
	return out
}

// fixedField is one of TLS.Header's fields, rendered.
type fixedField struct {
	name string
	line []byte // "Name: value\r\n" for each value
	mark []byte // "\nName:": the field in a rendered block, after its first line
}

// inBlock reports whether the rendered block holds the field.
func (f *fixedField) inBlock(block []byte) bool {
	return bytes.HasPrefix(block, f.mark[1:]) || bytes.Contains(block, f.mark)
}

// serveTLSConn completes the handshake on c and serves the connection:
// here for HTTP/1.1, through net/http for any other protocol.
func (s *Server) serveTLSConn(c net.Conn, t *TLS) {
	defer func() {
		// As net/http does: a panic in the handshake (a GetCertificate
		// callback) ends this connection, not the process. serveConn
		// recovers its own.
		if v := recover(); v != nil {
			s.logger.Error("panic in a TLS handshake", "err", v, "remote", c.RemoteAddr().String(), "stack", string(debug.Stack()))
			s.track(c, false)
			c.Close()
		}
	}()
	cc := &corkConn{Conn: c}
	tc := tls.Server(cc, t.Config)
	if err := s.handshake(tc, t); err != nil {
		s.track(c, false)
		return
	}
	if !s.retrack(c, tc) {
		tc.Close()
		return
	}
	if p := tc.ConnectionState().NegotiatedProtocol; p != "" && p != "http/1.1" {
		// h2: net/http's server (it finds the handshake done and the
		// protocol negotiated); nothing was read.
		s.track(tc, false)
		s.handed.Add(1)
		s.handoff.give(tc)
		return
	}
	s.serveConn(tc, tc, true)
}

// handshake runs the TLS handshake within ReadHeaderTimeout, as net/http
// does: a client that speaks plain HTTP gets net/http's 400, and every
// failure is reported to t.HandshakeError and ends the connection.
func (s *Server) handshake(tc *tls.Conn, t *TLS) error {
	raw := tc.NetConn()
	raw.SetDeadline(time.Now().Add(s.cfg.ReadHeaderTimeout))
	err := tc.Handshake()
	if err == nil {
		if s.closing.Load() {
			err = ErrClosed
		} else {
			raw.SetDeadline(time.Time{})
			return nil
		}
	}
	reason := err.Error()
	var re tls.RecordHeaderError
	if errors.As(err, &re) && re.Conn != nil && looksLikeHTTP(re.RecordHeader) {
		io.WriteString(re.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
		reason = "client sent an HTTP request to an HTTPS server"
	}
	if t.HandshakeError != nil && !s.closing.Load() {
		t.HandshakeError(raw.RemoteAddr(), reason)
	}
	raw.Close()
	return err
}

// looksLikeHTTP is net/http's test of a TLS record header that is the
// start of a plain HTTP request.
func looksLikeHTTP(hdr [5]byte) bool {
	switch string(hdr[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		return true
	}
	return false
}

// retrack replaces old by new in the connections Shutdown reaches (the
// goroutine serving them stays counted); false when shutting down.
func (s *Server) retrack(old, new net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, old)
	if s.closing.Load() {
		return false
	}
	s.conns[new] = struct{}{}
	return true
}

// corkConn is the TCP connection under a *tls.Conn: while corked it
// collects the encrypted records of one response and sends them with one
// write at uncork (one system call per response instead of one per
// record), holding at most corkBytes. Uncorked (the handshake, alerts,
// whatever net/http writes after a hand-over) it writes through. Only
// the goroutine serving the connection corks it, but crypto/tls may write
// from another: Shutdown's forced Close sends a close_notify alert when no
// Write is in flight, which can fall between cork and uncork. mu keeps
// that write and the serving goroutine's apart (uncontended otherwise).
type corkConn struct {
	net.Conn
	mu     sync.Mutex
	corked bool
	buf    *[]byte // from corkPool while corked
}

// corkBytes bounds a corked connection's buffer: four full records and
// their overhead.
const corkBytes = 4 * (16<<10 + 256)

var corkPool = sync.Pool{New: func() any { b := make([]byte, 0, corkBytes); return &b }}

func (c *corkConn) cork() {
	c.mu.Lock()
	c.corked = true
	c.buf = corkPool.Get().(*[]byte)
	c.mu.Unlock()
}

func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.corked {
		return c.Conn.Write(p)
	}
	b := *c.buf
	if len(b)+len(p) > cap(b) {
		if err := c.flush(); err != nil {
			return 0, err
		}
		if len(p) > cap(b) {
			return c.Conn.Write(p)
		}
		b = *c.buf
	}
	*c.buf = append(b, p...)
	return len(p), nil
}

// flush sends what was collected; c.mu is held.
func (c *corkConn) flush() error {
	b := *c.buf
	*c.buf = b[:0]
	if len(b) == 0 {
		return nil
	}
	_, err := c.Conn.Write(b)
	return err
}

// uncork sends what was collected and stops collecting.
func (c *corkConn) uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.flush()
	c.corked = false
	corkPool.Put(c.buf)
	c.buf = nil
	return err
}

// recordBytes is a full TLS record's data.
const recordBytes = 16 << 10

var joinPool = sync.Pool{New: func() any { b := make([]byte, 0, recordBytes); return &b }}

// writeTLS sends pieces as full TLS records: the first recordBytes of the
// response (status line, header and the start of the body) joined into
// one Write, which crypto/tls makes one full record of, then the rest of
// the body in one Write (full records again), not a record per piece; the
// cork sends them with one system call per corkBytes. Only the first
// record's bytes are copied (crypto/tls copies every byte into its own
// buffer anyway).
func (w *responseWriter) writeTLS(pieces [][]byte) error {
	w.cork.cork()
	var err error
	if len(pieces) == 1 {
		_, err = w.conn.Write(pieces[0])
	} else {
		bp := joinPool.Get().(*[]byte)
		b := (*bp)[:0]
		i := 0
		for ; i < len(pieces) && len(b) < recordBytes; i++ {
			n := min(len(pieces[i]), recordBytes-len(b))
			b = append(b, pieces[i][:n]...)
			pieces[i] = pieces[i][n:]
			if len(pieces[i]) > 0 {
				break // the piece goes on after the first record
			}
		}
		_, err = w.conn.Write(b)
		*bp = b[:0]
		joinPool.Put(bp)
		for ; i < len(pieces) && err == nil; i++ {
			if len(pieces[i]) > 0 {
				_, err = w.conn.Write(pieces[i])
			}
		}
	}
	if ferr := w.cork.uncork(); err == nil {
		err = ferr
	}
	return err
}

type tlsStateKey struct{}

// ConnContext is http.Server.ConnContext for the server that serves
// Handoff's listener of a ServeTLS server: a connection handed over after
// hitfront read from it is not a *tls.Conn to net/http, so its state is
// kept in the context, and Returning sets it as the request's TLS.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if bc, ok := c.(*bufConn); ok {
		if tc, ok := bc.Conn.(*tls.Conn); ok {
			st := tc.ConnectionState()
			return context.WithValue(ctx, tlsStateKey{}, &st)
		}
	}
	return ctx
}
