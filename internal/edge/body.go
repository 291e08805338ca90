package edge

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"sync/atomic"
	"time"
)

// bodyLimit bounds a client's request body as the edge streams it to a
// node: each read waits at most timeout for bytes (the connection's read
// deadline, moved on as data arrives, like nginx's client_body_timeout),
// and at most max bytes pass. The transport reads it on its own goroutine,
// so what went wrong is kept in atomics for the handler to answer with.
type bodyLimit struct {
	body    io.ReadCloser
	rc      *http.ResponseController
	timeout time.Duration
	left    int64

	timedOut, tooLarge atomic.Bool
	noDeadline         bool
	pending            []byte // read ahead by peek, not yet passed on
}

// peek reads up to n bytes of the body ahead (within the same limits) and
// keeps them to be read again, so that the edge can look at the start of a
// body it still streams whole to a node. truncated reports that the body
// goes on beyond n.
func (b *bodyLimit) peek(n int) (prefix []byte, truncated bool, err error) {
	// The buffer grows as bytes arrive: a connection that announces a
	// body and sends none holds no prefix-sized buffer.
	var buf bytes.Buffer
	_, err = buf.ReadFrom(io.LimitReader(b, int64(n)+1))
	b.pending = buf.Bytes()
	got := len(b.pending)
	return b.pending[:min(got, n)], got > n, err
}

func (b *bodyLimit) Read(p []byte) (int, error) {
	if len(b.pending) > 0 {
		n := copy(p, b.pending)
		b.pending = b.pending[n:]
		return n, nil
	}
	if b.left <= 0 {
		// One byte more than allowed tells a body at the limit from one over it.
		var one [1]byte
		if n, err := b.read(one[:]); n > 0 {
			b.tooLarge.Store(true)
			return 0, errBodyTooLarge
		} else if err != nil {
			return 0, err
		}
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.read(p)
	b.left -= int64(n)
	return n, err
}

func (b *bodyLimit) read(p []byte) (int, error) {
	if !b.noDeadline && b.timeout > 0 {
		if b.rc.SetReadDeadline(time.Now().Add(b.timeout)) != nil {
			b.noDeadline = true
		}
	}
	n, err := b.body.Read(p)
	switch {
	case err == io.EOF:
		if !b.noDeadline {
			// The body is in. A deadline left behind would end the
			// connection's background read, and with it the request, while
			// the node works.
			b.rc.SetReadDeadline(time.Time{})
		}
	case errors.Is(err, os.ErrDeadlineExceeded):
		b.timedOut.Store(true)
	}
	return n, err
}

func (b *bodyLimit) Close() error { return b.body.Close() }

var errBodyTooLarge = errors.New("request body too large")
