package hitfront

import (
	"bufio"
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

// bufConn is a connection whose first bytes are still in r.
type bufConn struct {
	net.Conn
	r *bufio.Reader // nil once drained (direct only)
	// direct: r reads from Conn itself, so once r is drained reads go to
	// Conn; otherwise r reads from bytes before Conn's and stays in front.
	direct bool
	raw    net.Conn // the accepted connection (Returning takes it back)
}

func (c *bufConn) Read(p []byte) (int, error) {
	if c.r != nil {
		if !c.direct || c.r.Buffered() > 0 {
			return c.r.Read(p)
		}
		c.r = nil
	}
	return c.Conn.Read(p)
}

// CloseWrite lets net/http half-close as it does on a *net.TCPConn.
func (c *bufConn) CloseWrite() error {
	if cw, ok := c.raw.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
