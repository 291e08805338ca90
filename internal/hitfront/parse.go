package hitfront

import (
	"net/http"
	"net/textproto"
	"net/url"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// scanHead finds the end of the header block at the start of b: n is its
// length including the empty line. n == 0 with bad false means b holds no
// complete block yet. bad reports a line ending the fast path does not
// take (a bare LF): such a request is handed to net/http, whose reading of
// it is the only one.
func scanHead(b []byte) (n int, bad bool) {
	lineStart := 0
	for i := 0; i < len(b); i++ {
		if b[i] != '\n' {
			continue
		}
		if i == 0 || b[i-1] != '\r' {
			return 0, true
		}
		if i-1 == lineStart { // an empty line: the end of the block
			if lineStart == 0 {
				return 0, true // a leading empty line: net/http's to skip or refuse
			}
			return i + 1, false
		}
		lineStart = i + 1
	}
	return 0, false
}

// request is what parseHead takes from a header block: strings that share
// the block's one allocation.
type request struct {
	method string // GET or HEAD
	target string // origin-form
	url    *url.URL
	host   string
	close  bool // Connection: close (net/http's Request.Close)
}

// parseHead parses a complete header block (scanHead's) into r and h
// (cleared first) and reports whether the fast path may answer it. It is
// strict: anything it does not fully understand is false, and the request
// goes to net/http, which reads it from its first byte. What it accepts:
// GET or HEAD, origin-form target that url.ParseRequestURI takes, HTTP/1.1; header lines of token names
// and values without control characters (HTAB allowed), no obs-fold;
// exactly one valid Host; and none of Content-Length, Transfer-Encoding
// (so the request ends at the block: no body framing to disagree on),
// Expect, Upgrade, nor a Connection other than keep-alive or close (the
// connection then ends after the answer, as net/http ends it).
//
// vals is the backing array the values are appended to (reused between
// requests); parseHead returns it grown.
func parseHead(block string, r *request, h http.Header, vals []string) ([]string, bool) {
	clear(h)
	vals = vals[:0]
	line, rest, ok := strings.Cut(block, "\r\n")
	if !ok {
		return vals, false
	}
	method, line, ok := strings.Cut(line, " ")
	if !ok || (method != http.MethodGet && method != http.MethodHead) {
		return vals, false
	}
	target, proto, ok := strings.Cut(line, " ")
	if !ok || proto != "HTTP/1.1" || len(target) == 0 || target[0] != '/' || !validTarget(target) {
		return vals, false
	}
	u, err := url.ParseRequestURI(target) // as net/http does
	if err != nil {
		return vals, false
	}
	r.method, r.target, r.url, r.host, r.close = method, target, u, "", false
	hosts := 0
	for {
		line, rest, ok = strings.Cut(rest, "\r\n")
		if !ok {
			return vals, false
		}
		if line == "" {
			break
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || !validName(name) {
			return vals, false // also obs-fold: a line starting with SP or HTAB
		}
		value = strings.Trim(value, " \t")
		if !validValue(value) {
			return vals, false
		}
		key := textproto.CanonicalMIMEHeaderKey(name)
		switch key {
		case "Host":
			hosts++
			if hosts > 1 || !httpguts.ValidHostHeader(value) {
				return vals, false
			}
			r.host = value
			continue // net/http keeps it in Request.Host only
		case "Content-Length", "Transfer-Encoding", "Expect", "Upgrade", "Te", "Trailer", "Http2-Settings":
			return vals, false
		case "Connection":
			switch {
			case strings.EqualFold(value, "close"):
				r.close = true
			case !strings.EqualFold(value, "keep-alive"):
				return vals, false
			}
		}
		if old := h[key]; old != nil {
			h[key] = append(old, value) // a repeated field: copies (cap == len)
			continue
		}
		vals = append(vals, value)
		h[key] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	return vals, hosts == 1 && rest == ""
}

// validTarget: visible ASCII only (no SP, CTL, DEL or bytes above 0x7e),
// and no fragment.
func validTarget(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '#' {
			return false
		}
	}
	return true
}

// validName: a token (RFC 9110 §5.1).
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !httpguts.IsTokenRune(rune(s[i])) {
			return false
		}
	}
	return true
}

// validValue: no control characters but HTAB, no DEL (RFC 9110 §5.5).
func validValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
