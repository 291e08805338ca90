package fastcgi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"strings"
	"sync"
	"time"
)

// maxStderr bounds the FCGI_STDERR bytes kept per response.
const maxStderr = 64 << 10

var errBodyClosed = errors.New("fastcgi: read on closed response body")

// Response is a FastCGI response whose CGI header block has been parsed.
// Body must be read to io.EOF or closed.
type Response struct {
	// Status comes from the "Status:" header; without it, 302 when there
	// is a Location header (the CGI rule), else 200.
	Status int
	// Header holds the CGI response headers except Status.
	Header http.Header
	// Body streams FCGI_STDOUT after the header block. Reading it to io.EOF
	// or closing it releases the connection: back to the pool when the
	// request ended cleanly (END_REQUEST seen), else closed. Body is not safe
	// for concurrent use.
	Body io.ReadCloser
	// Wait is how long the request waited for a free connection.
	Wait time.Duration

	body body
}

// Stderr returns a copy of what the script wrote to FCGI_STDERR so far,
// bounded to the first 64 KiB. It is complete once Body returned io.EOF.
// It is safe to call while another goroutine reads Body.
func (r *Response) Stderr() []byte {
	r.body.mu.Lock()
	defer r.body.mu.Unlock()
	return bytes.Clone(r.body.stderr)
}

// body reads the record stream of one request from its connection.
type body struct {
	c    *Client // nil when the connection is not pooled (tests)
	cn   *conn
	ctx  context.Context
	stop func() bool // stops the context watcher; nil when there is none

	pending    []byte // stdout bytes read past the header block
	stdoutLeft int    // content bytes left in the current STDOUT record
	padLeft    int    // padding left after the current record's content
	sawBytes   bool   // anything at all was received
	ended      bool   // END_REQUEST seen
	err        error  // sticky; io.EOF after a clean end
	released   bool

	mu     sync.Mutex
	stderr []byte
}

func (b *body) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if len(b.pending) > 0 {
		n := copy(p, b.pending)
		b.pending = b.pending[n:]
		return n, nil
	}
	if len(p) == 0 {
		return 0, nil
	}
	n, err := b.readStdout(p)
	if err != nil {
		b.err = err
		b.release(err == io.EOF)
	}
	return n, err
}

// Close releases the connection; see Response.Body.
func (b *body) Close() error {
	if !b.released {
		b.release(b.err == nil && (b.ended || b.drainBuffered()))
	}
	if b.err == nil {
		b.err = errBodyClosed
	}
	return nil
}

// drainBuffered consumes the rest of the response as far as it is already
// buffered, without waiting on the network, and reports whether that reached
// a clean END_REQUEST. It lets a caller that does not read a small body to
// the end still return the connection to the pool.
func (b *body) drainBuffered() bool {
	br := b.cn.br
	for !b.ended {
		if b.stdoutLeft > 0 {
			n, _ := br.Discard(min(b.stdoutLeft, br.Buffered()))
			b.stdoutLeft -= n
			if b.stdoutLeft > 0 {
				return false
			}
			continue
		}
		need := b.padLeft + headerLen
		if br.Buffered() < need {
			return false
		}
		hb, _ := br.Peek(need)
		h, _ := decodeHeader(hb[b.padLeft:])
		if h.Type != typeStdout && br.Buffered() < need+int(h.ContentLength)+int(h.PaddingLength) {
			return false
		}
		if err := b.next(); err != nil {
			return false
		}
	}
	return true
}

func (b *body) release(reusable bool) {
	if b.released {
		return
	}
	b.released = true
	b.pending = nil
	if b.stop != nil && !b.stop() {
		// The context fired: the connection's deadline is poisoned.
		reusable = false
	}
	if b.c != nil {
		b.c.put(b.cn, reusable)
	}
}

