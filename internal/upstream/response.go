package upstream

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"net/textproto"
	"strings"
)

// Errors of a response that is not strict HTTP/1.1. Each closes the
// connection; the caller sees them wrapped in an *Error.
var (
	ErrHeadTooLarge   = errors.New("response head larger than MaxHeaderBytes")
	ErrBareLF         = errors.New("line ends in a bare LF")
	ErrStatusLine     = errors.New("malformed status line")
	ErrObsFold        = errors.New("obsolete line folding")
	ErrFieldName      = errors.New("malformed field name")
	ErrFieldValue     = errors.New("control character in field value")
	ErrContentLength  = errors.New("malformed Content-Length")
	ErrMultipleLength = errors.New("more than one Content-Length")
	ErrTransferCoding = errors.New("Transfer-Encoding other than one chunked")
	ErrLengthAndChunk = errors.New("both Content-Length and Transfer-Encoding")
	ErrChunk          = errors.New("malformed chunk")
	ErrTooManyInterim = errors.New("too many 1xx responses")
	ErrUpgrade        = errors.New("101 Switching Protocols without an Upgrade request")
)

// framing is how a response's body ends.
type framing struct {
	chunked bool
	length  int64 // with !chunked: the body's length; -1 until the node closes
	close   bool  // the connection must not be reused after this response
}

// readHead reads one response head (status line to the empty line) into
// buf, which it may grow, and returns it. A connection closed before any
// byte gives io.EOF; at most max bytes are read.
func readHead(br *bufio.Reader, buf []byte, max int) ([]byte, error) {
	buf = buf[:0]
	for {
		line, err := br.ReadSlice('\n')
		if len(buf)+len(line) > max {
			return buf, ErrHeadTooLarge
		}
		buf = append(buf, line...)
		switch {
		case err == bufio.ErrBufferFull:
			continue // the line goes on
		case err == io.EOF && len(buf) == 0:
			return buf, io.EOF
		case err == io.EOF:
			return buf, io.ErrUnexpectedEOF
		case err != nil:
			return buf, err
		}
		n := len(buf)
		if n < 2 || buf[n-2] != '\r' {
			return buf, ErrBareLF
		}
		if n == 2 {
			return buf, ErrStatusLine // a head starts with its status line
		}
		if n >= 4 && buf[n-4] == '\r' && buf[n-3] == '\n' {
			return buf, nil // the empty line
		}
	}
}

// parseHead parses a head as readHead returns it (status line and fields,
// CRLF after each, an empty line last) for a request with method. It
// returns the response without Body, and its framing. resp, when not nil,
// is the (zero) response to fill; values, when its capacity holds every
// field, backs the header's values.
func parseHead(head string, method string, resp *http.Response, values []string) (*http.Response, framing, error) {
	var fr framing
	// readHead ends every line in CRLF and lets no LF stand alone: a line
	// ends at its LF, and the CR before it is dropped.
	line, rest := cutLine(head)
	if resp == nil {
		resp = &http.Response{}
	}
	if err := parseStatusLine(line, resp); err != nil {
		return nil, fr, err
	}
	// Count the fields first: one slice backs every value, one map holds them.
	nfields := max(strings.Count(rest, "\n")-1, 0)
	if cap(values) < nfields {
		values = make([]string, 0, nfields)
	}
	values = values[:0]
	h := make(http.Header, nfields)
	var lengths, codings int
	fr.length = -1
	for {
		line, rest = cutLine(rest)
		if line == "" {
			break
		}
		name, value, err := parseField(line)
		if err != nil {
			return nil, fr, err
		}
		switch name {
		case "Content-Length":
			lengths++
			n, ok := parseLength(value)
			if !ok {
				return nil, fr, ErrContentLength
			}
			if lengths > 1 {
				return nil, fr, ErrMultipleLength
			}
			fr.length = n
		case "Transfer-Encoding":
			codings++
			if codings > 1 || !strings.EqualFold(value, "chunked") {
				return nil, fr, ErrTransferCoding
			}
			fr.chunked = true
			continue // framing is this package's business, not the header's
		case "Connection":
			if hasToken(value, "close") {
				fr.close = true
			}
		}
		values = append(values, value)
		if old, ok := h[name]; ok {
			h[name] = append(old, value) // old's capacity is 1: a copy
		} else {
			k := len(values) - 1
			h[name] = values[k : k+1 : k+1]
		}
	}
	resp.Header = h
	if fr.chunked && lengths > 0 {
		return nil, fr, ErrLengthAndChunk
	}
	if fr.chunked && resp.ProtoMinor == 0 {
		return nil, fr, ErrTransferCoding // HTTP/1.0 has no chunked coding
	}
	if resp.ProtoMinor == 0 {
		fr.close = true // no keep-alive with HTTP/1.0: simpler than guessing
	}
	resp.Close = fr.close
	switch {
	case resp.StatusCode < 200, resp.StatusCode == http.StatusNoContent,
		resp.StatusCode == http.StatusNotModified, method == http.MethodHead:
		fr.chunked, fr.length = false, 0
		if lengths > 0 && method == http.MethodHead {
			resp.ContentLength = -1 // the length of the GET's body, not this one's
		}
	case fr.chunked:
		resp.ContentLength = -1
		resp.TransferEncoding = []string{"chunked"}
	case fr.length < 0:
		resp.ContentLength = -1
		fr.close = true // the body ends when the node closes
		resp.Close = true
	default:
		resp.ContentLength = fr.length
	}
	return resp, fr, nil
}

