// Package fastcgi is a FastCGI client (responder role) for php-fpm, with a
// bounded pool of keep-alive connections.
package fastcgi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// maxAttempts bounds how often Do retries on a fresh connection after a
// kept-alive one turned out to be closed by php-fpm.
const maxAttempts = 3

// Client sends requests to one php-fpm pool. It is safe for concurrent use.
type Client struct {
	cfg    Config
	dialer net.Dialer

	// sem holds one token per request holding a connection, so at most
	// MaxConns requests are in flight. Idle connections hold no token; a
	// request dials only when no idle connection exists, which keeps
	// open connections <= MaxConns.
	sem  chan struct{}
	done chan struct{} // closed by Close

	mu     sync.Mutex
	idle   []*conn // LIFO; idle[0] is the oldest
	closed bool

	open, idleN, busy, waiting atomic.Int64

	janitor sync.WaitGroup
}

// Stats is a snapshot of the pool. Fields are read independently, so their
// sum may be momentarily inconsistent.
type Stats struct {
	Open    int // connections open (idle + busy)
	Idle    int // connections kept alive, unused
	Busy    int // connections carrying a request (or being dialed)
	Waiting int // Do calls blocked until a connection frees up
}

// New returns a Client for cfg; it dials lazily.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Client{
		cfg:    cfg,
		dialer: net.Dialer{Timeout: cfg.DialTimeout},
		sem:    make(chan struct{}, cfg.MaxConns),
		done:   make(chan struct{}),
		idle:   make([]*conn, 0, cfg.MaxIdle),
	}
	c.janitor.Add(1)
	go c.reapIdle()
	return c, nil
}

// Stats returns the pool counters.
func (c *Client) Stats() Stats {
	return Stats{
		Open:    int(c.open.Load()),
		Idle:    int(c.idleN.Load()),
		Busy:    int(c.busy.Load()),
		Waiting: int(c.waiting.Load()),
	}
}

// Close closes idle connections and makes further Do calls fail with
// ErrClosed. Connections carrying a request are closed when released.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	idle := c.idle
	c.idle = nil
	c.idleN.Store(0)
	close(c.done)
	c.mu.Unlock()
	for _, cn := range idle {
		cn.nc.Close()
		c.open.Add(-1)
	}
	c.janitor.Wait()
	return nil
}

// Do runs one request. params are the CGI params (SCRIPT_FILENAME,
// REQUEST_METHOD, CONTENT_LENGTH, ...); Do adds none. body is stdin and may
// be nil; PHP reads CONTENT_LENGTH bytes of it, so set that param when
// sending a body.
//
// Do returns once the CGI header block is parsed. The caller must read
// Response.Body to io.EOF or close it. When ctx ends before the response
// does, the connection is closed (php-fpm aborts the script) and ctx.Err()
// is returned, by Do or by Body.Read.
func (c *Client) Do(ctx context.Context, params map[string]string, body io.Reader) (*Response, error) {
	return c.do(ctx, params, nil, body)
}

func (c *Client) do(ctx context.Context, params map[string]string, hr *http.Request, body io.Reader) (*Response, error) {
	if body == http.NoBody {
		body = nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	bp := getBuf()
	defer putBuf(bp)
	buf, err := encodeRequest((*bp)[:0], params, hr, body == nil)
	*bp = buf
	if err != nil {
		return nil, err
	}
	var start time.Time
	if c.cfg.OnTiming != nil {
		start = time.Now()
	}
	if err := c.acquire(ctx); err != nil {
		return nil, err
	}
	var wait time.Duration
	if c.cfg.OnTiming != nil {
		wait = time.Since(start)
	}
	for attempt := 1; ; attempt++ {
		cn, err := c.getConn(ctx)
		if err != nil {
			c.releaseSlot()
			return nil, err
		}
		resp, retry, err := c.roundTrip(ctx, cn, bp, body)
		if err == nil {
			resp.Wait = wait
			return resp, nil
		}
		if !retry || attempt == maxAttempts {
			c.releaseSlot()
			return nil, err
		}
	}
}

// roundTrip sends the encoded request in *bp (and body) on cn and reads the
// response header block. On failure cn is discarded (the slot is kept) and
// retry reports whether the request provably never reached PHP on a
// connection php-fpm had already closed, so it may be sent again.
func (c *Client) roundTrip(ctx context.Context, cn *conn, bp *[]byte, body io.Reader) (*Response, bool, error) {
	var stop func() bool
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, cn.abortFn)
	}
	fail := func(err error, retry bool) (*Response, bool, error) {
		if stop != nil {
			stop()
		}
		c.discard(cn)
		if ctx.Err() != nil {
			return nil, false, ctx.Err()
		}
		return nil, retry && cn.reused && isConnLoss(err), err
	}
	if _, err := cn.nc.Write(*bp); err != nil {
		return fail(fmt.Errorf("fastcgi: write request: %w", err), true)
	}
	if body != nil {
		if err := writeStdin(cn.nc, (*bp)[:0], body); err != nil {
			if _, ok := err.(bodyError); !ok {
				err = fmt.Errorf("fastcgi: write request body: %w", err)
			}
			return fail(err, false)
		}
	}
	resp := &Response{}
	b := &resp.body
	b.c, b.cn, b.ctx, b.stop = c, cn, ctx, stop
	if err := b.readHeader(resp); err != nil {
		b.released = true
		return fail(err, body == nil && !b.sawBytes)
	}
	resp.Body = b
	return resp, false, nil
}