// ioErr maps a read failure, preferring the context's error.
func (b *body) ioErr(err error) error {
	if b.ctx != nil && b.ctx.Err() != nil {
		return b.ctx.Err()
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("fastcgi: read response: %w", err)
}

func protoErr(format string, args ...any) error {
	return fmt.Errorf("fastcgi: read response: "+format+": %w", append(args, ErrProtocol)...)
}

// readStdout reads STDOUT content, consuming other records on the way.
// It returns io.EOF after a clean END_REQUEST.
func (b *body) readStdout(p []byte) (int, error) {
	for b.stdoutLeft == 0 {
		if b.ended {
			return 0, io.EOF
		}
		if err := b.next(); err != nil {
			return 0, err
		}
	}
	if len(p) > b.stdoutLeft {
		p = p[:b.stdoutLeft]
	}
	n, err := b.cn.br.Read(p)
	b.stdoutLeft -= n
	if n > 0 {
		b.sawBytes = true
	}
	if err != nil {
		return n, b.ioErr(err)
	}
	return n, nil
}

// next reads one record header and handles everything but STDOUT content.
func (b *body) next() error {
	br := b.cn.br
	if b.padLeft > 0 {
		n, err := br.Discard(b.padLeft)
		b.padLeft -= n
		if err != nil {
			return b.ioErr(err)
		}
	}
	hb, err := br.Peek(headerLen)
	if len(hb) > 0 {
		b.sawBytes = true
	}
	if err != nil {
		return b.ioErr(err)
	}
	h, _ := decodeHeader(hb)
	br.Discard(headerLen)
	if h.Version != version1 {
		return protoErr("record version %d", h.Version)
	}
	if h.RequestID != requestID {
		return protoErr("record for request id %d", h.RequestID)
	}
	n := int(h.ContentLength)
	switch h.Type {
	case typeStdout:
		b.stdoutLeft = n
		b.padLeft = int(h.PaddingLength)
		return nil
	case typeStderr:
		b.padLeft = int(h.PaddingLength)
		return b.readStderr(n)
	case typeEndRequest:
		return b.endRequest(n, int(h.PaddingLength))
	default:
		return protoErr("unexpected record type %d", h.Type)
	}
}

func (b *body) readStderr(n int) error {
	br := b.cn.br
	for n > 0 {
		p, err := br.Peek(min(n, br.Size()))
		if len(p) > 0 {
			if room := maxStderr - len(b.stderr); room > 0 {
				b.mu.Lock()
				b.stderr = append(b.stderr, p[:min(room, len(p))]...)
				b.mu.Unlock()
			}
			br.Discard(len(p))
			n -= len(p)
		}
		if err != nil {
			return b.ioErr(err)
		}
	}
	return nil
}

func (b *body) endRequest(n, pad int) error {
	if n != 8 {
		return protoErr("END_REQUEST with %d content bytes", n)
	}
	p, err := b.cn.br.Peek(n + pad)
	if err != nil {
		return b.ioErr(err)
	}
	status := p[4]
	b.cn.br.Discard(n + pad)
	b.ended = true
	switch status {
	case statusRequestComplete:
		return nil
	case statusCantMpxConn:
		return fmt.Errorf("fastcgi: end request: %w", ErrCantMpxConn)
	case statusOverloaded:
		return fmt.Errorf("fastcgi: end request: %w", ErrOverloaded)
	case statusUnknownRole:
		return fmt.Errorf("fastcgi: end request: %w", ErrUnknownRole)
	default:
		return protoErr("END_REQUEST protocol status %d", status)
	}
}

var errHeaderUnterminated = errors.New("fastcgi: malformed response: stdout ended inside the header block")

// readHeader reads STDOUT until the end of the CGI header block, parses it
// into r, and keeps the bytes read past it as pending body.
func (b *body) readHeader(r *Response) error {
	hb := b.cn.hbuf[:0]
	if cap(hb) == 0 {
		hb = make([]byte, 0, initHeaderBuf)
		b.cn.hbuf = hb
	}
	from := 0
	for {
		if len(hb) == cap(hb) {
			if cap(hb) >= maxHeaderBlock {
				return ErrHeaderTooLarge
			}
			nb := make([]byte, len(hb), min(2*cap(hb), maxHeaderBlock))
			copy(nb, hb)
			hb = nb
			b.cn.hbuf = nb[:0]
		}
		n, err := b.readStdout(hb[len(hb):cap(hb)])
		hb = hb[:len(hb)+n]
		if end := headerEnd(hb, from); end >= 0 {
			status, h, perr := parseHeader(hb[:end])
			if perr != nil {
				return perr
			}
			r.Status, r.Header = status, h
			b.pending = hb[end:]
			return nil
		}
		from = max(0, len(hb)-3)
		if err == io.EOF {
			return errHeaderUnterminated
		}
		if err != nil {
			return err
		}
	}
}

// headerEnd returns the offset just past the blank line that ends the header
// block in b, or -1. Lines end in "\n" or "\r\n". Scanning starts at from,
// which must not be past the start of an unfinished terminator.
func headerEnd(b []byte, from int) int {
	if from == 0 {
		if len(b) >= 1 && b[0] == '\n' {
			return 1
		}
		if len(b) >= 2 && b[0] == '\r' && b[1] == '\n' {
			return 2
		}
	}
	for i := from; i < len(b); {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		i += j
		if i+1 < len(b) && b[i+1] == '\n' {
			return i + 2
		}
		if i+2 < len(b) && b[i+1] == '\r' && b[i+2] == '\n' {
			return i + 3
		}
		i++
	}
	return -1
}

// parseHeader parses a header block that ends with its blank line.
func parseHeader(block []byte) (int, http.Header, error) {
	s := string(block) // one allocation; names and values are substrings
	n := strings.Count(s, "\n")
	h := make(http.Header, n)
	vals := make([]string, n) // backing store for single-value headers
	status := 0
	for len(s) > 0 {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			i = len(s)
		}
		line := s[:i]
		s = s[min(i+1, len(s)):]
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			break
		}
		colon := strings.IndexByte(line, ':')
		if colon <= 0 || !validName(line[:colon]) {
			return 0, nil, fmt.Errorf("fastcgi: malformed response header line %q", truncate(line))
		}
		value := strings.Trim(line[colon+1:], " \t")
		if !validValue(value) {
			return 0, nil, fmt.Errorf("fastcgi: malformed response header line %q", truncate(line))
		}
		key := textproto.CanonicalMIMEHeaderKey(line[:colon])
		if key == "Status" {
			if status == 0 {
				code, err := parseStatus(value)
				if err != nil {
					return 0, nil, err
				}
				status = code
			}
			continue
		}
		if vv, ok := h[key]; ok {
			h[key] = append(vv, value)
			continue
		}
		vv := vals[:1:1]
		vals = vals[1:]
		vv[0] = value
		h[key] = vv
	}
	if status == 0 {
		status = http.StatusOK
		if _, ok := h["Location"]; ok {
			status = http.StatusFound
		}
	}
	return status, h, nil
}

// parseStatus parses "404" or "404 Not Found".
func parseStatus(v string) (int, error) {
	if len(v) < 3 || (len(v) > 3 && v[3] != ' ') {
		return 0, fmt.Errorf("fastcgi: malformed Status header %q", truncate(v))
	}
	code := 0
	for i := range 3 {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("fastcgi: malformed Status header %q", truncate(v))
		}
		code = code*10 + int(c-'0')
	}
	if code < 100 {
		return 0, fmt.Errorf("fastcgi: malformed Status header %q", truncate(v))
	}
	return code, nil
}

func validName(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isTokenChar(s[i]) {
			return false
		}
	}
	return true
}

func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func validValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
