package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// Client sends the edge's requests to nodes. Its methods are safe for
// concurrent use; Run must be running for idle connections to be closed
// when no request comes.
type Client struct {
	cfg    Config
	dialer net.Dialer

	mu    sync.Mutex
	pools map[*Pool]struct{}
}

// New returns a Client. It logs nothing: every failure goes to the caller.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Client{
		cfg:    cfg,
		dialer: net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second},
		pools:  make(map[*Pool]struct{}),
	}, nil
}

// NewPool returns the pool of connections to the node at addr (host:port).
func (c *Client) NewPool(addr string) *Pool {
	p := &Pool{addr: addr, c: c}
	if c.cfg.MaxConnsPerNode > 0 {
		p.slots = make(chan struct{}, c.cfg.MaxConnsPerNode)
	}
	c.mu.Lock()
	c.pools[p] = struct{}{}
	c.mu.Unlock()
	return p
}

func (c *Client) forget(p *Pool) {
	c.mu.Lock()
	delete(c.pools, p)
	c.mu.Unlock()
}

// Run closes connections idle for longer than IdleTimeout until ctx ends,
// then closes every idle connection.
func (c *Client) Run(ctx context.Context) error {
	t := time.NewTicker(c.cfg.IdleTimeout / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			c.sweep(time.Now().Add(time.Hour))
			return nil
		case now := <-t.C:
			c.sweep(now.Add(-c.cfg.IdleTimeout))
		}
	}
}

func (c *Client) sweep(cutoff time.Time) {
	c.mu.Lock()
	pools := make([]*Pool, 0, len(c.pools))
	for p := range c.pools {
		pools = append(pools, p)
	}
	c.mu.Unlock()
	for _, p := range pools {
		p.sweep(cutoff)
	}
}

// Error is a round trip that failed. Written reports whether a byte of the
// request may have reached the node (false: safe to send again, whatever
// the method); GotResponse whether a byte of the response arrived.
type Error struct {
	Op          string // "dial", "write", "read"
	Written     bool
	GotResponse bool
	Err         error
}

