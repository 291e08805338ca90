package fastcgi

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// recorder counts WriteHeader calls on top of httptest.ResponseRecorder.
type recorder struct {
	*httptest.ResponseRecorder
	headerWrites int
}

func (r *recorder) WriteHeader(code int) {
	r.headerWrites++
	r.ResponseRecorder.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.headerWrites == 0 {
		r.WriteHeader(http.StatusOK)
	}
	return r.ResponseRecorder.Write(p)
}

func TestForwardParams(t *testing.T) {
	tests := []struct {
		name       string
		req        func() *http.Request
		params     map[string]string
		wantParams map[string]string
		wantStdin  string
	}{
		{
			name: "GET with headers",
			req: func() *http.Request {
				r := httptest.NewRequest("GET", "http://example.com:8080/blog/?p=1", nil)
				r.Header.Set("X-Foo", "bar")
				r.Header["X_under"] = []string{"dropped"}
				r.Header.Set("Proxy", "http://evil")
				r.Header["Cookie"] = []string{"a=1", "b=2"}
				r.Header["Accept"] = []string{"text/html", "*/*"}
				return r
			},
			params: map[string]string{"SCRIPT_FILENAME": "/srv/index.php", "REQUEST_URI": "/index.php?p=1", "HTTP_ACCEPT": "overridden"},
			wantParams: map[string]string{
				"SCRIPT_FILENAME":   "/srv/index.php",
				"GATEWAY_INTERFACE": "CGI/1.1",
				"SERVER_SOFTWARE":   "scalepress",
				"SERVER_PROTOCOL":   "HTTP/1.1",
				"REQUEST_METHOD":    "GET",
				"REQUEST_URI":       "/index.php?p=1",
				"QUERY_STRING":      "p=1",
				"REQUEST_SCHEME":    "http",
				"REMOTE_ADDR":       "192.0.2.1",
				"REMOTE_PORT":       "1234",
				"SERVER_NAME":       "example.com",
				"HTTP_HOST":         "example.com:8080",
				"HTTP_X_FOO":        "bar",
				"HTTP_COOKIE":       "a=1; b=2",
				"HTTP_ACCEPT":       "overridden",
			},
		},
		{
			name: "POST with body",
			req: func() *http.Request {
				r := httptest.NewRequest("POST", "https://example.com/wp-login.php", strings.NewReader("log=admin&pwd=x"))
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				return r
			},
			params: map[string]string{"SCRIPT_FILENAME": "/srv/wp-login.php"},
			wantParams: map[string]string{
				"SCRIPT_FILENAME":   "/srv/wp-login.php",
				"GATEWAY_INTERFACE": "CGI/1.1",
				"SERVER_SOFTWARE":   "scalepress",
				"SERVER_PROTOCOL":   "HTTP/1.1",
				"REQUEST_METHOD":    "POST",
				"REQUEST_URI":       "/wp-login.php",
				"REQUEST_SCHEME":    "https",
				"HTTPS":             "on",
				"REMOTE_ADDR":       "192.0.2.1",
				"REMOTE_PORT":       "1234",
				"SERVER_NAME":       "example.com",
				"HTTP_HOST":         "example.com",
				"CONTENT_TYPE":      "application/x-www-form-urlencoded",
				"CONTENT_LENGTH":    "15",
			},
			wantStdin: "log=admin&pwd=x",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			type seen struct {
				Params map[string]string
				Stdin  string
			}
			got := make(chan seen, 1)
			srv := newFakeServer(t, func(q *fakeRequest, w *fakeResponder) {
				got <- seen{q.Params(), string(q.stdin)}
				w.respond("\r\n")
			})
			c := srv.client(testConfig())
			if err := c.Forward(httptest.NewRecorder(), tt.req(), tt.params); err != nil {
				t.Fatalf("Forward() error = %v", err)
			}
			if diff := cmp.Diff(seen{tt.wantParams, tt.wantStdin}, <-got); diff != "" {
				t.Errorf("request mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestForwardResponse(t *testing.T) {
	big := strings.Repeat("z", 200_000)
	tests := []struct {
		name         string
		method       string
		script       func(w *fakeResponder)
		wantErr      error // errors.Is; nil for success
		wantErrText  string
		wantWritten  bool // status line written
		wantStatus   int
		wantHeader   http.Header
		wantBody     string
		wantStderr   string
		wantAccepted int64
	}{
		{
			name: "small response gets content length",
			script: func(w *fakeResponder) {
				w.respond("Status: 404 Not Found\r\nContent-Type: text/plain\r\nConnection: close\r\nX-A: 1\r\n\r\nmissing")
			},
			wantWritten: true,
			wantStatus:  404,
			wantHeader:  http.Header{"Content-Type": {"text/plain"}, "X-A": {"1"}, "Content-Length": {"7"}},
			wantBody:    "missing",
		},
		{
			name:        "HEAD gets no content length",
			method:      "HEAD",
			script:      func(w *fakeResponder) { w.respond("Content-Type: text/html\r\n\r\n") },
			wantWritten: true,
			wantStatus:  200,
			wantHeader:  http.Header{"Content-Type": {"text/html"}},
		},
		{
			name:        "redirect",
			script:      func(w *fakeResponder) { w.respond("Location: /wp-admin/\r\n\r\n") },
			wantWritten: true,
			wantStatus:  302,
			wantHeader:  http.Header{"Location": {"/wp-admin/"}, "Content-Length": {"0"}},
		},
		{
			name:        "large body streams",
			script:      func(w *fakeResponder) { w.respond("Content-Type: text/plain\r\n\r\n" + big) },
			wantWritten: true,
			wantStatus:  200,
			wantHeader:  http.Header{"Content-Type": {"text/plain"}},
			wantBody:    big,
		},
		{
			name: "stderr reported",
			script: func(w *fakeResponder) {
				w.stderr("PHP Notice: x")
				w.respond("\r\nok")
			},
			wantWritten: true,
			wantStatus:  200,
			wantHeader:  http.Header{"Content-Length": {"2"}},
			wantBody:    "ok",
			wantStderr:  "PHP Notice: x",
		},
		{
			name:        "malformed header writes nothing",
			script:      func(w *fakeResponder) { w.respond("nonsense\r\n\r\n") },
			wantErrText: "fastcgi: malformed response header line",
		},
		{
			name: "failure right after header writes nothing",
			script: func(w *fakeResponder) {
				w.stdout("X: y\r\n\r\n")
				w.end(0, statusOverloaded)
			},
			wantErr: ErrOverloaded,
		},
		{
			name:        "informational status writes nothing",
			script:      func(w *fakeResponder) { w.respond("Status: 103 Early Hints\r\n\r\n") },
			wantErrText: "informational status 103",
		},
		{
			name: "failure mid-body aborts",
			script: func(w *fakeResponder) {
				w.stdout("Content-Type: text/plain\r\n\r\n" + big)
				w.closeConn()
			},
			wantErr:     ErrAborted,
			wantWritten: true,
			wantStatus:  200,
			wantHeader:  http.Header{"Content-Type": {"text/plain"}},
			wantBody:    big,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeServer(t, func(_ *fakeRequest, w *fakeResponder) { tt.script(w) })
			cfg := testConfig()
			var stderr string
			cfg.OnStderr = func(_ *http.Request, p []byte) { stderr = string(p) }
			c := srv.client(cfg)
			method := tt.method
			if method == "" {
				method = "GET"
			}
			rec := &recorder{ResponseRecorder: httptest.NewRecorder()}
			err := c.Forward(rec, httptest.NewRequest(method, "/", nil), map[string]string{"SCRIPT_FILENAME": "/x.php"})
			if tt.wantErr == nil && tt.wantErrText == "" {
				if err != nil {
					t.Fatalf("Forward() error = %v", err)
				}
			} else {
				if err == nil {
					t.Fatal("Forward() succeeded, want error")
				}
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Errorf("Forward() error = %v, want %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErrText) {
					t.Errorf("Forward() error = %q, want it to contain %q", err, tt.wantErrText)
				}
				if aborted := errors.Is(err, ErrAborted); aborted != tt.wantWritten {
					t.Errorf("errors.Is(err, ErrAborted) = %t, want %t", aborted, tt.wantWritten)
				}
			}
			type result struct {
				Written bool
				Status  int
				Header  http.Header
				Body    string
				Stderr  string
			}
			got := result{rec.headerWrites > 0, rec.Code, rec.Header(), rec.Body.String(), stderr}
			want := result{tt.wantWritten, tt.wantStatus, tt.wantHeader, tt.wantBody, tt.wantStderr}
			if !tt.wantWritten {
				want.Status, want.Header = 200, http.Header{} // recorder defaults
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("written response mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestForwardClientGone(t *testing.T) {
	srv := newFakeServer(t, func(q *fakeRequest, w *fakeResponder) {
		var b [1]byte
		q.conn.Read(b[:]) // block until the client closes
		w.closed = true
	})
	c := srv.client(testConfig())
	ctx, cancel := context.WithCancel(context.Background())
	r := httptest.NewRequest("GET", "/", nil).WithContext(ctx)
	cancel()
	if err := c.Forward(httptest.NewRecorder(), r, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Forward() error = %v, want %v", err, context.Canceled)
	}
}

func TestForwardRetriesEmptyBodyOnClosedConn(t *testing.T) {
	srv := newFakeServer(t, func(q *fakeRequest, w *fakeResponder) {
		if q.seq == 2 { // php-fpm closed the connection instead of answering
			w.closeConn()
			return
		}
		w.respond("\r\nok")
	})
	c := srv.client(testConfig())
	for i := range 2 {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/", nil)
		r.Body = http.MaxBytesReader(rec, r.Body, 1<<20) // as the node agent does
		if err := c.Forward(rec, r, nil); err != nil {
			t.Fatalf("request %d: Forward() error = %v", i+1, err)
		}
		if got := rec.Body.String(); got != "ok" {
			t.Errorf("request %d: body = %q, want ok", i+1, got)
		}
	}
	if n := srv.accepted.Load(); n != 2 {
		t.Errorf("accepted %d connections, want 2", n)
	}
}

// TestForwardTiming: OnTiming sees each relayed response once, with the
// wait for a connection apart from PHP's time; a request that never got a
// response is not timed.
func TestForwardTiming(t *testing.T) {
	release := make(chan struct{})
	srv := newFakeServer(t, func(q *fakeRequest, w *fakeResponder) {
		if strings.Contains(string(q.rawParams), "/slow") {
			<-release
		}
		w.respond("\r\nok")
	})
	type timing struct{ wait, run time.Duration }
	var mu sync.Mutex
	var got []timing
	cfg := testConfig()
	cfg.MaxConns, cfg.MaxIdle = 1, 1
	cfg.OnTiming = func(wait, run time.Duration) {
		mu.Lock()
		got = append(got, timing{wait, run})
		mu.Unlock()
	}
	c := srv.client(cfg)
	slow := make(chan error, 1)
	go func() { slow <- c.Forward(httptest.NewRecorder(), httptest.NewRequest("GET", "/slow", nil), nil) }()
	waitFor(t, func() bool { return c.Stats().Busy == 1 })
	queued := make(chan error, 1)
	go func() { queued <- c.Forward(httptest.NewRecorder(), httptest.NewRequest("GET", "/queued", nil), nil) }()
	waitFor(t, func() bool { return c.Stats().Waiting == 1 })
	// One more waits and gives up: no response, no timing.
	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error, 1)
	go func() {
		gaveUp <- c.Forward(httptest.NewRecorder(), httptest.NewRequest("GET", "/gives-up", nil).WithContext(ctx), nil)
	}()
	waitFor(t, func() bool { return c.Stats().Waiting == 2 })
	cancel()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) {
		t.Fatalf("Forward() error = %v, want %v", err, context.Canceled)
	}
	close(release)
	for _, ch := range []chan error{slow, queued} {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 {
		t.Fatalf("OnTiming called %d times, want 2: %v", len(got), got)
	}
	// The queued request waited while /slow held the only connection.
	if queuedWait := got[1].wait; queuedWait <= 0 {
		t.Errorf("the queued request's wait = %s, want > 0", queuedWait)
	}
	for _, g := range got {
		if g.run <= 0 || g.wait < 0 {
			t.Errorf("timing %+v: want wait >= 0 and run > 0", g)
		}
	}
}
