package hitfront

import (
	"bufio"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestScanHead(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantN   int
		wantBad bool
	}{
		{name: "complete", in: "GET / HTTP/1.1\r\nHost: a\r\n\r\n", wantN: 27},
		{name: "pipelined: the first block", in: "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\n", wantN: 27},
		{name: "incomplete", in: "GET / HTTP/1.1\r\nHost: a\r\n"},
		{name: "nothing yet", in: ""},
		{name: "bare LF", in: "GET / HTTP/1.1\nHost: a\n\n", wantBad: true},
		{name: "bare LF at the end", in: "GET / HTTP/1.1\r\nHost: a\r\n\n", wantBad: true},
		{name: "leading empty line", in: "\r\nGET / HTTP/1.1\r\n\r\n", wantBad: true},
		{name: "CR alone is not an end", in: "GET / HTTP/1.1\r\nHost: a\r\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, bad := scanHead([]byte(tt.in))
			if diff := cmp.Diff([]any{tt.wantN, tt.wantBad}, []any{n, bad}); diff != "" {
				t.Errorf("scanHead(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

// TestParseHead: what the fast path answers and what it hands to net/http.
// Every request with body framing (Content-Length, Transfer-Encoding) is
// handed over, so the fast path never decides where a request ends but at
// its empty line (RFC 9112 §6.3: a request without either has no body).
func TestParseHead(t *testing.T) {
	tests := []struct {
		name  string
		block string
		want  bool
		close bool
		h     http.Header
	}{
		{name: "plain GET", block: "GET /a?b=c HTTP/1.1\r\nHost: site.test\r\nAccept-Encoding: gzip, br\r\n\r\n", want: true,
			h: http.Header{"Accept-Encoding": {"gzip, br"}}},
		{name: "HEAD, lower-case names, OWS", block: "HEAD / HTTP/1.1\r\nhost:site.test\r\ncookie:  a=1 \t\r\nCookie: b=2\r\n\r\n", want: true,
			h: http.Header{"Cookie": {"a=1", "b=2"}}},
		{name: "keep-alive", block: "GET / HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive\r\n\r\n", want: true, h: http.Header{"Connection": {"Keep-Alive"}}},
		{name: "Content-Length", block: "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n"},
		{name: "Content-Length 0", block: "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"},
		{name: "Transfer-Encoding", block: "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"},
		{name: "Transfer-Encoding, odd case", block: "GET / HTTP/1.1\r\nHost: a\r\ntRANSFER-eNCODING: chunked\r\n\r\n"},
		{name: "space before colon", block: "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n"},
		{name: "obs-fold", block: "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n 2\r\n\r\n"},
		{name: "Connection: close", block: "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", want: true, close: true,
			h: http.Header{"Connection": {"close"}}},
		{name: "Connection: Close and keep-alive", block: "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nConnection: Close\r\n\r\n", want: true, close: true,
			h: http.Header{"Connection": {"keep-alive", "Close"}}},
		{name: "Connection: a list", block: "GET / HTTP/1.1\r\nHost: a\r\nConnection: close, x-a\r\n\r\n"},
		{name: "Upgrade", block: "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nUpgrade: h2c\r\n\r\n"},
		{name: "Expect", block: "GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n"},
		{name: "POST", block: "POST / HTTP/1.1\r\nHost: a\r\n\r\n"},
		{name: "lower-case method", block: "get / HTTP/1.1\r\nHost: a\r\n\r\n"},
		{name: "HTTP/1.0", block: "GET / HTTP/1.0\r\nHost: a\r\n\r\n"},
		{name: "absolute-form", block: "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n"},
		{name: "asterisk", block: "GET * HTTP/1.1\r\nHost: a\r\n\r\n"},
		{name: "no Host", block: "GET / HTTP/1.1\r\n\r\n"},
		{name: "two Hosts", block: "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"},
		{name: "bad Host", block: "GET / HTTP/1.1\r\nHost: a b\r\n\r\n"},
		{name: "control byte in a value", block: "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\x002\r\n\r\n"},
		{name: "bad name", block: "GET / HTTP/1.1\r\nHost: a\r\nX(A): 1\r\n\r\n"},
		{name: "double space in request line", block: "GET  / HTTP/1.1\r\nHost: a\r\n\r\n"},
		{name: "non-ASCII target", block: "GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n"},
		{name: "fragment", block: "GET /#x HTTP/1.1\r\nHost: a\r\n\r\n"},
		{name: "bad escape", block: "GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r request
			h := http.Header{}
			_, got := parseHead(tt.block, &r, h, nil)
			if got != tt.want {
				t.Fatalf("parseHead(%q) = %v, want %v", tt.block, got, tt.want)
			}
			if !got {
				return
			}
			if diff := cmp.Diff(tt.h, h); diff != "" {
				t.Errorf("header mismatch (-want +got):\n%s", diff)
			}
			if r.close != tt.close {
				t.Errorf("close = %v, want %v", r.close, tt.close)
			}
		})
	}
}

// FuzzParseHead checks parseHead against net/http's own parser: a block
// it accepts is one http.ReadRequest reads the same way (method, target,
// Host, every header field) as a request without a body that ends at the
// block's end. Seeds: testdata/fuzz/FuzzParseHead.
func FuzzParseHead(f *testing.F) {
	f.Fuzz(func(t *testing.T, in string) {
		n, bad := scanHead([]byte(in))
		if bad || n == 0 {
			return
		}
		block := in[:n]
		var r request
		h := http.Header{}
		if _, ok := parseHead(block, &r, h, nil); !ok {
			return
		}
		br := bufio.NewReader(strings.NewReader(block + "GET /next HTTP/1.1\r\nHost: n\r\n\r\n"))
		want, err := http.ReadRequest(br)
		if err != nil {
			t.Fatalf("parseHead accepted %q, net/http refuses it: %v", block, err)
		}
		if want.ContentLength != 0 || len(want.TransferEncoding) > 0 {
			t.Fatalf("parseHead accepted %q, net/http sees a body (length %d, %v)", block, want.ContentLength, want.TransferEncoding)
		}
		delete(want.Header, "Host")
		if diff := cmp.Diff([]any{want.Method, want.RequestURI, want.Host, want.Header, want.URL.String(), want.Close}, []any{r.method, r.target, r.host, h, r.url.String(), r.close}); diff != "" {
			t.Errorf("parseHead(%q) and net/http differ (-net/http +parseHead):\n%s", block, diff)
		}
		next, err := http.ReadRequest(br)
		if err != nil || next.RequestURI != "/next" {
			t.Errorf("net/http did not end the request where parseHead did: next = %v, %v", next, err)
		}
	})
}
