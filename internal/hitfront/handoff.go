package hitfront

import (
	"bufio"
	"io"
	"net"
	"sync"
)

// handoff is the net.Listener net/http serves: it yields the connections
// the fast path gave up, each with the bytes it had read and not consumed.
type handoff struct {
	addr net.Addr
	ch   chan net.Conn

	once sync.Once
	done chan struct{}
}

var _ net.Listener = (*handoff)(nil)

func newHandoff(addr net.Addr) *handoff {
	return &handoff{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *handoff) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *handoff) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *handoff) Addr() net.Addr { return l.addr }

// give passes c to net/http, or closes it once the listener is closed.
func (l *handoff) give(c net.Conn) {
	select {
	case l.ch <- c:
	case <-l.done:
		c.Close()
	}
}

// bufConn is the connection given to net/http: its first bytes are
// those hitfront had read and not consumed, in r's buffer, then the rest
// of src's prefix, then the connection itself. r never reads from its
// source again (it is read only while it holds bytes), so the order is
// the stream's and the chain of readers stays one deep however often a
// connection goes to net/http and back (resume flattens it).
type bufConn struct {
	net.Conn               // the accepted connection
	r        *bufio.Reader // hitfront's reader; nil once drained
	src      *prefixReader // what r read from, when not the connection itself
}

func (c *bufConn) Read(p []byte) (int, error) {
	if c.r != nil {
		if c.r.Buffered() > 0 {
			return c.r.Read(p) // only what is buffered: no read from its source
		}
		c.r = nil
	}
	if c.src != nil && len(c.src.buf) > 0 {
		return c.src.Read(p)
	}
	return c.Conn.Read(p)
}

// pending returns the bytes c holds before its connection's, and drops
// them from c.
func (c *bufConn) pending() []byte {
	var b []byte
	if c.r != nil {
		b, _ = c.r.Peek(c.r.Buffered())
		b = append([]byte(nil), b...)
		c.r = nil
	}
	if c.src != nil {
		b = append(b, c.src.buf...)
		c.src.buf = nil
	}
	return b
}

// prefixReader reads buf, then conn: a connection net/http gave back with
// bytes of the next request already read.
type prefixReader struct {
	buf  []byte
	conn net.Conn
}

func (p *prefixReader) Read(b []byte) (int, error) {
	if len(p.buf) > 0 {
		n := copy(b, p.buf)
		p.buf = p.buf[n:]
		return n, nil
	}
	return p.conn.Read(b)
}

// takeBack returns the connection net/http gave back and the reader to
// serve it from: the bytes net/http had read past its last request
// (buffered in r) and those it had not yet taken from c, then the
// connection itself. The reader is the connection, or one prefixReader
// over it: never a chain.
func takeBack(c net.Conn, r *bufio.Reader) (net.Conn, io.Reader) {
	raw := c
	var rest []byte
	if r != nil && r.Buffered() > 0 {
		b, _ := r.Peek(r.Buffered())
		rest = append(rest, b...) // net/http's reader came first: it read from c
	}
	if bc, ok := c.(*bufConn); ok {
		raw = bc.Conn
		rest = append(rest, bc.pending()...)
	}
	if len(rest) == 0 {
		return raw, raw
	}
	return raw, &prefixReader{buf: rest, conn: raw}
}

// CloseWrite lets net/http half-close as it does on a *net.TCPConn.
func (c *bufConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