// cutLine splits s after its first LF, returning the line without its
// CRLF; without an LF, the whole of s is the line.
func cutLine(s string) (line, rest string) {
	i := strings.IndexByte(s, '\n')
	if i < 0 {
		return s, ""
	}
	if i > 0 && s[i-1] == '\r' {
		return s[:i-1], s[i+1:]
	}
	return s[:i], s[i+1:]
}

// parseStatusLine parses "HTTP/1.x NNN reason".
func parseStatusLine(line string, resp *http.Response) error {
	if len(line) < 12 || line[:7] != "HTTP/1." || line[8] != ' ' || (len(line) > 12 && line[12] != ' ') {
		return ErrStatusLine
	}
	switch line[7] {
	case '0':
		resp.Proto, resp.ProtoMinor = "HTTP/1.0", 0
	case '1':
		resp.Proto, resp.ProtoMinor = "HTTP/1.1", 1
	default:
		return ErrStatusLine
	}
	resp.ProtoMajor = 1
	code := 0
	for _, c := range []byte(line[9:12]) {
		if c < '0' || c > '9' {
			return ErrStatusLine
		}
		code = code*10 + int(c-'0')
	}
	if code < 100 || code > 599 {
		return ErrStatusLine
	}
	for i := 12; i < len(line); i++ {
		if c := line[i]; c < ' ' && c != '\t' || c == 0x7f {
			return ErrStatusLine
		}
	}
	resp.StatusCode = code
	resp.Status = line[9:]
	return nil
}

// parseField splits one field line into its canonical name and its value
// without surrounding whitespace.
func parseField(line string) (name, value string, err error) {
	if line[0] == ' ' || line[0] == '\t' {
		return "", "", ErrObsFold
	}
	i := strings.IndexByte(line, ':')
	if i <= 0 {
		return "", "", ErrFieldName
	}
	name = line[:i]
	canonical := true
	upper := true
	for j := 0; j < len(name); j++ {
		c := name[j]
		if !isTokenChar(c) {
			return "", "", ErrFieldName
		}
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			canonical = false
		}
		upper = c == '-'
	}
	if !canonical {
		name = textproto.CanonicalMIMEHeaderKey(name)
	}
	value = strings.Trim(line[i+1:], " \t")
	for j := 0; j < len(value); j++ {
		if c := value[j]; c < ' ' && c != '\t' || c == 0x7f {
			return "", "", ErrFieldValue
		}
	}
	return name, value, nil
}

// parseLength parses 1*DIGIT that fits in an int64.
func parseLength(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false // 18 digits always fit; nobody sends an exabyte
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// hasToken reports whether the comma-separated list v holds token,
// case-insensitively.
func hasToken(v, token string) bool {
	for part := range strings.SplitSeq(v, ",") {
		if strings.EqualFold(strings.Trim(part, " \t"), token) {
			return true
		}
	}
	return false
}

// isTokenChar reports whether c may appear in a token (RFC 9110 §5.6.2).
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
