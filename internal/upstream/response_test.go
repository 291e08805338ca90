package upstream

import (
	"bufio"

	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// readAll reads one response from raw the way Do does and returns its
// status, header, body and whether the connection would be reused.
func readAll(raw, method string) (code int, h http.Header, text string, reused bool, err error) {
	c := &Client{cfg: DefaultConfig(), pools: map[*Pool]struct{}{}}
	c.cfg.MaxHeaderBytes = 1024
	p := c.NewPool("test")
	p.slots <- struct{}{} // the slot the connection would hold
	br := bufio.NewReaderSize(strings.NewReader(raw), 4096)
	cn := &conn{nc: fakeConn{}, br: br, pool: p, maxHead: c.cfg.MaxHeaderBytes}
	var resp *http.Response
	var fr framing
	for {
		head, err := readHead(br, nil, cn.maxHead)
		if err != nil {
			return 0, nil, "", false, err
		}
		resp, fr, err = parseHead(string(head), method, nil, nil)
		if err != nil {
			return 0, nil, "", false, err
		}
		if resp.StatusCode >= 200 {
			break
		}
	}
	b := &body{cn: cn, fr: fr, left: fr.length}
	if fr.chunked {
		b.left = 0
	}
	if !fr.chunked && fr.length == 0 {
		b.finish(io.EOF)
	}
	got, err := io.ReadAll(b)
	return resp.StatusCode, resp.Header, string(got), p.Idle() == 1, err
}

// TestHostileResponses: every response a node could use to desynchronise
// the edge's view of where a response ends is refused (RFC 9112 §6.3,
// §7.1, §5.2, §2.2), and the connection is never reused after one.
func TestHostileResponses(t *testing.T) {
	long := strings.Repeat("a", 2000)
	tests := []struct {
		name    string
		raw     string
		method  string
		wantErr error
	}{
		{"CL and TE (§6.3 rule 3)", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", "GET", ErrLengthAndChunk},
		{"TE and CL", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n", "GET", ErrLengthAndChunk},
		{"two Content-Length lines, same value", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", "GET", ErrMultipleLength},
		{"two Content-Length lines, different", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 50\r\n\r\nhello", "GET", ErrMultipleLength},
		{"Content-Length list", "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello", "GET", ErrContentLength},
		{"Content-Length with sign", "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello", "GET", ErrContentLength},
		{"Content-Length hex", "HTTP/1.1 200 OK\r\nContent-Length: 0x5\r\n\r\nhello", "GET", ErrContentLength},
		{"Content-Length overflow", "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\nhello", "GET", ErrContentLength},
		{"Content-Length empty", "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\nhello", "GET", ErrContentLength},
		{"TE gzip, chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", "GET", ErrTransferCoding},
		{"TE identity", "HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\nhello", "GET", ErrTransferCoding},
		{"TE twice", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "GET", ErrTransferCoding},
		{"TE with trailing junk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\x0b\r\n\r\n0\r\n\r\n", "GET", ErrFieldValue},
		{"TE in HTTP/1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "GET", ErrTransferCoding},
		{"space before colon", "HTTP/1.1 200 OK\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", "GET", ErrFieldName},
		{"obs-fold", "HTTP/1.1 200 OK\r\nX-A: 1\r\n Transfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n", "GET", ErrObsFold},
		{"bare LF in head", "HTTP/1.1 200 OK\r\nContent-Length: 0\nX: y\r\n\r\n", "GET", ErrBareLF},
		{"bare LF end of head", "HTTP/1.1 200 OK\nContent-Length: 0\n\n", "GET", ErrBareLF},
		{"bare CR in value", "HTTP/1.1 200 OK\r\nX-A: a\rContent-Length: 0\r\nContent-Length: 0\r\n\r\n", "GET", ErrFieldValue},
		{"NUL in value", "HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 0\r\n\r\n", "GET", ErrFieldValue},
		{"empty field name", "HTTP/1.1 200 OK\r\n: x\r\nContent-Length: 0\r\n\r\n", "GET", ErrFieldName},
		{"no colon", "HTTP/1.1 200 OK\r\nContent-Length 0\r\n\r\n", "GET", ErrFieldName},
		{"HTTP/2 status line", "HTTP/2 200 OK\r\nContent-Length: 0\r\n\r\n", "GET", ErrStatusLine},
		{"HTTP/1.2", "HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n", "GET", ErrStatusLine},
		{"status 2 digits", "HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n", "GET", ErrStatusLine},
		{"status 999", "HTTP/1.1 999 OK\r\nContent-Length: 0\r\n\r\n", "GET", ErrStatusLine},
		{"status letters", "HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n", "GET", ErrStatusLine},
		{"leading empty line", "\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "GET", ErrStatusLine},
		{"huge header", "HTTP/1.1 200 OK\r\nX-Big: " + long + "\r\nContent-Length: 0\r\n\r\n", "GET", ErrHeadTooLarge},
		{"many headers", "HTTP/1.1 200 OK\r\n" + strings.Repeat("X: y\r\n", 300) + "Content-Length: 0\r\n\r\n", "GET", ErrHeadTooLarge},
		{"head cut short", "HTTP/1.1 200 OK\r\nContent-Len", "GET", io.ErrUnexpectedEOF},
		{"body shorter than Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello", "GET", io.ErrUnexpectedEOF},
		{"chunk size overflow", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\nx\r\n0\r\n\r\n", "GET", ErrChunk},
		{"chunk size 2^60", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\nx\r\n0\r\n\r\n", "GET", ErrChunk},
		{"chunk size negative", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n", "GET", ErrChunk},
		{"chunk size 0x", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", "GET", ErrChunk},
		{"chunk size empty", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\nhello\r\n0\r\n\r\n", "GET", ErrChunk},
		{"chunk size bare LF", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", "GET", ErrChunk},
		{"LF in chunk extension", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a\nb\r\nhello\r\n0\r\n\r\n", "GET", ErrChunk},
		{"chunk data longer than size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n", "GET", ErrChunk},
		{"chunk without CRLF after data", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello0\r\n\r\n", "GET", ErrChunk},
		{"chunked body cut short", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", "GET", io.ErrUnexpectedEOF},
		{"trailer with obs-fold", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: a\r\n b\r\n\r\n", "GET", ErrObsFold},
		{"trailer bare LF", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: a\n\r\n", "GET", ErrBareLF},
		{"trailers too large", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n" + strings.Repeat("X: 0123456789\r\n", 100) + "\r\n", "GET", ErrHeadTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, _, reused, err := readAll(tt.raw, tt.method)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v, want %v", err, tt.wantErr)
			}
			if reused {
				t.Error("connection reused after a protocol error")
			}
		})
	}
}

// TestResponses: well-formed responses, their bodies and whether the
// connection is kept.
func TestResponses(t *testing.T) {
	tests := []struct {
		name       string
		raw        string
		method     string
		wantCode   int
		wantHeader http.Header
		wantBody   string
		wantReused bool
	}{
		{"content-length", "HTTP/1.1 200 OK\r\nContent-Type: text/css\r\nContent-Length: 5\r\n\r\nhello", "GET", 200,
			http.Header{"Content-Type": {"text/css"}, "Content-Length": {"5"}}, "hello", true},
		{"chunked with extension and trailers", "HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n5;ext=\"a b\"\r\nhello\r\n1\r\n!\r\n0\r\nX-Trailer: 1\r\n\r\n", "GET", 200,
			http.Header{}, "hello!", true},
		{"non-canonical names, repeated field, OWS", "HTTP/1.1 200 OK\r\nset-cookie: a=1\r\nSET-COOKIE:b=2 \t\r\ncontent-length: 0\r\n\r\n", "GET", 200,
			http.Header{"Set-Cookie": {"a=1", "b=2"}, "Content-Length": {"0"}}, "", true},
		{"connection close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", "GET", 200,
			http.Header{"Connection": {"close"}, "Content-Length": {"2"}}, "ok", false},
		{"no length: until close", "HTTP/1.1 200 OK\r\n\r\nall of it", "GET", 200, http.Header{}, "all of it", false},
		{"HTTP/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", "GET", 200, http.Header{"Content-Length": {"2"}}, "ok", false},
		{"HEAD with length", "HTTP/1.1 200 OK\r\nContent-Length: 7000\r\n\r\n", "HEAD", 200, http.Header{"Content-Length": {"7000"}}, "", true},
		{"304 with length", "HTTP/1.1 304 Not Modified\r\nContent-Length: 7000\r\n\r\n", "GET", 304, http.Header{"Content-Length": {"7000"}}, "", true},
		{"204", "HTTP/1.1 204 No Content\r\n\r\n", "GET", 204, http.Header{}, "", true},
		{"status without reason", "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", "GET", 200, http.Header{"Content-Length": {"0"}}, "", true},
		{"1xx skipped", "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx", "GET", 200,
			http.Header{"Content-Length": {"1"}}, "x", true},
		{"obs-text in value", "HTTP/1.1 200 OK\r\nX-A: caf\xc3\xa9\r\nContent-Length: 0\r\n\r\n", "GET", 200,
			http.Header{"X-A": {"caf\xc3\xa9"}, "Content-Length": {"0"}}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, h, b, reused, err := readAll(tt.raw, tt.method)
			if err != nil && err != io.EOF {
				t.Fatal(err)
			}
			if code != tt.wantCode || b != tt.wantBody || reused != tt.wantReused {
				t.Errorf("got %d %q reused=%v, want %d %q reused=%v", code, b, reused, tt.wantCode, tt.wantBody, tt.wantReused)
			}
			if diff := cmp.Diff(tt.wantHeader, h); diff != "" {
				t.Errorf("header (-want +got):\n%s", diff)
			}
		})
	}
}
