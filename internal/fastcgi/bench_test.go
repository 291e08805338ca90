package fastcgi

import (
	"bytes"
	"context"
	"io"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// benchParams resembles what the node agent sends for a WordPress page.
var benchParams = map[string]string{
	"GATEWAY_INTERFACE":    "CGI/1.1",
	"SERVER_SOFTWARE":      "scalepress",
	"SERVER_PROTOCOL":      "HTTP/1.1",
	"REQUEST_METHOD":       "GET",
	"REQUEST_URI":          "/2024/05/hello-world/?utm_source=bench",
	"QUERY_STRING":         "utm_source=bench",
	"REQUEST_SCHEME":       "https",
	"HTTPS":                "on",
	"DOCUMENT_ROOT":        "/srv/wordpress",
	"SCRIPT_FILENAME":      "/srv/wordpress/index.php",
	"SCRIPT_NAME":          "/index.php",
	"REMOTE_ADDR":          "203.0.113.7",
	"REMOTE_PORT":          "53122",
	"SERVER_NAME":          "blog.example.com",
	"SERVER_ADDR":          "10.0.0.5",
	"SERVER_PORT":          "443",
	"HTTP_HOST":            "blog.example.com",
	"HTTP_USER_AGENT":      "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
	"HTTP_ACCEPT":          "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
	"HTTP_ACCEPT_LANGUAGE": "en-US,en;q=0.9",
	"HTTP_ACCEPT_ENCODING": "gzip, deflate, br",
	"HTTP_COOKIE":          "wordpress_test_cookie=WP%20Cookie%20check; wp-settings-time-1=1700000000",
}

// cannedResponse is a complete php-fpm answer with a body of n bytes.
func cannedResponse(n int) []byte {
	w := &fakeResponder{}
	w.respond("Content-type: text/html; charset=UTF-8\r\nLink: <https://blog.example.com/wp-json/>; rel=\"https://api.w.org/\"\r\n\r\n" + strings.Repeat("x", n))
	return w.buf
}

func BenchmarkRoundTrip(b *testing.B) {
	benches := []struct {
		name     string
		respSize int
		body     []byte
		parallel bool
		cancel   bool // a cancelable context, as Forward has
	}{
		{name: "get-4KiB", respSize: 4 << 10},
		{name: "get-4KiB-cancelable-ctx", respSize: 4 << 10, cancel: true},
		{name: "get-64KiB", respSize: 64 << 10},
		{name: "post-16KiB", respSize: 1 << 10, body: bytes.Repeat([]byte("p"), 16<<10)},
		{name: "get-4KiB-parallel", respSize: 4 << 10, parallel: true},
	}
	for _, bb := range benches {
		b.Run(bb.name, func(b *testing.B) {
			canned := cannedResponse(bb.respSize)
			srv := newFakeServer(b, func(_ *fakeRequest, w *fakeResponder) { w.raw(canned) })
			cfg := DefaultConfig()
			c := srv.client(cfg)
			params := benchParams
			if bb.body != nil {
				params = map[string]string{}
				for k, v := range benchParams {
					params[k] = v
				}
				params["REQUEST_METHOD"] = "POST"
				params["CONTENT_LENGTH"] = strconv.Itoa(len(bb.body))
			}
			ctx := context.Background()
			if bb.cancel {
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				defer cancel()
			}
			one := func(r *bytes.Reader) {
				var body io.Reader
				if bb.body != nil {
					r.Reset(bb.body)
					body = r
				}
				resp, err := c.Do(ctx, params, body)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, resp.Body); err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
			}
			b.ReportAllocs()
			b.SetBytes(int64(bb.respSize + len(bb.body)))
			if bb.parallel {
				b.RunParallel(func(pb *testing.PB) {
					r := bytes.NewReader(nil)
					for pb.Next() {
						one(r)
					}
				})
				return
			}
			r := bytes.NewReader(nil)
			for b.Loop() {
				one(r)
			}
		})
	}
}

// BenchmarkForward is the node agent's path: an HTTP request in, php-fpm's
// answer written to w. Request bodies are read whole before a connection is
// taken (in memory up to Config.BodyMemory, then a temp file).
func BenchmarkForward(b *testing.B) {
	benches := []struct {
		name string
		body int
	}{
		{name: "get", body: 0},
		{name: "post-2KiB", body: 2 << 10},
		{name: "post-1MiB", body: 1 << 20},
	}
	for _, bb := range benches {
		b.Run(bb.name, func(b *testing.B) {
			canned := cannedResponse(4 << 10)
			srv := newFakeServer(b, func(_ *fakeRequest, w *fakeResponder) { w.raw(canned) })
			cfg := DefaultConfig()
			cfg.BodyDir = b.TempDir()
			c := srv.client(cfg)
			body := bytes.Repeat([]byte("p"), bb.body)
			params := map[string]string{"SCRIPT_FILENAME": "/srv/wordpress/index.php", "SCRIPT_NAME": "/index.php"}
			br := bytes.NewReader(nil)
			b.ReportAllocs()
			b.SetBytes(int64(bb.body))
			for b.Loop() {
				method := "GET"
				if bb.body > 0 {
					method = "POST"
				}
				br.Reset(body)
				r := httptest.NewRequest(method, "/wp-admin/admin-ajax.php", io.NopCloser(br))
				r.ContentLength = int64(bb.body)
				if err := c.Forward(httptest.NewRecorder(), r, params); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
