package hitfront

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/scalepress/scalepress/internal/pagecache"
)

// The cache's pre-rendered path must reach the fast path's writer.
var _ pagecache.HeaderBlockWriter = (*responseWriter)(nil)

// TestWriteBlock: a pre-rendered response is a well-framed HTTP/1.1
// response with a Date when asked for, as http.ReadResponse reads it.
func TestWriteBlock(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		needDate bool
		head     bool
		close    bool // the request said Connection: close
		body     string
	}{
		{name: "200 with Date", status: 200, needDate: true, body: "hello"},
		{name: "Connection: close", status: 200, needDate: true, close: true, body: "hello"},
		{name: "200, the origin's Date", status: 200, body: "hello"},
		{name: "404", status: 404, needDate: true, body: "gone"},
		{name: "HEAD", status: 200, head: true, body: "hello"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, server := net.Pipe()
			defer client.Close()
			var served atomic.Int64
			w := &responseWriter{conn: server, h: http.Header{}, served: &served}
			w.reset(tt.head, tt.close)
			fields := "Content-Type: text/plain\r\nContent-Length: 5\r\n"
			if !tt.needDate {
				fields += "Date: Sat, 01 Mar 2025 12:00:00 GMT\r\n"
			}
			if tt.status == 404 {
				fields = strings.Replace(fields, "5", "4", 1)
			}
			body := []byte(tt.body)
			if tt.head {
				body = nil
			}
			go func() {
				w.WriteBlock(tt.status, tt.needDate, []byte(fields), []byte("X-Cache: HIT\r\n"), []byte("Age: 3\r\n"), body)
				if keep := w.finish(); keep == tt.close {
					t.Errorf("finish() = %v after a framed response, want %v (the request's Connection: close)", keep, !tt.close)
				}
				server.Close()
			}()
			method := http.MethodGet
			if tt.head {
				method = http.MethodHead
			}
			resp, err := http.ReadResponse(bufio.NewReader(client), &http.Request{Method: method})
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			want := tt.body
			if tt.head {
				want = ""
			}
			got := []string{resp.Status, resp.Header.Get("X-Cache"), resp.Header.Get("Age"), string(b)}
			if diff := cmp.Diff([]string{http.StatusText(tt.status), "HIT", "3", want}, []string{strings.SplitN(got[0], " ", 2)[1], got[1], got[2], got[3]}); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
			if resp.Close != tt.close {
				t.Errorf("response says close = %v, want %v", resp.Close, tt.close)
			}
			if len(resp.Header["Date"]) != 1 {
				t.Errorf("Date = %q, want one", resp.Header["Date"])
			}
			if served.Load() != 1 {
				t.Errorf("served = %d, want 1", served.Load())
			}
		})
	}
}

// run plays a handler's calls on a responseWriter over a pipe and returns
// what a client reads: the interim responses' codes, the final response
// (body read), the bytes after it, and finish's verdict.
type played struct {
	Interim  []int
	Status   int
	Header   http.Header
	Body     string
	Chunked  bool
	Length   int64
	After    string
	KeepOpen bool
}

func play(t *testing.T, method string, handler func(w *responseWriter)) played {
	t.Helper()
	client, server := net.Pipe()
	defer client.Close()
	var served atomic.Int64
	w := &responseWriter{conn: server, h: http.Header{}, served: &served}
	w.reset(method == http.MethodHead, false)
	keep := make(chan bool, 1)
	go func() {
		handler(w)
		keep <- w.finish()
		server.Close()
	}()
	br := bufio.NewReader(client)
	var p played
	for {
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			t.Fatalf("reading the response: %v", err)
		}
		if resp.StatusCode < 200 {
			p.Interim = append(p.Interim, resp.StatusCode)
			continue
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) { // a short body: the connection ends
			t.Fatalf("reading the body: %v", err)
		}
		p.Status, p.Body, p.Length = resp.StatusCode, string(b), resp.ContentLength
		p.Chunked = len(resp.TransferEncoding) > 0
		p.Header = resp.Header
		break
	}
	rest, _ := io.ReadAll(br)
	p.After, p.KeepOpen = string(rest), <-keep
	return p
}