func (e *Error) Error() string { return "upstream " + e.Op + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Interim receives a 1xx response (other than 100 Continue) before the
// final one. The header is the interim response's own.
type Interim func(code int, header http.Header)

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

// Do sends req to the node of p and returns the response, whose Body the
// caller must read to its end or close. It uses req's Method, URL
// (RequestURI), Host (or URL.Host), Header, Body and ContentLength (> 0:
// that many bytes are sent; < 0: chunked; 0: no body). A request on a
// reused connection that the node closed before answering is sent again on
// a new connection when that is safe: nothing was written, or the request
// is a GET, HEAD or OPTIONS without a body.
func (c *Client) Do(ctx context.Context, p *Pool, req *http.Request, interim Interim) (*http.Response, error) {
	return c.DoWatched(ctx, p, req, interim, nil)
}

// DoWatched is Do with a Watch (nil: none) that may cut the round trip
// short before the answer head: it then fails with the Watch's cause
// (an *Error whose Err is it), and is not sent again here.
func (c *Client) DoWatched(ctx context.Context, p *Pool, req *http.Request, interim Interim, w *Watch) (*http.Response, error) {
	target := req.URL.RequestURI()
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	if err := checkRequest(req, target, host); err != nil {
		return nil, &Error{Op: "write", Err: err}
	}
	resendable := req.Body == nil && idempotent(req.Method)
	for attempt := 0; ; attempt++ {
		cn, reused, err := p.get(ctx, resendable && attempt == 0)
		if err != nil {
			return nil, &Error{Op: "dial", Err: err}
		}
		if cause := w.attach(cn.nc); cause != nil {
			cn.release(true) // nothing was written on it
			return nil, &Error{Op: "dial", Err: cause}
		}
		resp, err := c.roundTrip(ctx, cn, req, target, host, interim, w)
		if err == nil {
			return resp, nil
		}
		var ue *Error
		errors.As(err, &ue)
		if cause := w.detach(); cause != nil {
			return nil, &Error{Op: ue.Op, Written: ue.Written, GotResponse: ue.GotResponse, Err: cause}
		}
		// A node that closed an idle connection under us fails the write or
		// the first read at once; a head that did not come within
		// ResponseHeaderTimeout is a slow node, not a stale connection, and
		// sending it again would make the client wait twice as long.
		if attempt == 0 && reused && ctx.Err() == nil && !ue.GotResponse && !errors.As(err, new(bodyError)) &&
			!errors.Is(err, os.ErrDeadlineExceeded) &&
			(!ue.Written || resendable) {
			continue // the node closed an idle connection under us
		}
		if ctx.Err() != nil {
			ue.Err = fmt.Errorf("%w (%w)", ctx.Err(), ue.Err)
		}
		return nil, ue
	}
}

func idempotent(method string) bool {
	return method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions
}

// aLongTimeAgo is a deadline in the past: it wakes every blocked read and
// write on the connection.
var aLongTimeAgo = time.Unix(1, 0)

// answer is the storage of one response: most heads have fewer than 16
// fields.
type answer struct {
	resp   http.Response
	body   body
	values [16]string
}

func (c *Client) roundTrip(ctx context.Context, cn *conn, req *http.Request, target, host string, interim Interim, w *Watch) (*http.Response, error) {
	if ctx.Done() != nil {
		nc := cn.nc
		cn.stop = context.AfterFunc(ctx, func() { nc.SetDeadline(aLongTimeAgo) })
	}
	fail := func(op string, got bool, err error) (*http.Response, error) {
		written := cn.wrote
		cn.release(false)
		return nil, &Error{Op: op, Written: written, GotResponse: got, Err: err}
	}
	chunked := req.Body != nil && req.ContentLength < 0
	writeHead(cn.bw, req, target, host, chunked)
	var writeErr error
	if req.Body != nil && req.ContentLength != 0 {
		bp := copyBufs.Get().(*[]byte)
		writeErr = writeBody(cn.bw, req.Body, req.ContentLength, *bp)
		copyBufs.Put(bp)
		if writeErr != nil && (errors.As(writeErr, new(bodyError)) || ctx.Err() != nil) {
			return fail("write", false, writeErr) // the client's side failed
		}
	}
	if writeErr == nil {
		writeErr = cn.bw.Flush()
	}
	// A node may answer before it read the whole body (413, a saturation
	// 503) and close: its answer is read all the same, and the connection
	// closed after it.
	cn.headDeadline(c.cfg.ResponseHeaderTimeout)
	failRead := func(got bool, err error) (*http.Response, error) {
		if writeErr != nil {
			return fail("write", got, writeErr)
		}
		return fail("read", got, err)
	}
	// The final response, its body and the values of its fields in one
	// allocation; an interim response (rare) gets its own, so that the
	// header the Interim callback saw is never overwritten.
	a := new(answer)
	var resp *http.Response
	var fr framing
	for n := 0; ; n++ {
		head, err := readHead(cn.br, cn.head, cn.maxHead)
		cn.head = head[:0]
		if err != nil {
			return failRead(len(head) > 0, err)
		}
		if n == 0 {
			resp, fr, err = parseHead(string(head), req.Method, &a.resp, a.values[:0])
		} else {
			a = new(answer)
			resp, fr, err = parseHead(string(head), req.Method, &a.resp, nil)
		}
		if err != nil {
			return failRead(true, err)
		}
		if resp.StatusCode >= 200 {
			break
		}
		switch {
		case resp.StatusCode == http.StatusSwitchingProtocols:
			return failRead(true, ErrUpgrade)
		case n >= c.cfg.MaxInterim:
			return failRead(true, ErrTooManyInterim)
		case resp.StatusCode != http.StatusContinue && interim != nil:
			interim(resp.StatusCode, resp.Header)
		}
	}
	if writeErr != nil {
		fr.close, resp.Close = true, true
	}
	if cause := w.headIn(); cause != nil {
		return fail("read", true, cause) // the cut fell as the head came: dropped
	}
	// The body has no deadline but the request's context: the head's
	// goes, unless the body is all in the buffer already (no read of the
	// socket until the next request's head, which wants one again).
	inBuffer := !fr.chunked && fr.length >= 0 && int64(cn.br.Buffered()) >= fr.length
	if !inBuffer && !cn.deadline.IsZero() {
		cn.nc.SetReadDeadline(time.Time{})
		cn.deadline = time.Time{}
	}
	if ctx.Err() != nil {
		return fail("read", true, ctx.Err())
	}
	b := &a.body
	*b = body{cn: cn, fr: fr, left: fr.length}
	if fr.chunked {
		b.left = 0
	}
	resp.Body = b
	if !fr.chunked && fr.length == 0 {
		b.finish(io.EOF) // nothing to read: the connection is free now
	}
	resp.Request = req
	return resp, nil
}
