package fastcgi

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
)

const (
	// bufSize fits a full STDIN record plus the closing empty STDIN record.
	bufSize = headerLen + maxWriteContent + 8 + headerLen
	// maxPooledBuf keeps buffers grown by huge params out of the pool.
	maxPooledBuf = 1 << 20
	// minStdinRoom is the least free space worth reading the body into before
	// the buffer is written out.
	minStdinRoom = 2*headerLen + 8 + 512
)

var bufPool = sync.Pool{New: func() any {
	b := make([]byte, 0, bufSize)
	return &b
}}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) > maxPooledBuf {
		return
	}
	*b = (*b)[:0]
	bufPool.Put(b)
}

// paramWriter packs name-value pairs into PARAMS records. php-fpm decodes
// every PARAMS record on its own, so a pair never straddles two records, and
// a pair larger than one record cannot be sent at all.
type paramWriter struct {
	buf      []byte
	recStart int // offset of the open record's header
}

func (w *paramWriter) open() {
	w.recStart = len(w.buf)
	w.buf = append(w.buf, zeros[:]...)
}

func (w *paramWriter) closeRecord() {
	n := len(w.buf) - w.recStart - headerLen
	if n == 0 {
		w.buf = w.buf[:w.recStart]
		return
	}
	p := padLen(n)
	putHeader(w.buf[w.recStart:], typeParams, requestID, n, p)
	w.buf = append(w.buf, zeros[:p]...)
}

// room makes space for a pair of n encoded bytes named name.
func (w *paramWriter) room(name string, n int) error {
	if n > maxWriteContent {
		return fmt.Errorf("fastcgi: param %q: %d bytes encoded, php-fpm accepts at most %d per param", truncate(name), n, maxWriteContent)
	}
	if len(w.buf)-w.recStart-headerLen+n > maxWriteContent {
		w.closeRecord()
		w.open()
	}
	return nil
}

func (w *paramWriter) add(name, value string) error {
	if err := w.room(name, pairLen(len(name), len(value))); err != nil {
		return err
	}
	w.buf = appendPair(w.buf, name, value)
	return nil
}

func (w *paramWriter) addBytes(name []byte, value string) error {
	if err := w.room(string(name), pairLen(len(name), len(value))); err != nil {
		return err
	}
	w.buf = appendPair(w.buf, name, value)
	return nil
}

// finish closes the open record and appends the empty PARAMS record.
func (w *paramWriter) finish() {
	w.closeRecord()
	w.buf = appendRecord(w.buf, typeParams, requestID, nil)
}

// encodeRequest appends BEGIN_REQUEST and the PARAMS stream to dst: params
// first, then, when hr is not nil, the CGI params derived from it that params
// does not set. With noBody it also appends the empty STDIN record, so the
// whole request is one write.
func encodeRequest(dst []byte, params map[string]string, hr *http.Request, noBody bool) ([]byte, error) {
	w := paramWriter{buf: appendBeginRequest(dst, true)}
	w.open()
	for k, v := range params {
		if err := w.add(k, v); err != nil {
			return w.buf, err
		}
	}
	if hr != nil {
		if err := addRequestParams(&w, hr, params); err != nil {
			return w.buf, err
		}
	}
	w.finish()
	if noBody {
		w.buf = appendRecord(w.buf, typeStdin, requestID, nil)
	}
	return w.buf, nil
}

// bodyError marks a failure to read the caller's request body.
type bodyError struct{ err error }

func (e bodyError) Error() string { return "fastcgi: read request body: " + e.err.Error() }
func (e bodyError) Unwrap() error { return e.err }

// writeStdin streams body as STDIN records, then the empty STDIN record,
// using buf (capacity >= bufSize) as scratch space. Small reads are coalesced.
func writeStdin(nc net.Conn, buf []byte, body io.Reader) error {
	buf = buf[:0]
	for {
		if cap(buf)-len(buf) < minStdinRoom {
			if _, err := nc.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
		h := len(buf)
		room := min(cap(buf)-h-2*headerLen-8, maxWriteContent)
		n, err := body.Read(buf[h+headerLen : h+headerLen+room])
		if n > 0 {
			p := padLen(n)
			putHeader(buf[h:h+headerLen], typeStdin, requestID, n, p)
			buf = append(buf[:h+headerLen+n], zeros[:p]...)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return bodyError{err}
		}
	}
	buf = appendRecord(buf, typeStdin, requestID, nil)
	_, err := nc.Write(buf)
	return err
}
