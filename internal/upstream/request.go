package upstream

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// ErrInvalidRequest: the request holds something that cannot be written
// unambiguously (a control character in a field or the target, a field
// name that is not a token). Nothing was sent.
var ErrInvalidRequest = errors.New("request cannot be framed unambiguously")

// notForwarded reports the fields the request writer frames itself or
// that belong to one connection (RFC 9110 §7.6.1); the caller's values are
// never copied. Expect is answered by the edge's own server. Names are
// canonical (http.Header's keys); a switch, not a map: no hash per field.
func notForwarded(k string) bool {
	switch k {
	case "Host", "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive",
		"Proxy-Connection", "Te", "Trailer", "Upgrade", "Expect":
		return true
	}
	return false
}

// checkRequest reports ErrInvalidRequest for anything writeHead would
// have to write ambiguously.
func checkRequest(req *http.Request, target, host string) error {
	if req.Method == "" || !isToken(req.Method) {
		return fmt.Errorf("method %q: %w", req.Method, ErrInvalidRequest)
	}
	if target == "" || !visible(target) {
		return fmt.Errorf("request target %q: %w", target, ErrInvalidRequest)
	}
	if host == "" || !visible(host) {
		return fmt.Errorf("host %q: %w", host, ErrInvalidRequest)
	}
	for k, vv := range req.Header {
		if !isToken(k) {
			return fmt.Errorf("field name %q: %w", k, ErrInvalidRequest)
		}
		for _, v := range vv {
			if !fieldValue(v) {
				return fmt.Errorf("field %s: %w", k, ErrInvalidRequest)
			}
		}
	}
	return nil
}

// writeHead writes the request line and fields; the framing fields are
// this writer's own: Content-Length when the body's length is known,
// chunked when it is not, nothing without a body (Content-Length: 0 for
// the methods that normally carry one).
func writeHead(bw *bufio.Writer, req *http.Request, target, host string, chunked bool) {
	bw.WriteString(req.Method)
	bw.WriteByte(' ')
	bw.WriteString(target)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(host)
	bw.WriteString("\r\n")
	for k, vv := range req.Header {
		if notForwarded(k) {
			continue
		}
		for _, v := range vv {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	switch {
	case chunked:
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	case req.ContentLength > 0:
		var num [20]byte
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(num[:0], req.ContentLength, 10))
		bw.WriteString("\r\n")
	case req.Method == http.MethodPost || req.Method == http.MethodPut || req.Method == http.MethodPatch:
		bw.WriteString("Content-Length: 0\r\n")
	}
	bw.WriteString("\r\n")
}

// errShortBody: the request body ended before its Content-Length.
var errShortBody = errors.New("request body shorter than its Content-Length")

// writeBody streams exactly n bytes of body (n ≥ 0), or, with n < 0, the
// whole body in chunks. buf is the copy buffer. An error reading body is
// returned wrapped in a bodyError, so the caller can tell it from the node's.
func writeBody(bw *bufio.Writer, body io.Reader, n int64, buf []byte) error {
	chunked := n < 0
	for n != 0 {
		p := buf
		if !chunked && int64(len(p)) > n {
			p = p[:n]
		}
		m, rerr := body.Read(p)
		if m > 0 {
			if chunked {
				var num [16]byte
				bw.Write(strconv.AppendInt(num[:0], int64(m), 16))
				bw.WriteString("\r\n")
			}
			if _, err := bw.Write(p[:m]); err != nil {
				return err
			}
			if chunked {
				bw.WriteString("\r\n")
			} else {
				n -= int64(m)
			}
		}
		switch {
		case rerr == io.EOF && chunked:
			_, err := bw.WriteString("0\r\n\r\n")
			return err
		case rerr == io.EOF && n > 0:
			return bodyError{errShortBody}
		case rerr == io.EOF:
			return nil
		case rerr != nil:
			return bodyError{rerr}
		}
	}
	return nil
}

// bodyError is a failure to read the caller's request body.
type bodyError struct{ err error }

func (e bodyError) Error() string { return "reading the request body: " + e.err.Error() }
func (e bodyError) Unwrap() error { return e.err }

func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isTokenChar(s[i]) {
			return false
		}
	}
	return s != ""
}

// visible: no space, no control (request target, Host).
func visible(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// fieldValue: no control but HTAB (RFC 9110 §5.5).
func fieldValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
