package fastcgi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// echoServer answers with CONTENT_LENGTH and the stdin PHP got.
func echoServer(t *testing.T) *fakeServer {
	return newFakeServer(t, func(q *fakeRequest, w *fakeResponder) {
		w.respond(fmt.Sprintf("\r\n%s:%s", q.Params()["CONTENT_LENGTH"], q.stdin))
	})
}

// failingBody returns data, then err.
type failingBody struct {
	data string
	err  error
}

func (b *failingBody) Read(p []byte) (int, error) {
	if b.data != "" {
		n := copy(p, b.data)
		b.data = b.data[n:]
		return n, nil
	}
	return 0, b.err
}

func (b *failingBody) Close() error { return nil }

func TestForwardBody(t *testing.T) {
	srv := echoServer(t)
	dir := t.TempDir()
	cfg := testConfig()
	cfg.BodyMemory, cfg.MaxBody, cfg.BodyDir = 16, 64, dir
	c := srv.client(cfg)
	tests := []struct {
		name     string
		body     io.Reader
		length   int64 // -1: chunked
		wantErr  error
		wantBody string
	}{
		{name: "in memory", body: strings.NewReader("hello"), length: 5, wantBody: "5:hello"},
		{name: "temp file", body: strings.NewReader(strings.Repeat("x", 40)), length: 40, wantBody: "40:" + strings.Repeat("x", 40)},
		{name: "exactly max", body: strings.NewReader(strings.Repeat("y", 64)), length: 64, wantBody: "64:" + strings.Repeat("y", 64)},
		{name: "chunked gets its length", body: strings.NewReader("hello"), length: -1, wantBody: "5:hello"},
		{name: "chunked in a temp file", body: strings.NewReader(strings.Repeat("z", 30)), length: -1, wantBody: "30:" + strings.Repeat("z", 30)},
		{name: "chunked empty", body: strings.NewReader(""), length: -1, wantBody: ":"},
		{name: "declared too large", body: strings.NewReader(""), length: 65, wantErr: ErrBodyTooLarge},
		{name: "chunked too large", body: strings.NewReader(strings.Repeat("z", 65)), length: -1, wantErr: ErrBodyTooLarge},
		{name: "client went away", body: &failingBody{"abc", io.ErrUnexpectedEOF}, length: 10, wantErr: ErrBodyRead},
		{name: "stalled", body: &failingBody{"abc", fmt.Errorf("read tcp: %w", os.ErrDeadlineExceeded)}, length: 10, wantErr: ErrBodyTimeout},
		{name: "limit of a MaxBytesReader", body: &failingBody{"abc", &http.MaxBytesError{Limit: 3}}, length: -1, wantErr: ErrBodyTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := srv.accepted.Load()
			r := httptest.NewRequest("POST", "/", io.NopCloser(tt.body))
			r.ContentLength = tt.length
			rec := httptest.NewRecorder()
			err := c.Forward(rec, r, getParams)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Forward() error = %v, want %v", err, tt.wantErr)
			}
			if got := rec.Body.String(); got != tt.wantBody {
				t.Errorf("PHP got %q, want %q", got, tt.wantBody)
			}
			if tt.wantErr != nil && srv.accepted.Load() != before {
				t.Errorf("a refused body reached php-fpm")
			}
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Errorf("temp files left: %v", left)
			}
		})
	}
}

// stepBody signals each Read that returned data, so a test knows the
// handler is past that point.
type stepBody struct {
	io.ReadCloser
	read chan<- int
}

func (b *stepBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.read <- n
	}
	return n, err
}

// TestForwardTakesNoWorkerBeforeTheBody sends half a body over a real
// connection and checks that no connection to php-fpm (a php-fpm child) is
// taken until the rest arrives.
func TestForwardTakesNoWorkerBeforeTheBody(t *testing.T) {
	srv := echoServer(t)
	cfg := testConfig()
	cfg.MaxConns, cfg.MaxIdle = 1, 1
	c := srv.client(cfg)
	read := make(chan int, 16)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = &stepBody{r.Body, read}
		if err := c.Forward(w, r, getParams); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
		}
	}))
	defer ts.Close()
	nc, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	fmt.Fprintf(nc, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello")
	<-read // the handler has the first half and waits for the rest
	if st := c.Stats(); st.Busy != 0 || st.Open != 0 || srv.accepted.Load() != 0 {
		t.Fatalf("a php-fpm connection is taken before the body arrived: %+v, accepted %d", st, srv.accepted.Load())
	}
	fmt.Fprintf(nc, "world")
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != "10:helloworld" {
		t.Errorf("got %d %q, want 200 %q", resp.StatusCode, b, "10:helloworld")
	}
}

// pipeListener hands out in-memory connections, so that an http.Server
// runs inside a synctest bubble with its deadlines on the fake clock.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *pipeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

func (l *pipeListener) dial() net.Conn {
	a, b := net.Pipe()
	l.conns <- a
	return b
}

// TestForwardBodyTimeout: a body that stops arriving fails with
// ErrBodyTimeout after BodyTimeout without a new byte, however long it has
// been trickling before; a body that keeps arriving is read.
func TestForwardBodyTimeout(t *testing.T) {
	tests := []struct {
		name     string
		steps    []time.Duration // wait before each byte of "abcd"; a wait at index 4 = never finish
		wantCode int
	}{
		{name: "steady trickle is read", steps: []time.Duration{0, 9 * time.Second, 9 * time.Second, 9 * time.Second}, wantCode: http.StatusBadGateway /* no php-fpm here */},
		{name: "stall after two bytes", steps: []time.Duration{0, 9 * time.Second, 11 * time.Second}, wantCode: http.StatusRequestTimeout},
		{name: "no byte at all", steps: nil, wantCode: http.StatusRequestTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := DefaultConfig()
				cfg.Network, cfg.Address = "unix", "/nonexistent/fpm.sock"
				cfg.BodyTimeout = 10 * time.Second
				c, err := New(cfg)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				ln := newPipeListener()
				srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					err := c.Forward(w, r, getParams)
					w.Header().Set("Connection", "close")
					switch {
					case errors.Is(err, ErrBodyTimeout):
						http.Error(w, err.Error(), http.StatusRequestTimeout)
					case err != nil:
						http.Error(w, err.Error(), http.StatusBadGateway)
					}
				})}
				go srv.Serve(ln)
				defer srv.Shutdown(context.Background())
				nc := ln.dial()
				var wg sync.WaitGroup
				defer wg.Wait() // after nc.Close, its writes fail
				defer nc.Close()
				wg.Go(func() {
					fmt.Fprintf(nc, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n")
					for i, d := range tt.steps {
						time.Sleep(d)
						if _, err := nc.Write([]byte{"abcd"[i]}); err != nil {
							return
						}
					}
				})
				resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if diff := cmp.Diff(tt.wantCode, resp.StatusCode); diff != "" {
					t.Errorf("status (-want +got):\n%s", diff)
				}
			})
		})
	}
}
