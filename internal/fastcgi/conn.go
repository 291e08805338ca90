package fastcgi

import (
	"bufio"
	"net"
	"syscall"
	"time"
)

const (
	readBufSize    = 16 << 10
	initHeaderBuf  = 4 << 10
	maxHeaderBlock = 64 << 10
)

// conn is one connection to php-fpm. It carries one request at a time; its
// buffers are reused across requests.
type conn struct {
	nc net.Conn
	br *bufio.Reader
	// hbuf holds the CGI header block being parsed; it grows up to
	// maxHeaderBlock and keeps its capacity across requests.
	hbuf []byte

	reused    bool      // taken from the idle list rather than dialed
	idleSince time.Time // when it was last returned to the idle list

	abortFn func() // bound once: context.AfterFunc target

	// liveness probe state, bound once so checks do not allocate.
	raw       syscall.RawConn
	probeFn   func(fd uintptr) bool
	probeBuf  [1]byte
	probeLive bool
}

func newConn(nc net.Conn) *conn {
	c := &conn{nc: nc, br: bufio.NewReaderSize(nc, readBufSize)}
	c.abortFn = c.abort
	c.initProbe()
	return c
}

// abort unblocks any pending read or write; the connection is discarded after.
func (c *conn) abort() {
	if c.nc != nil {
		c.nc.SetDeadline(aLongTimeAgo)
	}
}

var aLongTimeAgo = time.Unix(1, 0)