// isConnLoss reports errors meaning the peer had closed the connection.
func isConnLoss(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}

// acquire takes a request slot, waiting while MaxConns requests run.
func (c *Client) acquire(ctx context.Context) error {
	select {
	case c.sem <- struct{}{}:
		return nil
	default:
	}
	c.waiting.Add(1)
	defer c.waiting.Add(-1)
	select {
	case c.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.done:
		return ErrClosed
	}
}

func (c *Client) releaseSlot() { <-c.sem }

// getConn returns a live idle connection or dials one. The caller holds a slot.
func (c *Client) getConn(ctx context.Context) (*conn, error) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, ErrClosed
		}
		if n := len(c.idle); n > 0 {
			cn := c.idle[n-1]
			c.idle[n-1] = nil
			c.idle = c.idle[:n-1]
			c.idleN.Add(-1)
			c.busy.Add(1)
			c.mu.Unlock()
			if time.Since(cn.idleSince) > c.cfg.IdleTimeout || !cn.alive() {
				c.discard(cn)
				continue
			}
			cn.reused = true
			return cn, nil
		}
		c.open.Add(1)
		c.busy.Add(1)
		c.mu.Unlock()

		nc, err := c.dialer.DialContext(ctx, c.cfg.Network, c.cfg.Address)
		if err != nil {
			c.open.Add(-1)
			c.busy.Add(-1)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("fastcgi: dial %s %s: %w", c.cfg.Network, c.cfg.Address, err)
		}
		return newConn(nc), nil
	}
}

// discard closes a busy connection without releasing its slot.
func (c *Client) discard(cn *conn) {
	cn.nc.Close()
	c.open.Add(-1)
	c.busy.Add(-1)
}

// put releases a busy connection and its slot, keeping the connection idle
// when reusable and there is room.
func (c *Client) put(cn *conn, reusable bool) {
	if reusable {
		c.mu.Lock()
		if !c.closed && len(c.idle) < c.cfg.MaxIdle {
			cn.idleSince = time.Now()
			c.idle = append(c.idle, cn)
			c.idleN.Add(1)
			c.busy.Add(-1)
			c.mu.Unlock()
			c.releaseSlot()
			return
		}
		c.mu.Unlock()
	}
	c.discard(cn)
	c.releaseSlot()
}

// reapIdle closes connections idle for longer than IdleTimeout, so the
// php-fpm children they hold are freed.
func (c *Client) reapIdle() {
	defer c.janitor.Done()
	t := time.NewTicker(max(c.cfg.IdleTimeout/2, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		var expired []*conn
		c.mu.Lock()
		n := 0
		for n < len(c.idle) && time.Since(c.idle[n].idleSince) > c.cfg.IdleTimeout {
			n++
		}
		if n > 0 {
			expired = append(expired, c.idle[:n]...)
			m := copy(c.idle, c.idle[n:])
			clear(c.idle[m:])
			c.idle = c.idle[:m]
			c.idleN.Add(int64(-n))
		}
		c.mu.Unlock()
		for _, cn := range expired {
			cn.nc.Close()
			c.open.Add(-1)
		}
	}
}
