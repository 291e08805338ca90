package upstream

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"testing"
)

// FuzzReadResponse: no response panics the parser or reads past what its
// framing says; and a response this parser accepts, Go's net/http reads
// with the same status and the same body: one view of where a response
// ends.
func FuzzReadResponse(f *testing.F) {
	for _, s := range []string{
		ok200("hello"),
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
		"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + ok200("x"),
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
		"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n",
		"HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n",
		"HTTP/1.0 200 OK\r\n\r\nuntil close",
		"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n",
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, head bool) {
		method := http.MethodGet
		if head {
			method = http.MethodHead
		}
		code, _, body, _, err := readAll(string(data), method)
		if err != nil && err != io.EOF {
			return
		}
		if len(body) > len(data) {
			t.Fatalf("body of %d bytes from %d bytes of input", len(body), len(data))
		}
		// net/http's reader, given the same bytes and skipping 1xx like us.
		br := bufio.NewReader(bytes.NewReader(data))
		req := &http.Request{Method: method}
		var resp *http.Response
		for {
			resp, err = http.ReadResponse(br, req)
			if err != nil {
				return // stricter elsewhere is not a desync; only a different end is
			}
			if resp.StatusCode >= 200 {
				break
			}
		}
		theirs, err := io.ReadAll(resp.Body)
		if err != nil {
			return
		}
		if resp.StatusCode != code || string(theirs) != body {
			t.Fatalf("net/http reads %d %q, we read %d %q", resp.StatusCode, theirs, code, body)
		}
	})
}
