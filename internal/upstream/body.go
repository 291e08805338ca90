package upstream

import (
	"bufio"
	"errors"
	"io"
)

// body is a response body read straight from the node's connection. At
// its end (io.EOF after a well-framed body) the connection goes back to
// its pool; Close before the end, or any error, closes the connection.
type body struct {
	cn   *conn
	fr   framing
	left int64 // bytes left in the body (fixed length) or in the current chunk
	crlf bool  // chunked: the CRLF after the current chunk's data is due
	err  error // sticky: io.EOF once done, or the error that ended it
}

func (b *body) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	var n int
	var err error
	switch {
	case b.fr.chunked:
		n, err = b.readChunked(p)
	case b.fr.length >= 0:
		n, err = b.readFixed(p)
	default:
		n, err = b.cn.br.Read(p)
	}
	if err != nil {
		b.finish(err)
	}
	return n, err
}

func (b *body) readFixed(p []byte) (int, error) {
	if b.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.cn.br.Read(p)
	b.left -= int64(n)
	switch {
	case b.left == 0:
		return n, io.EOF // hand the connection back without another call
	case err == io.EOF:
		return n, io.ErrUnexpectedEOF
	}
	return n, err
}

func (b *body) readChunked(p []byte) (int, error) {
	if b.left == 0 {
		if b.crlf {
			if err := readCRLF(b.cn.br); err != nil {
				return 0, err
			}
			b.crlf = false
		}
		size, err := readChunkSize(b.cn.br)
		if err != nil {
			return 0, err
		}
		if size == 0 {
			if err := skipTrailers(b.cn.br, b.cn.maxHead); err != nil {
				return 0, err
			}
			return 0, io.EOF
		}
		b.left = size
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.cn.br.Read(p)
	b.left -= int64(n)
	if b.left == 0 {
		b.crlf = true
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// finish ends the body once: a clean end gives the connection back.
func (b *body) finish(err error) {
	b.err = err
	if b.cn == nil {
		return
	}
	cn := b.cn
	b.cn = nil
	if err == io.EOF && !b.fr.close {
		cn.release(true)
		return
	}
	cn.release(false)
}

// Close ends the body; a connection whose body was not read to its end is
// closed.
func (b *body) Close() error {
	if b.err == nil {
		b.finish(errBodyClosed)
	}
	return nil
}

var errBodyClosed = errors.New("upstream: read on closed response body")

// readCRLF reads exactly "\r\n".
func readCRLF(br *bufio.Reader) error {
	c1, err := br.ReadByte()
	if err != nil {
		return eofUnexpected(err)
	}
	c2, err := br.ReadByte()
	if err != nil {
		return eofUnexpected(err)
	}
	if c1 != '\r' || c2 != '\n' {
		return ErrChunk
	}
	return nil
}

// readChunkSize reads a chunk-size line: 1*HEXDIG [ chunk-ext ] CRLF, the
// size below 2^60, the extension (ignored) without controls.
func readChunkSize(br *bufio.Reader) (int64, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		if err == bufio.ErrBufferFull {
			return 0, ErrChunk // a chunk-size line longer than the buffer
		}
		return 0, eofUnexpected(err)
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return 0, ErrChunk
	}
	line = line[:len(line)-2]
	var size int64
	i := 0
	for ; i < len(line); i++ {
		c := line[i]
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			goto ext
		}
		if size >= 1<<56 {
			return 0, ErrChunk // would pass 2^60: no such body
		}
		size = size<<4 | int64(d)
	}
ext:
	if i == 0 {
		return 0, ErrChunk
	}
	rest := line[i:]
	for len(rest) > 0 && (rest[0] == ' ' || rest[0] == '\t') {
		rest = rest[1:]
	}
	if len(rest) > 0 && rest[0] != ';' {
		return 0, ErrChunk
	}
	for _, c := range rest {
		if c < ' ' && c != '\t' || c == 0x7f {
			return 0, ErrChunk
		}
	}
	return size, nil
}

// skipTrailers reads the trailer section and the final CRLF, checking
// each field like a header field, at most max bytes.
func skipTrailers(br *bufio.Reader, max int) error {
	total := 0
	for {
		line, err := br.ReadSlice('\n')
		total += len(line)
		if total > max {
			return ErrHeadTooLarge
		}
		if err != nil {
			if err == bufio.ErrBufferFull {
				return ErrHeadTooLarge
			}
			return eofUnexpected(err)
		}
		n := len(line)
		if n < 2 || line[n-2] != '\r' {
			return ErrBareLF
		}
		if n == 2 {
			return nil
		}
		if _, _, err := parseField(string(line[:n-2])); err != nil {
			return err
		}
	}
}

func eofUnexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
