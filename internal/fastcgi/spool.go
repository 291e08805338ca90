package fastcgi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"
)

// A request body is read whole before Forward takes a connection: every
// connection holds a php-fpm child, and a client that sends its body slowly
// (or never finishes it) would otherwise hold that child as long as it likes.
// Bodies up to Config.BodyMemory stay in memory, larger ones go to an
// unlinked temp file in Config.BodyDir, up to Config.MaxBody.

var memBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// spooled is a request body read whole.
type spooled struct {
	mem  *bytes.Buffer // nil once the body went to file
	file *os.File
	n    int64
}

func (s *spooled) reader() io.Reader {
	if s.file != nil {
		return s.file
	}
	return bytes.NewReader(s.mem.Bytes())
}

// close frees the memory or the temp file (already unlinked: only the
// descriptor holds it).
func (s *spooled) close() {
	if s.file != nil {
		s.file.Close()
	}
	if s.mem != nil && s.mem.Cap() <= 2*maxMemBody {
		s.mem.Reset()
		memBufs.Put(s.mem)
	}
}

// maxMemBody bounds Config.BodyMemory, so pooled buffers stay small.
const maxMemBody = 1 << 20

// spool reads r's body whole, each read bounded by c.cfg.BodyTimeout (the
// read deadline of w's connection, where w supports it). Errors:
// ErrBodyTooLarge, ErrBodyTimeout, or a read error wrapped in ErrBodyRead;
// the caller's answer to them must carry "Connection: close", or net/http
// waits to discard the rest of the body.
func (c *Client) spool(w http.ResponseWriter, r *http.Request) (*spooled, error) {
	if r.ContentLength > c.cfg.MaxBody {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrBodyTooLarge, r.ContentLength, c.cfg.MaxBody)
	}
	rc := http.NewResponseController(w)
	deadlines := true
	s := &spooled{mem: memBufs.Get().(*bytes.Buffer)}
	bp := getBuf()
	defer putBuf(bp)
	chunk := (*bp)[:cap(*bp)]
	for {
		if deadlines && c.cfg.BodyTimeout > 0 {
			if err := rc.SetReadDeadline(time.Now().Add(c.cfg.BodyTimeout)); err != nil {
				deadlines = false // not a network connection (tests, wrappers without Unwrap)
			}
		}
		n, err := r.Body.Read(chunk)
		if n > 0 {
			if s.n+int64(n) > c.cfg.MaxBody {
				s.close()
				return nil, fmt.Errorf("%w: more than %d bytes", ErrBodyTooLarge, c.cfg.MaxBody)
			}
			if werr := s.write(chunk[:n], c.cfg.BodyMemory, c.cfg.BodyDir); werr != nil {
				s.close()
				return nil, werr
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			s.close()
			var mbe *http.MaxBytesError
			switch {
			case errors.Is(err, os.ErrDeadlineExceeded):
				return nil, fmt.Errorf("%w: no body bytes for %s", ErrBodyTimeout, c.cfg.BodyTimeout)
			case errors.As(err, &mbe):
				return nil, fmt.Errorf("%w: more than %d bytes", ErrBodyTooLarge, mbe.Limit)
			}
			return nil, fmt.Errorf("%w: %w", ErrBodyRead, err)
		}
	}
	if deadlines {
		// The body is read; waiting for PHP is not the client's delay. (On
		// an error the deadline stays: the caller answers with
		// Connection: close, and nothing more is read.)
		rc.SetReadDeadline(time.Time{})
	}
	if s.file != nil {
		if _, err := s.file.Seek(0, io.SeekStart); err != nil {
			s.close()
			return nil, fmt.Errorf("fastcgi: request body file: %w", err)
		}
	}
	return s, nil
}

// write appends p, moving the body to a temp file once it outgrows memLimit.
func (s *spooled) write(p []byte, memLimit int, dir string) error {
	s.n += int64(len(p))
	if s.file == nil && s.mem.Len()+len(p) <= memLimit {
		s.mem.Write(p)
		return nil
	}
	if s.file == nil {
		f, err := os.CreateTemp(dir, "body-*") // 0600
		if err != nil {
			return fmt.Errorf("fastcgi: request body file: %w", err)
		}
		os.Remove(f.Name()) // unlinked now: nothing is left behind, whatever happens
		s.file = f
		if _, err := f.Write(s.mem.Bytes()); err != nil {
			return fmt.Errorf("fastcgi: request body file: %w", err)
		}
		s.mem.Reset()
		memBufs.Put(s.mem)
		s.mem = nil
	}
	if _, err := s.file.Write(p); err != nil {
		return fmt.Errorf("fastcgi: request body file: %w", err)
	}
	return nil
}
