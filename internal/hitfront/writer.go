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
// writev (net.Buffers), or alone at finish. Its framing is its own, as
// net/http's is: the handler's Content-Length when it is one valid number
// (a body longer than it is cut at it with http.ErrContentLength, a
// shorter one ends the connection), else the body is held up to
// holdBytes and sent with a Content-Length at finish, or, once it grows
// beyond that, chunked. A Transfer-Encoding the handler set is never
// sent. A handler's "Connection: close" ends the connection after the
// response.
type responseWriter struct {
	conn net.Conn
	h    http.Header
	buf  bytes.Buffer
	head bool // a HEAD request: no body is sent

	status      int
	wroteHeader bool // WriteHeader called
	sent        bool // status line and header are on the wire
	framed      bool // frame ran
	chunked     bool // the body goes out in chunks (no Content-Length)
	close       bool // the connection ends after the response
	reqClose    bool // the request said Connection: close: the response says so
	declared    int64
	written     int64
	held        []byte // body of an undeclared length, not sent yet
	err         error  // a failed write: the connection ends

	iov  [8][]byte // the pieces of one writev
	num  [20]byte  // a chunk's size line
	bufs net.Buffers

	served *atomic.Int64 // counted before the response goes out

	// Over TLS: the cork under the *tls.Conn (writev then hands a whole
	// response to one TLS write), and ServeTLS's fixed fields.
	cork   *corkConn
	fixed  []fixedField
	fixbuf []byte // the fixed fields a block lacks
}

var _ http.ResponseWriter = (*responseWriter)(nil)

// holdBytes is how much of a body without Content-Length is held to be
// sent with one (net/http's buffer holds about as much).
const holdBytes = 4 << 10

// reset readies w for a request; reqClose: it said Connection: close.
func (w *responseWriter) reset(head, reqClose bool) {
	clear(w.h)
	w.head, w.reqClose = head, reqClose
	w.status, w.wroteHeader, w.sent, w.framed, w.chunked, w.close = 0, false, false, false, false, reqClose
	w.declared, w.written = -1, 0
	w.held = w.held[:0]
}

func (w *responseWriter) Header() http.Header { return w.h }

// WriteHeader sets the status. A 1xx other than 100 and 101 (103 Early
// Hints, 102) is sent at once with the header's fields, as net/http does;
// 100 and 101 are never the handler's to send.
func (w *responseWriter) WriteHeader(code int) {
	if w.wroteHeader || code < 100 || code > 999 {
		return // net/http would panic on < 100
	}
	if code < 200 {
		if code != http.StatusContinue && code != http.StatusSwitchingProtocols && w.err == nil {
			w.interim(code)
		}
		return
	}
	w.status, w.wroteHeader = code, true
}

// interim sends a 1xx response: status line and the header's fields, no
// Date, no framing.
func (w *responseWriter) interim(code int) {
	w.buf.Reset()
	w.statusLine(code)
	w.fields()
	w.buf.WriteString("\r\n")
	w.iov[0] = w.buf.Bytes()
	w.err = w.writev(1)
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
		w.frame(p)
	}
	var err error
	n := len(p)
	if w.declared >= 0 && w.written+int64(n) > w.declared {
		n = int(w.declared - w.written) // as net/http: never past the length declared
		p, err = p[:n], http.ErrContentLength
	}
	switch {
	case w.declared < 0 && !w.chunked && len(w.held)+len(p) <= holdBytes:
		w.held = append(w.held, p...) // finish sends it with its length
	case w.declared < 0 && !w.chunked:
		w.chunked = true // too long to hold: chunked from here on
		w.render()
		// What was held and p: one chunk (p is not empty: it overflowed).
		w.iov[0], w.iov[1], w.iov[2], w.iov[3], w.iov[4] = w.buf.Bytes(), chunkSize(w.num[:0], len(w.held)+len(p)), w.held, p, crlf
		w.sent, w.err = true, w.writev(5)
		w.held = w.held[:0]
	case w.chunked:
		if len(p) > 0 {
			w.iov[0], w.iov[1], w.iov[2] = chunkSize(w.num[:0], len(p)), p, crlf
			w.err = w.writev(3)
		}
	case !w.sent:
		w.render()
		w.iov[0], w.iov[1] = w.buf.Bytes(), p
		w.sent, w.err = true, w.writev(2)
	case len(p) > 0:
		w.iov[0] = p
		w.err = w.writev(1)
	}
	if w.err != nil {
		return 0, w.err
	}
	w.written += int64(n)
	return n, err
}

// chunkSize appends a chunk's size line for n bytes to b.
func chunkSize(b []byte, n int) []byte {
	b = strconv.AppendInt(b[:0], int64(n), 16)
	return append(b, '\r', '\n')
}

var lastChunk = []byte("0\r\n\r\n")

// frame settles the response's framing from the header before its first
// body byte: a valid Content-Length is kept (declared), an invalid or
// repeated one and any Transfer-Encoding are dropped (the body is then
// held or chunked), and a sniffed Content-Type is added as net/http adds
// one. first is the first body write.
func (w *responseWriter) frame(first []byte) {
	if w.framed {
		return
	}
	w.framed = true
	delete(w.h, "Transfer-Encoding")
	if v, ok := w.h["Content-Length"]; ok {
		n, err := int64(-1), error(nil)
		if len(v) == 1 {
			n, err = strconv.ParseInt(v[0], 10, 64)
		}
		if len(v) != 1 || err != nil || n < 0 || !isDigits(v[0]) {
			delete(w.h, "Content-Length")
		} else {
			w.declared = n
		}
	}
	if bodyAllowed(w.status) && !w.head {
		if _, typed := w.h["Content-Type"]; !typed && len(w.h["Content-Encoding"]) == 0 && len(first) > 0 {
			w.h["Content-Type"] = []string{http.DetectContentType(first)}
		}
	}
	if w.reqClose {
		delete(w.h, "Connection") // render says close
	}
	for _, v := range w.h["Connection"] {
		if hasToken(v, "close") {
			w.close = true
		}
	}
}

