package fastcgi

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

// fakeServer is a minimal FastCGI responder on a unix socket. It decodes
// requests with this package's own decoder, checks them the way php-fpm does
// (every PARAMS record decodes on its own; content+padding <= 65535), and
// lets a handler script the answer record by record.
type fakeServer struct {
	tb       testing.TB
	ln       net.Listener
	path     string
	handle   func(*fakeRequest, *fakeResponder)
	accepted atomic.Int64

	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	errs  []error // request decoding errors other than a clean EOF
}

func newFakeServer(tb testing.TB, handle func(*fakeRequest, *fakeResponder)) *fakeServer {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "fpm.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	s := &fakeServer{tb: tb, ln: ln, path: path, handle: handle, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.serve()
	tb.Cleanup(s.close)
	return s
}

// client returns a Client for s with cfg's pool settings.
func (s *fakeServer) client(cfg Config) *Client {
	s.tb.Helper()
	cfg.Network, cfg.Address = "unix", s.path
	c, err := New(cfg)
	if err != nil {
		s.tb.Fatalf("New: %v", err)
	}
	s.tb.Cleanup(func() { c.Close() })
	return c
}

func (s *fakeServer) serve() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.accepted.Add(1)
		s.mu.Lock()
		s.conns[nc] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go s.serveConn(nc)
	}
}

func (s *fakeServer) close() {
	s.ln.Close()
	s.mu.Lock()
	for nc := range s.conns {
		nc.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *fakeServer) decodeErrors() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.errs...)
}

func (s *fakeServer) serveConn(nc net.Conn) {
	defer s.wg.Done()
	defer func() {
		nc.Close()
		s.mu.Lock()
		delete(s.conns, nc)
		s.mu.Unlock()
	}()
	br := bufio.NewReader(nc)
	req := &fakeRequest{conn: nc}
	w := &fakeResponder{nc: nc}
	for seq := 1; ; seq++ {
		if err := req.read(br); err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				s.mu.Lock()
				s.errs = append(s.errs, err)
				s.mu.Unlock()
			}
			return
		}
		req.seq = seq
		w.buf, w.closed = w.buf[:0], false
		s.handle(req, w)
		if w.closed {
			return
		}
		if err := w.flush(); err != nil || !req.keep {
			return
		}
	}
}

// fakeRequest is one decoded request. Its buffers are reused per connection.
type fakeRequest struct {
	conn      net.Conn
	seq       int // 1-based request number on this connection
	role      uint16
	keep      bool
	paramRecs []header
	rawParams []byte
	stdinRecs []header
	stdin     []byte
	scratch   []byte
}

// Params decodes the PARAMS stream; read already validated every record.
func (q *fakeRequest) Params() map[string]string {
	m, _ := decodeParams(q.rawParams)
	return m
}

func (q *fakeRequest) read(br *bufio.Reader) error {
	q.paramRecs, q.rawParams = q.paramRecs[:0], q.rawParams[:0]
	q.stdinRecs, q.stdin = q.stdinRecs[:0], q.stdin[:0]

	h, content, err := q.record(br)
	if err != nil {
		return err
	}
	if h.Type != typeBeginRequest || len(content) != 8 {
		return fmt.Errorf("want BEGIN_REQUEST, got type %d len %d", h.Type, len(content))
	}
	q.role = binary.BigEndian.Uint16(content)
	q.keep = content[2]&flagKeepConn != 0
	for {
		h, content, err := q.record(br)
		if err != nil {
			return err
		}
		if h.Type != typeParams {
			return fmt.Errorf("want PARAMS, got type %d", h.Type)
		}
		if len(content) == 0 {
			break
		}
		for rest := content; len(rest) > 0; {
			if _, _, rest, err = readPair(rest); err != nil {
				return fmt.Errorf("PARAMS record does not decode on its own: %w", err)
			}
		}
		q.paramRecs = append(q.paramRecs, h)
		q.rawParams = append(q.rawParams, content...)
	}
	for {
		h, content, err := q.record(br)
		if err != nil {
			return err
		}
		if h.Type != typeStdin {
			return fmt.Errorf("want STDIN, got type %d", h.Type)
		}
		if len(content) == 0 {
			return nil
		}
		q.stdinRecs = append(q.stdinRecs, h)
		q.stdin = append(q.stdin, content...)
	}
}

func (q *fakeRequest) record(br *bufio.Reader) (header, []byte, error) {
	hb, err := br.Peek(headerLen)
	if err != nil {
		if len(hb) > 0 && err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return header{}, nil, err
	}
	h, err := decodeHeader(hb)
	if err != nil {
		return header{}, nil, err
	}
	br.Discard(headerLen)
	if h.Version != version1 || h.RequestID != requestID {
		return h, nil, fmt.Errorf("bad version %d or request id %d", h.Version, h.RequestID)
	}
	n, p := int(h.ContentLength), int(h.PaddingLength)
	if n+p > maxContentLen {
		return h, nil, fmt.Errorf("content %d + padding %d > 65535", n, p)
	}
	if cap(q.scratch) < n+p {
		q.scratch = make([]byte, n+p)
	}
	buf := q.scratch[:n+p]
	if _, err := io.ReadFull(br, buf); err != nil {
		return h, nil, err
	}
	return h, buf[:n], nil
}

// fakeResponder buffers records until the handler returns (or flushes).
type fakeResponder struct {
	nc     net.Conn
	buf    []byte
	closed bool
}

func (w *fakeResponder) record(t recType, id uint16, content []byte) {
	w.buf = appendRecord(w.buf, t, id, content)
}

// stream writes s as records of type t with at most chunk content bytes.
func (w *fakeResponder) stream(t recType, s string, chunk int) {
	for len(s) > 0 {
		n := min(len(s), chunk)
		w.record(t, requestID, []byte(s[:n]))
		s = s[n:]
	}
}

func (w *fakeResponder) stdout(s string) { w.stream(typeStdout, s, maxContentLen) }
func (w *fakeResponder) stderr(s string) { w.stream(typeStderr, s, maxContentLen) }

func (w *fakeResponder) end(appStatus uint32, protoStatus uint8) {
	var b [8]byte
	binary.BigEndian.PutUint32(b[:], appStatus)
	b[4] = protoStatus
	w.record(typeEndRequest, requestID, b[:])
}

// respond sends a complete, clean response.
func (w *fakeResponder) respond(stdout string) {
	w.stdout(stdout)
	w.record(typeStdout, requestID, nil)
	w.end(0, statusRequestComplete)
}

func (w *fakeResponder) raw(b []byte) { w.buf = append(w.buf, b...) }

func (w *fakeResponder) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	_, err := w.nc.Write(w.buf)
	w.buf = w.buf[:0]
	return err
}

// closeConn flushes what was buffered and closes the connection.
func (w *fakeResponder) closeConn() {
	w.flush()
	w.nc.Close()
	w.closed = true
}
