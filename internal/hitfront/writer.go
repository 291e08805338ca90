package hitfront

import (
	"bytes"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// responseWriter renders one response onto the connection: the status
// line and header into a buffer, sent with the first body write in one
// writev (net.Buffers), or alone at finish. It frames by Content-Length
// only; a response whose body does not match it ends the connection.
type responseWriter struct {
	conn net.Conn
	h    http.Header
	buf  bytes.Buffer
	head bool // a HEAD request: no body is sent

	status      int
	wroteHeader bool // WriteHeader called
	sent        bool // status line and header are on the wire
	declared    int64
	written     int64
	err         error // a failed write: the connection ends

	iov [8][]byte // the pieces of one writev

	served *atomic.Int64 // counted before the response goes out
}

var _ http.ResponseWriter = (*responseWriter)(nil)

func (w *responseWriter) reset(head bool) {
	clear(w.h)
	w.head = head
	w.status, w.wroteHeader, w.sent = 0, false, false
	w.declared, w.written = -1, 0
}

func (w *responseWriter) Header() http.Header { return w.h }

func (w *responseWriter) WriteHeader(code int) {
	if w.wroteHeader || code < 200 || code > 999 {
		return // 1xx never comes from a cache hit; net/http would panic on <100
	}
	w.status, w.wroteHeader = code, true
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.head || !bodyAllowed(w.status) {
		return len(p), nil // as net/http: dropped, reported written
	}
	if !w.sent {
		w.render(p)
		w.iov[0], w.iov[1] = w.buf.Bytes(), p
		w.sent, w.err = true, w.writev(2)
	} else {
		_, w.err = w.conn.Write(p)
	}
	if w.err != nil {
		return 0, w.err
	}
	w.written += int64(len(p))
	return len(p), nil
}

// writev sends the first n pieces of iov in one system call (on a TCP
// connection), and drops the references.
func (w *responseWriter) writev(n int) error {
	bufs := net.Buffers(w.iov[:n])
	_, err := bufs.WriteTo(w.conn)
	clear(w.iov[:n])
	return err
}

// statusLines are the status lines WriteBlock sends most.
var statusOK = []byte("HTTP/1.1 200 OK\r\n")

// WriteBlock sends a response whose header fields come rendered
// (pagecache.HeaderBlockWriter): status line, Date, the lines, the empty
// line and body, in one writev. The lines carry Content-Length.
func (w *responseWriter) WriteBlock(status int, needDate bool, fields, xcache, age, body []byte) {
	if w.err != nil || w.wroteHeader {
		return
	}
	w.served.Add(1)
	w.status, w.wroteHeader, w.sent = status, true, true
	n := 0
	if status == http.StatusOK {
		w.iov[n] = statusOK
	} else {
		w.buf.Reset()
		w.buf.WriteString("HTTP/1.1 ")
		w.buf.Write(strconv.AppendInt(w.buf.AvailableBuffer(), int64(status), 10))
		w.buf.WriteByte(' ')
		w.buf.WriteString(http.StatusText(status))
		w.buf.WriteString("\r\n")
		w.iov[n] = w.buf.Bytes()
	}
	n++
	if needDate {
		w.iov[n] = dateLine()
		n++
	}
	for _, p := range [...][]byte{fields, xcache, age, crlf, body} {
		if len(p) > 0 {
			w.iov[n] = p
			n++
		}
	}
	// The block's Content-Length is the body's (the cache renders both).
	w.declared, w.written = int64(len(body)), int64(len(body))
	w.err = w.writev(n)
}

var crlf = []byte("\r\n")

// finish sends the header of a response without a body write and reports
// whether the connection may carry another request: the body matched its
// Content-Length and every write went out.
func (w *responseWriter) finish() bool {
	if w.err != nil {
		return false
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.sent {
		w.render(nil)
		_, w.err = w.conn.Write(w.buf.Bytes())
		w.sent = true
		if w.err != nil {
			return false
		}
	}
	if w.head || !bodyAllowed(w.status) {
		return true
	}
	return w.declared == w.written
}

// render writes the status line and header as net/http would: values
// trimmed and newlines in them replaced by spaces (net/http's
// Header.Write, without its sorting: field order carries no meaning), a
// Date unless the handler set one, a sniffed Content-Type for an untyped
// uncoded body.
func (w *responseWriter) render(first []byte) {
	w.served.Add(1)
	w.buf.Reset()
	w.buf.WriteString("HTTP/1.1 ")
	w.buf.Write(strconv.AppendInt(w.buf.AvailableBuffer(), int64(w.status), 10))
	w.buf.WriteByte(' ')
	w.buf.WriteString(http.StatusText(w.status))
	w.buf.WriteString("\r\n")
	if _, ok := w.h["Date"]; !ok {
		w.buf.Write(dateLine())
	}
	if bodyAllowed(w.status) && !w.head {
		if _, typed := w.h["Content-Type"]; !typed && len(w.h["Content-Encoding"]) == 0 && len(first) > 0 {
			w.h["Content-Type"] = []string{http.DetectContentType(first)}
		}
	}
	if v := w.h["Content-Length"]; len(v) == 1 {
		if n, err := strconv.ParseInt(v[0], 10, 64); err == nil && n >= 0 {
			w.declared = n
		}
	}
	for k, vs := range w.h {
		for _, v := range vs {
			w.buf.WriteString(k)
			w.buf.WriteString(": ")
			v = strings.Trim(v, " \t")
			if strings.ContainsAny(v, "\r\n") {
				v = newlineToSpace.Replace(v)
			}
			w.buf.WriteString(v)
			w.buf.WriteString("\r\n")
		}
	}
	w.buf.WriteString("\r\n")
}

var newlineToSpace = strings.NewReplacer("\n", " ", "\r", " ")

func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

// dateValue is the rendered Date line of one second.
type dateValue struct {
	sec  int64
	line []byte
}

var date atomic.Pointer[dateValue]

// dateLine is "Date: " and the current time in http.TimeFormat, rendered
// once a second; never written into.
func dateLine() []byte {
	now := time.Now()
	if d := date.Load(); d != nil && d.sec == now.Unix() {
		return d.line
	}
	b := append(make([]byte, 0, 40), "Date: "...)
	b = now.UTC().AppendFormat(b, http.TimeFormat)
	d := &dateValue{sec: now.Unix(), line: append(b, "\r\n"...)}
	date.Store(d)
	return d.line
}