// TestWriterFraming: whatever a handler sets and writes, the client reads
// one response framed by the writer alone, with the body written (never
// past a declared length), and finish says whether the connection can go
// on: held small bodies get a Content-Length, long ones are chunked, a
// handler's Transfer-Encoding or bad Content-Length is not sent, 103 goes
// out before, Connection: close ends the connection.
func TestWriterFraming(t *testing.T) {
	long := strings.Repeat("x", holdBytes+10)
	tests := []struct {
		name    string
		method  string
		header  map[string]string
		status  int
		writes  []string
		interim bool
		want    played
	}{
		{name: "declared", header: map[string]string{"Content-Length": "5"}, writes: []string{"he", "llo"},
			want: played{Status: 200, Body: "hello", Length: 5, KeepOpen: true}},
		{name: "held: a length", writes: []string{"he", "llo"},
			want: played{Status: 200, Body: "hello", Length: 5, KeepOpen: true}},
		{name: "nothing written: length 0", want: played{Status: 200, Length: 0, KeepOpen: true}},
		{name: "long: chunked", writes: []string{"ab", long, "cd"},
			want: played{Status: 200, Body: "ab" + long + "cd", Length: -1, Chunked: true, KeepOpen: true}},
		{name: "one long write: chunked", writes: []string{long},
			want: played{Status: 200, Body: long, Length: -1, Chunked: true, KeepOpen: true}},
		{name: "handler's Transfer-Encoding is not sent", header: map[string]string{"Transfer-Encoding": "chunked"}, writes: []string{"abc"},
			want: played{Status: 200, Body: "abc", Length: 3, KeepOpen: true}},
		{name: "bad Content-Length dropped", header: map[string]string{"Content-Length": "+3"}, writes: []string{"abc"},
			want: played{Status: 200, Body: "abc", Length: 3, KeepOpen: true}},
		{name: "body past its length is cut", header: map[string]string{"Content-Length": "3"}, writes: []string{"abcdef", "gh"},
			want: played{Status: 200, Body: "abc", Length: 3, KeepOpen: true}},
		{name: "body short of its length ends the connection", header: map[string]string{"Content-Length": "10"}, writes: []string{"abc"},
			want: played{Status: 200, Body: "abc", Length: 10, KeepOpen: false}},
		{name: "Connection: close", header: map[string]string{"Connection": "close"}, writes: []string{"abc"},
			want: played{Status: 200, Body: "abc", Length: 3, KeepOpen: false}},
		{name: "HEAD keeps the length, sends no body", method: "HEAD", header: map[string]string{"Content-Length": "7"}, writes: []string{"ignored"},
			want: played{Status: 200, Length: 7, KeepOpen: true}},
		{name: "304: no body", status: 304, header: map[string]string{"ETag": `"a"`}, writes: []string{"ignored"},
			want: played{Status: 304, KeepOpen: true}},
		{name: "103 first", interim: true, header: map[string]string{"Content-Length": "2"}, writes: []string{"ok"},
			want: played{Interim: []int{103}, Status: 200, Body: "ok", Length: 2, KeepOpen: true}},
		{name: "error page", status: 503, header: map[string]string{"Retry-After": "1"}, writes: []string{"busy\n"},
			want: played{Status: 503, Body: "busy\n", Length: 5, KeepOpen: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			got := play(t, method, func(w *responseWriter) {
				if tt.interim {
					w.Header().Set("Link", "</a.css>; rel=preload")
					w.WriteHeader(http.StatusEarlyHints)
					w.Header().Del("Link")
				}
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				if tt.status != 0 {
					w.WriteHeader(tt.status)
				}
				for _, s := range tt.writes {
					w.Write([]byte(s))
				}
			})
			got.Header = nil
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzWriterFraming: whatever header fields, status and writes a handler
// gives, the client (net/http's parser) reads exactly one response whose
// body is what was written (cut at a declared length), nothing follows
// it on a connection finish keeps open, and a connection whose body fell
// short of its length is not kept. Seeds: testdata/fuzz/FuzzWriterFraming.
func FuzzWriterFraming(f *testing.F) {
	f.Add(200, "Content-Length: 5", "hel|lo", false)
	f.Add(200, "Transfer-Encoding: chunked\nContent-Length: 2", "abc", false)
	f.Add(204, "", "x", false)
	f.Add(200, "Content-Length: 3\nContent-Length: 3", "abc", true)
	f.Add(200, "X-A: b\r\nC", strings.Repeat("y", 5000)+"|z", false)
	f.Fuzz(func(t *testing.T, status int, fields, body string, head bool) {
		if status < 200 || status > 599 {
			return
		}
		method := http.MethodGet
		if head {
			method = http.MethodHead
		}
		writes := strings.Split(body, "|")
		got := play(t, method, func(w *responseWriter) {
			for _, line := range strings.Split(fields, "\n") {
				if k, v, ok := strings.Cut(line, ": "); ok {
					w.Header().Add(k, v)
				}
			}
			w.WriteHeader(status)
			for _, s := range writes {
				w.Write([]byte(s))
			}
		})
		want := strings.Join(writes, "")
		if head || !bodyAllowed(status) {
			want = ""
		}
		if got.Length >= 0 && int64(len(want)) > got.Length {
			want = want[:got.Length]
		}
		if got.Body != want {
			t.Errorf("body %q, want %q", got.Body, want)
		}
		if got.KeepOpen && got.After != "" {
			t.Errorf("bytes after a response the connection keeps: %q", got.After)
		}
		if got.KeepOpen && !head && bodyAllowed(status) && got.Length >= 0 && int64(len(got.Body)) != got.Length {
			t.Errorf("kept a connection with %d of %d bytes", len(got.Body), got.Length)
		}
	})
}

// TestPlainValue: a value plainValue lets through as it is is one the
// careful way (trim, newlines to spaces, drop a control) leaves unchanged;
// the rest take the careful way.
func TestPlainValue(t *testing.T) {
	tests := []struct {
		v     string
		plain bool
	}{
		{"", true}, {"text/css", true}, {`W/"1b58-60d"`, true}, {"a b", true},
		{" a", false}, {"a ", false}, {"\ta", false}, {"a\t", false}, {"a\tb", false},
		{"a\r\nb", false}, {"a\nb", false}, {"a\x00b", false}, {"a\x7fb", false}, {"a\x1fb", false},
	}
	for _, tt := range tests {
		if got := plainValue(tt.v); got != tt.plain {
			t.Errorf("plainValue(%q) = %v, want %v", tt.v, got, tt.plain)
		}
		careful := newlineToSpace.Replace(strings.Trim(tt.v, " \t"))
		if tt.plain && (careful != tt.v || !validValue(careful)) {
			t.Errorf("%q is plain but the careful way gives %q (valid %v)", tt.v, careful, validValue(careful))
		}
	}
}
