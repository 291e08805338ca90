package upstream

import (
	"context"
	"fmt"
	"net"
	"time"
)

// Config tunes a Client. Start from DefaultConfig.
type Config struct {
	// DialTimeout bounds a TCP connect to a node.
	DialTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for the response head once the
	// request (with its body) is written.
	ResponseHeaderTimeout time.Duration
	// IdleTimeout closes a pooled connection idle for longer; it stays below
	// the node's own idle timeout (75 s) so that the edge, not the node,
	// closes it, and a request never races the node's close.
	IdleTimeout time.Duration
	// MaxConnsPerNode bounds the connections open to one node (in use and
	// idle); a request beyond waits for one to come back. 0: no bound.
	MaxConnsPerNode int
	// MaxIdlePerNode bounds the idle connections kept per node.
	MaxIdlePerNode int
	// PeekAfter: a pooled connection idle for at least this long is peeked
	// at (one system call) before it is reused; one idle for less is reused
	// without the peek for a request that is safe to send again (GET, HEAD,
	// OPTIONS without a body), which a stale connection only costs a resend
	// on a new one. A request that is not safe to resend is always peeked
	// for. 0: always peek.
	PeekAfter time.Duration
	// MaxHeaderBytes bounds a response head, status line and fields, and
	// separately the trailer section of a chunked body.
	MaxHeaderBytes int
	// MaxInterim bounds the 1xx responses accepted before the final one.
	MaxInterim int
	// DialContext, when set, replaces the TCP dial (tests: in-memory pipes).
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
}

// DefaultConfig returns the values the edge used with net/http's
// Transport: 1 s dial, 130 s for the response head (PHP's own limits are
// shorter), 50 s idle, 256 idle connections per node; at most 1024
// connections per node; 64 KB heads like the edge's own server.
func DefaultConfig() Config {
	return Config{
		DialTimeout:           time.Second,
		ResponseHeaderTimeout: 130 * time.Second,
		IdleTimeout:           50 * time.Second,
		MaxConnsPerNode:       1024,
		MaxIdlePerNode:        256,
		PeekAfter:             time.Second,
		MaxHeaderBytes:        64 << 10,
		MaxInterim:            8,
	}
}

// Validate names the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.DialTimeout <= 0:
		return fmt.Errorf("upstream: config: DialTimeout: must be positive, got %s", c.DialTimeout)
	case c.ResponseHeaderTimeout <= 0:
		return fmt.Errorf("upstream: config: ResponseHeaderTimeout: must be positive, got %s", c.ResponseHeaderTimeout)
	case c.IdleTimeout <= 0:
		return fmt.Errorf("upstream: config: IdleTimeout: must be positive, got %s", c.IdleTimeout)
	case c.MaxConnsPerNode < 0:
		return fmt.Errorf("upstream: config: MaxConnsPerNode: must not be negative, got %d", c.MaxConnsPerNode)
	case c.MaxIdlePerNode < 0:
		return fmt.Errorf("upstream: config: MaxIdlePerNode: must not be negative, got %d", c.MaxIdlePerNode)
	case c.MaxConnsPerNode > 0 && c.MaxIdlePerNode > c.MaxConnsPerNode:
		return fmt.Errorf("upstream: config: MaxIdlePerNode: %d is more than MaxConnsPerNode %d", c.MaxIdlePerNode, c.MaxConnsPerNode)
	case c.PeekAfter < 0:
		return fmt.Errorf("upstream: config: PeekAfter: must not be negative, got %s", c.PeekAfter)
	case c.MaxHeaderBytes < 1024:
		return fmt.Errorf("upstream: config: MaxHeaderBytes: at least 1024, got %d", c.MaxHeaderBytes)
	case c.MaxInterim < 0:
		return fmt.Errorf("upstream: config: MaxInterim: must not be negative, got %d", c.MaxInterim)
	}
	return nil
}
