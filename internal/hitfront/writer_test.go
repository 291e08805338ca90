package hitfront

import (
	"bufio"
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
		body     string
	}{
		{name: "200 with Date", status: 200, needDate: true, body: "hello"},
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
			w.reset(tt.head)
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
				if !w.finish() {
					t.Errorf("finish() = false after a framed response")
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
			if len(resp.Header["Date"]) != 1 {
				t.Errorf("Date = %q, want one", resp.Header["Date"])
			}
			if served.Load() != 1 {
				t.Errorf("served = %d, want 1", served.Load())
			}
		})
	}
}
