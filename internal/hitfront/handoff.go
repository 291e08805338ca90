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
	r *bufio.Reader // nil once drained
}

func (c *bufConn) Read(p []byte) (int, error) {
	if c.r != nil {
		if c.r.Buffered() > 0 {
			return c.r.Read(p)
		}
		c.r = nil
	}
	return c.Conn.Read(p)
}

// CloseWrite lets net/http half-close as it does on a *net.TCPConn.
func (c *bufConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