// hasToken: the comma-separated list v holds tok (case-insensitively).
func hasToken(v, tok string) bool {
	for f := range strings.SplitSeq(v, ",") {
		if strings.EqualFold(strings.TrimSpace(f), tok) {
			return true
		}
	}
	return false
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// writev sends the first n pieces of iov in one system call (on a TCP
// connection), and drops the references.
func (w *responseWriter) writev(n int) error {
	var err error
	if w.cork != nil {
		err = w.writeTLS(w.iov[:n]) // a *tls.Conn would make a record of each piece
	} else {
		w.bufs = w.iov[:n] // a field: WriteTo's pointer would move a local to the heap
		_, err = w.bufs.WriteTo(w.conn)
	}
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
	var fixed []byte
	if len(w.fixed) > 0 || w.reqClose {
		w.fixbuf = w.fixbuf[:0]
		for i := range w.fixed {
			if !w.fixed[i].inBlock(fields) {
				w.fixbuf = append(w.fixbuf, w.fixed[i].line...)
			}
		}
		if w.reqClose {
			w.fixbuf = append(w.fixbuf, connClose...)
		}
		fixed = w.fixbuf
	}
	for _, p := range [...][]byte{fields, fixed, xcache, age, crlf, body} {
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

// connClose answers a request that said Connection: close, as net/http
// does (RFC 9112 §9.6).
var connClose = []byte("Connection: close\r\n")

// finish sends what the handler left unsent (the header of a response
// without a body write, a held body with its length, the last chunk) and
// reports whether the connection may carry another request: the body
// matched its framing, every write went out, and the response did not
// say Connection: close.
func (w *responseWriter) finish() bool {
	if w.err != nil {
		return false
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.sent {
		w.frame(nil)
		if w.declared < 0 && !w.head && bodyAllowed(w.status) {
			// The whole body is held: its length is known now.
			w.h["Content-Length"] = []string{strconv.Itoa(len(w.held))}
			w.declared, w.written = int64(len(w.held)), int64(len(w.held))
		}
		w.render()
		w.iov[0], w.iov[1] = w.buf.Bytes(), w.held
		w.sent, w.err = true, w.writev(2)
		w.held = w.held[:0]
		if w.err != nil {
			return false
		}
	}
	if w.chunked {
		w.iov[0] = lastChunk
		if w.err = w.writev(1); w.err != nil {
			return false
		}
	}
	if w.close {
		return false
	}
	if w.head || !bodyAllowed(w.status) || w.chunked {
		return true
	}
	return w.declared == w.written
}

// render writes the status line and header as net/http would: values
// trimmed and newlines in them replaced by spaces (net/http's
// Header.Write, without its sorting: field order carries no meaning), a
// Date unless the handler set one, Transfer-Encoding: chunked when the
// body is. frame ran before.
func (w *responseWriter) render() {
	w.served.Add(1)
	w.buf.Reset()
	w.statusLine(w.status)
	if _, ok := w.h["Date"]; !ok {
		w.buf.Write(dateLine())
	}
	w.fields()
	for i := range w.fixed {
		if _, set := w.h[w.fixed[i].name]; !set {
			w.buf.Write(w.fixed[i].line)
		}
	}
	if w.reqClose {
		w.buf.Write(connClose)
	}
	if w.chunked {
		w.buf.WriteString("Transfer-Encoding: chunked\r\n")
	}
	w.buf.WriteString("\r\n")
}

func (w *responseWriter) statusLine(code int) {
	w.buf.WriteString("HTTP/1.1 ")
	w.buf.Write(strconv.AppendInt(w.buf.AvailableBuffer(), int64(code), 10))
	w.buf.WriteByte(' ')
	w.buf.WriteString(http.StatusText(code))
	w.buf.WriteString("\r\n")
}

// fields writes the header's fields; a name that is not a token is
// dropped, as net/http drops it, and so is a value with a control
// character other than HTAB (after CR and LF became spaces).
func (w *responseWriter) fields() {
	for k, vs := range w.h {
		if !validName(k) {
			continue
		}
		for _, v := range vs {
			if !plainValue(v) { // most values (a node's, already strict) are
				v = strings.Trim(v, " \t")
				if strings.ContainsAny(v, "\r\n") {
					v = newlineToSpace.Replace(v)
				}
				if !validValue(v) {
					continue // another control character: no client could read it
				}
			}
			w.buf.WriteString(k)
			w.buf.WriteString(": ")
			w.buf.WriteString(v)
			w.buf.WriteString("\r\n")
		}
	}
}

var newlineToSpace = strings.NewReplacer("\n", " ", "\r", " ")

// plainValue reports whether v goes out as it is: no whitespace to trim at
// either end, no control character (not even HTAB) and no DEL; one pass
// instead of fields' three. false only means "take the careful way".
func plainValue(v string) bool {
	if v == "" {
		return true
	}
	if c := v[0]; c == ' ' || c == '\t' {
		return false
	}
	if c := v[len(v)-1]; c == ' ' || c == '\t' {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

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
