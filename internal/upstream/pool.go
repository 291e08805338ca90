package upstream

import (
	"bufio"
	"context"
	"net"
	"sync"
	"syscall"
	"time"
)

// Pool is the keep-alive connections to one node. The edge keeps it on the
// balancer's node (balancer.Config.NewConns), so it lives and dies with
// the node; Close closes its idle connections, and those in use when they
// come back.
type Pool struct {
	addr  string
	c     *Client
	slots chan struct{} // one per open connection; nil: unbounded

	mu     sync.Mutex
	idle   []*conn // oldest first; taken from the end
	closed bool
}

// conn is one connection to a node with its buffers.
type conn struct {
	nc      net.Conn
	raw     syscall.RawConn // for the liveness peek; nil if not a socket
	br      *bufio.Reader
	bw      *bufio.Writer
	pool    *Pool
	maxHead int
	head    []byte // readHead's buffer, kept between requests
	wrote   bool   // a byte of the current request may have left
	idleAt  time.Time

	stop func() bool // stops the request's context watch; nil when none

	// deadline is the read deadline on nc (zero: none); headDeadline
	// renews it only when it is more than deadlineSlack short.
	deadline time.Time
	// peek is alive's function for raw.Read, made once per connection;
	// peekOK its answer.
	peek   func(fd uintptr) bool
	peekOK bool
}

// deadlineSlack: the head timeout is between ResponseHeaderTimeout minus
// it and ResponseHeaderTimeout. Renewing the deadline only when it has
// moved this far saves a deadline update (a runtime timer change) on
// most requests of a busy connection.
const deadlineSlack = 2 * time.Second

// headDeadline makes sure that reading the answer head fails after d at
// most, and not before d - deadlineSlack.
func (c *conn) headDeadline(d time.Duration) {
	now := time.Now()
	if !c.deadline.IsZero() && c.deadline.Sub(now) >= d-min(deadlineSlack, d/2) {
		return
	}
	c.deadline = now.Add(d)
	c.nc.SetReadDeadline(c.deadline)
}

// Write is the bufio.Writer's way to the socket: it records that the
// request may have reached the node.
func (c *conn) Write(p []byte) (int, error) {
	c.wrote = true
	return c.nc.Write(p)
}

// release ends the connection's current request: back to the pool when
// reuse is true and the request's context did not touch its deadlines,
// else closed.
func (c *conn) release(reuse bool) {
	if c.stop != nil {
		if !c.stop() {
			reuse = false // the context ended: its deadline is on the socket
		}
		c.stop = nil
	}
	if reuse && c.br.Buffered() > 0 {
		reuse = false // bytes beyond the response: the node is confused
	}
	if reuse {
		c.pool.put(c)
		return
	}
	c.close()
}

func (c *conn) close() {
	c.nc.Close()
	if c.pool.slots != nil {
		<-c.pool.slots
	}
}

// get returns an idle connection that is still open, or a new one. With
// resendable (the request is safe to send again on a new connection when
// this one turns out stale) a connection idle for less than PeekAfter is
// taken without the liveness peek.
func (p *Pool) get(ctx context.Context, resendable bool) (c *conn, reused bool, err error) {
	for {
		var idle time.Duration
		c, idle = p.takeIdle()
		if c == nil {
			break
		}
		if resendable && idle < p.c.cfg.PeekAfter || c.alive() {
			return c, true, nil
		}
		c.close()
	}
	if p.slots != nil {
		select {
		case p.slots <- struct{}{}:
		default:
			select {
			case p.slots <- struct{}{}:
			case <-ctx.Done():
				return nil, false, ctx.Err()
			}
		}
	}
	dial := p.c.dialer.DialContext
	if p.c.cfg.DialContext != nil {
		dial = p.c.cfg.DialContext
	}
	nc, err := dial(ctx, "tcp", p.addr)
	if err != nil {
		if p.slots != nil {
			<-p.slots
		}
		return nil, false, err
	}
	c = &conn{nc: nc, pool: p, maxHead: p.c.cfg.MaxHeaderBytes}
	if sc, ok := nc.(syscall.Conn); ok {
		c.raw, _ = sc.SyscallConn()
	}
	c.br = bufio.NewReaderSize(nc, 8<<10)
	c.bw = bufio.NewWriterSize(c, 8<<10)
	return c, false, nil
}

// takeIdle pops the most recently used idle connection and says how long
// it was idle, closing the ones idle for longer than IdleTimeout.
func (p *Pool) takeIdle() (*conn, time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.idle)
	if n == 0 {
		return nil, 0
	}
	c := p.idle[n-1]
	p.idle[n-1] = nil
	p.idle = p.idle[:n-1]
	idle := time.Since(c.idleAt)
	if idle > p.c.cfg.IdleTimeout {
		// The newest is too old: so are the others.
		for _, o := range p.idle {
			o.close()
		}
		clear(p.idle)
		p.idle = p.idle[:0]
		c.close()
		return nil, 0
	}
	return c, idle
}

func (p *Pool) put(c *conn) {
	c.wrote = false
	c.idleAt = time.Now()
	p.mu.Lock()
	if p.closed || len(p.idle) >= p.c.cfg.MaxIdlePerNode {
		p.mu.Unlock()
		c.close()
		return
	}
	p.idle = append(p.idle, c)
	p.mu.Unlock()
}

// sweep closes the connections idle since before cutoff.
func (p *Pool) sweep(cutoff time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := 0
	for i < len(p.idle) && p.idle[i].idleAt.Before(cutoff) {
		p.idle[i].close()
		i++
	}
	if i > 0 {
		n := copy(p.idle, p.idle[i:])
		clear(p.idle[n:])
		p.idle = p.idle[:n]
	}
}

// Idle is the number of idle connections.
func (p *Pool) Idle() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}

// Close closes the idle connections; connections in use are closed when
// their request ends. It implements io.Closer for balancer.Config.NewConns.
func (p *Pool) Close() error {
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, c := range idle {
		c.close()
	}
	p.c.forget(p)
	return nil
}
