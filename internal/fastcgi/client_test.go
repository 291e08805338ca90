package fastcgi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.MaxConns, cfg.MaxIdle = 4, 4
	return cfg
}

var getParams = map[string]string{
	"SCRIPT_FILENAME": "/srv/www/index.php",
	"REQUEST_METHOD":  "GET",
	"REQUEST_URI":     "/",
}

func TestConfigValidate(t *testing.T) {
	valid := DefaultConfig()
	valid.Address = "/run/php.sock"
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr string
	}{
		{name: "valid", mod: func(*Config) {}},
		{name: "tcp", mod: func(c *Config) { c.Network, c.Address = "tcp", "127.0.0.1:9000" }},
		{name: "bad network", mod: func(c *Config) { c.Network = "udp" }, wantErr: "fastcgi: config.network: must be \"unix\" or \"tcp\", got \"udp\""},
		{name: "empty address", mod: func(c *Config) { c.Address = "" }, wantErr: "fastcgi: config.address: must not be empty"},
		{name: "zero max conns", mod: func(c *Config) { c.MaxConns = 0 }, wantErr: "fastcgi: config.max_conns: must be at least 1, got 0"},
		{name: "max idle above max conns", mod: func(c *Config) { c.MaxIdle = c.MaxConns + 1 }, wantErr: "fastcgi: config.max_idle: must be between 0 and max_conns (8), got 9"},
		{name: "negative max idle", mod: func(c *Config) { c.MaxIdle = -1 }, wantErr: "fastcgi: config.max_idle: must be between 0 and max_conns (8), got -1"},
		{name: "zero idle timeout", mod: func(c *Config) { c.IdleTimeout = 0 }, wantErr: "fastcgi: config.idle_timeout: must be positive, got 0s"},
		{name: "zero dial timeout", mod: func(c *Config) { c.DialTimeout = 0 }, wantErr: "fastcgi: config.dial_timeout: must be positive, got 0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid
			tt.mod(&cfg)
			err := cfg.Validate()
			if diff := cmp.Diff(tt.wantErr, errString(err)); diff != "" {
				t.Errorf("Validate() error mismatch (-want +got):\n%s", diff)
			}
			if _, nerr := New(cfg); (nerr == nil) != (err == nil) {
				t.Errorf("New() error = %v, Validate() error = %v", nerr, err)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestDoResponses(t *testing.T) {
	bigBody := strings.Repeat("0123456789abcdef", 20000) // 320000 bytes
	bigStderr := strings.Repeat("e", 100<<10)
	tests := []struct {
		name        string
		script      func(w *fakeResponder)
		wantStatus  int
		wantHeader  http.Header
		wantBody    string
		wantStderr  string
		wantErr     error  // from Do, matched with errors.Is
		wantErrText string // from Do, substring
		wantReadErr error  // from reading Body
		wantReuse   bool   // connection idle in the pool afterwards
	}{
		{
			name:       "plain 200 with body",
			script:     func(w *fakeResponder) { w.respond("Content-type: text/html; charset=UTF-8\r\n\r\n<h1>hi</h1>") },
			wantStatus: 200,
			wantHeader: http.Header{"Content-Type": {"text/html; charset=UTF-8"}},
			wantBody:   "<h1>hi</h1>",
			wantReuse:  true,
		},
		{
			name:       "status 404",
			script:     func(w *fakeResponder) { w.respond("Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\nnope") },
			wantStatus: 404,
			wantHeader: http.Header{"Content-Type": {"text/plain"}},
			wantBody:   "nope",
			wantReuse:  true,
		},
		{
			name:       "location without status is 302",
			script:     func(w *fakeResponder) { w.respond("Location: https://example.com/x\r\n\r\n") },
			wantStatus: 302,
			wantHeader: http.Header{"Location": {"https://example.com/x"}},
			wantReuse:  true,
		},
		{
			name:       "location with status keeps status",
			script:     func(w *fakeResponder) { w.respond("Status: 301\r\nLocation: /y\r\n\r\n") },
			wantStatus: 301,
			wantHeader: http.Header{"Location": {"/y"}},
			wantReuse:  true,
		},
		{
			name: "headers split across records",
			script: func(w *fakeResponder) {
				for _, part := range []string{"Content-Ty", "pe: text/plain\r", "\nX-A:  1 \r\nX-A: 2\r\n\r", "\nbo", "dy"} {
					w.stdout(part)
				}
				w.record(typeStdout, requestID, nil)
				w.end(0, statusRequestComplete)
			},
			wantStatus: 200,
			wantHeader: http.Header{"Content-Type": {"text/plain"}, "X-A": {"1", "2"}},
			wantBody:   "body",
			wantReuse:  true,
		},
		{
			name:       "LF line endings",
			script:     func(w *fakeResponder) { w.respond("Status: 201 Created\nX-B: b\n\nbody\n\nmore") },
			wantStatus: 201,
			wantHeader: http.Header{"X-B": {"b"}},
			wantBody:   "body\n\nmore",
			wantReuse:  true,
		},
		{
			name:       "empty header block",
			script:     func(w *fakeResponder) { w.respond("\r\nraw") },
			wantStatus: 200,
			wantHeader: http.Header{},
			wantBody:   "raw",
			wantReuse:  true,
		},
		{
			name: "large multi-record body with stderr interleaved",
			script: func(w *fakeResponder) {
				w.stdout("Content-Type: application/octet-stream\r\n\r\n")
				w.stderr("PHP Warning: one\n")
				w.stdout(bigBody[:100000])
				w.stderr("PHP Warning: two\n")
				w.stdout(bigBody[100000:])
				w.record(typeStdout, requestID, nil)
				w.end(0, statusRequestComplete)
			},
			wantStatus: 200,
			wantHeader: http.Header{"Content-Type": {"application/octet-stream"}},
			wantBody:   bigBody,
			wantStderr: "PHP Warning: one\nPHP Warning: two\n",
			wantReuse:  true,
		},
		{
			name: "stderr bounded to 64 KiB",
			script: func(w *fakeResponder) {
				w.stderr(bigStderr)
				w.respond("\r\n")
			},
			wantStatus: 200,
			wantHeader: http.Header{},
			wantStderr: bigStderr[:maxStderr],
			wantReuse:  true,
		},
		{
			name:    "cant mpx conn",
			script:  func(w *fakeResponder) { w.end(0, statusCantMpxConn) },
			wantErr: ErrCantMpxConn,
		},
		{
			name:    "overloaded",
			script:  func(w *fakeResponder) { w.end(0, statusOverloaded) },
			wantErr: ErrOverloaded,
		},
		{
			name: "unknown protocol status",
			script: func(w *fakeResponder) {
				w.end(0, 9)
			},
			wantErr: ErrProtocol,
		},
		{
			name: "bad status after headers",
			script: func(w *fakeResponder) {
				w.stdout("X: y\r\n\r\nbody")
				w.end(0, statusOverloaded)
			},
			wantStatus:  200,
			wantHeader:  http.Header{"X": {"y"}},
			wantBody:    "body",
			wantReadErr: ErrOverloaded,
		},
		{
			name:        "malformed header line",
			script:      func(w *fakeResponder) { w.respond("X-Ok: 1\r\nbogus line\r\n\r\n") },
			wantErrText: `fastcgi: malformed response header line "bogus line"`,
		},
		{
			name:        "space in header name",
			script:      func(w *fakeResponder) { w.respond("Bad Name: 1\r\n\r\n") },
			wantErrText: `fastcgi: malformed response header line "Bad Name: 1"`,
		},
		{
			name:        "malformed status",
			script:      func(w *fakeResponder) { w.respond("Status: OK\r\n\r\n") },
			wantErrText: `fastcgi: malformed Status header "OK"`,
		},
		{
			name:    "header too large",
			script:  func(w *fakeResponder) { w.respond(strings.Repeat("X-Filler: 0123456789\r\n", 4000) + "\r\n") },
			wantErr: ErrHeaderTooLarge,
		},
		{
			name:    "stdout ends inside header block",
			script:  func(w *fakeResponder) { w.respond("X-A: 1\r\n") },
			wantErr: errHeaderUnterminated,
		},
		{
			name:    "unexpected request id",
			script:  func(w *fakeResponder) { w.record(typeStdout, 2, []byte("X: y\r\n\r\n")) },
			wantErr: ErrProtocol,
		},
		{
			name:    "unknown record type",
			script:  func(w *fakeResponder) { w.record(typeGetValuesResult, requestID, nil) },
			wantErr: ErrProtocol,
		},
		{
			name:    "bad version",
			script:  func(w *fakeResponder) { w.raw([]byte{2, byte(typeStdout), 0, 1, 0, 0, 0, 0}) },
			wantErr: ErrProtocol,
		},
		{
			name:    "short END_REQUEST",
			script:  func(w *fakeResponder) { w.record(typeEndRequest, requestID, []byte{0, 0, 0, 0}) },
			wantErr: ErrProtocol,
		},
		{
			name:    "connection closed before response",
			script:  func(w *fakeResponder) { w.closeConn() },
			wantErr: io.ErrUnexpectedEOF,
		},
		{
			name: "connection closed mid-response",
			script: func(w *fakeResponder) {
				w.stdout("Content-Type: text/plain\r\n\r\npartial")
				w.closeConn()
			},
			wantStatus:  200,
			wantHeader:  http.Header{"Content-Type": {"text/plain"}},
			wantBody:    "partial",
			wantReadErr: io.ErrUnexpectedEOF,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeServer(t, func(_ *fakeRequest, w *fakeResponder) { tt.script(w) })
			c := srv.client(testConfig())
			resp, err := c.Do(context.Background(), getParams, nil)
			switch {
			case tt.wantErr != nil || tt.wantErrText != "":
				if err == nil {
					resp.Body.Close()
					t.Fatalf("Do() succeeded, want error")
				}
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Errorf("Do() error = %v, want %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErrText) {
					t.Errorf("Do() error = %q, want it to contain %q", err, tt.wantErrText)
				}
			case err != nil:
				t.Fatalf("Do() error = %v", err)
			default:
				body, rerr := io.ReadAll(resp.Body)
				if !errors.Is(rerr, tt.wantReadErr) {
					t.Errorf("reading body: error = %v, want %v", rerr, tt.wantReadErr)
				}
				if err := resp.Body.Close(); err != nil {
					t.Errorf("Body.Close() = %v", err)
				}
				got := struct {
					Status int
					Header http.Header
					Body   string
					Stderr string
				}{resp.Status, resp.Header, string(body), string(resp.Stderr())}
				want := got
				want.Status, want.Header, want.Body, want.Stderr = tt.wantStatus, tt.wantHeader, tt.wantBody, tt.wantStderr
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("response mismatch (-want +got):\n%s", diff)
				}
			}
			wantStats := Stats{}
			if tt.wantReuse {
				wantStats = Stats{Open: 1, Idle: 1}
			}
			if diff := cmp.Diff(wantStats, c.Stats()); diff != "" {
				t.Errorf("Stats() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDoSendsRequest(t *testing.T) {
	big := map[string]string{"REQUEST_METHOD": "GET"}
	for i := range 150 {
		big[fmt.Sprintf("HTTP_X_FILLER_%03d", i)] = strings.Repeat(string(rune('a'+i%26)), 1000)
	}
	body := make([]byte, 300_001)
	for i := range body {
		body[i] = byte(i * 7)
	}
	tests := []struct {
		name          string
		params        map[string]string
		body          io.Reader
		wantStdin     []byte
		minParamRecs  int
		minStdinRecs  int
		wantErrPrefix string
	}{
		{name: "small GET", params: getParams, minParamRecs: 1},
		{name: "no params", params: nil},
		{name: "params over 64 KiB split at pair boundaries", params: big, minParamRecs: 3},
		{
			name:         "POST body over 64 KiB",
			params:       map[string]string{"REQUEST_METHOD": "POST", "CONTENT_LENGTH": strconv.Itoa(len(body))},
			body:         bytes.NewReader(body),
			wantStdin:    body,
			minParamRecs: 1,
			minStdinRecs: 5,
		},
		{
			name:         "body from a reader returning small chunks",
			params:       map[string]string{"REQUEST_METHOD": "POST"},
			body:         &chunkReader{data: body[:5000], chunk: 7},
			wantStdin:    body[:5000],
			minParamRecs: 1,
			minStdinRecs: 1,
		},
		{
			name:          "single param too large",
			params:        map[string]string{"HTTP_COOKIE": strings.Repeat("c", maxWriteContent)},
			wantErrPrefix: `fastcgi: param "HTTP_COOKIE": 65544 bytes encoded, php-fpm accepts at most 65528 per param`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			type seen struct {
				Keep      bool
				Role      uint16
				Params    map[string]string
				StdinHash [32]byte
			}
			got := make(chan seen, 1)
			var paramRecs, stdinRecs []header
			srv := newFakeServer(t, func(q *fakeRequest, w *fakeResponder) {
				paramRecs = append([]header(nil), q.paramRecs...)
				stdinRecs = append([]header(nil), q.stdinRecs...)
				got <- seen{q.keep, q.role, q.Params(), sha256.Sum256(q.stdin)}
				w.respond("\r\n")
			})
			c := srv.client(testConfig())
			resp, err := c.Do(context.Background(), tt.params, tt.body)
			if tt.wantErrPrefix != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErrPrefix) {
					t.Fatalf("Do() error = %v, want prefix %q", err, tt.wantErrPrefix)
				}
				if n := srv.accepted.Load(); n != 0 {
					t.Errorf("accepted %d connections for an unencodable request, want 0", n)
				}
				return
			}
			if err != nil {
				t.Fatalf("Do() error = %v", err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			wantParams := tt.params
			if wantParams == nil {
				wantParams = map[string]string{}
			}
			want := seen{Keep: true, Role: roleResponder, Params: wantParams, StdinHash: sha256.Sum256(tt.wantStdin)}
			if diff := cmp.Diff(want, <-got); diff != "" {
				t.Errorf("request mismatch (-want +got):\n%s", diff)
			}
			if len(paramRecs) < tt.minParamRecs || len(stdinRecs) < tt.minStdinRecs {
				t.Errorf("got %d PARAMS and %d STDIN records, want at least %d and %d", len(paramRecs), len(stdinRecs), tt.minParamRecs, tt.minStdinRecs)
			}
			for _, h := range append(paramRecs, stdinRecs...) {
				if n := int(h.ContentLength); n > maxWriteContent || (n+int(h.PaddingLength))%8 != 0 {
					t.Errorf("record type %d: content %d padding %d; want content <= %d, padded to 8", h.Type, n, h.PaddingLength, maxWriteContent)
				}
			}
			if errs := srv.decodeErrors(); len(errs) > 0 {
				t.Errorf("server decode errors: %v", errs)
			}
		})
	}
}

type chunkReader struct {
	data  []byte
	chunk int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.chunk)], r.data)
	r.data = r.data[n:]
	return n, nil
}

type failingReader struct{ n int }

var errBodyBroken = errors.New("client went away")

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, errBodyBroken
	}
	n := min(len(p), r.n)
	r.n -= n
	return n, nil
}

func TestDoBodyReadError(t *testing.T) {
	srv := newFakeServer(t, func(_ *fakeRequest, w *fakeResponder) { w.respond("\r\n") })
	c := srv.client(testConfig())
	_, err := c.Do(context.Background(), getParams, &failingReader{n: 100_000})
	if !errors.Is(err, errBodyBroken) || !strings.HasPrefix(err.Error(), "fastcgi: read request body: ") {
		t.Fatalf("Do() error = %v, want read request body error wrapping %v", err, errBodyBroken)
	}
	if diff := cmp.Diff(Stats{}, c.Stats()); diff != "" {
		t.Errorf("Stats() mismatch (-want +got):\n%s", diff)
	}
}

func doGet(t *testing.T, c *Client) string {
	t.Helper()
	resp, err := c.Do(context.Background(), getParams, nil)
	if err != nil {
		t.Fatalf("Do() error = %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return string(b)
}

func TestKeepAliveReuse(t *testing.T) {
	srv := newFakeServer(t, func(q *fakeRequest, w *fakeResponder) {
		w.respond(fmt.Sprintf("\r\nreq %d keep %t", q.seq, q.keep))
	})
	c := srv.client(testConfig())
	for i := 1; i <= 10; i++ {
		if got, want := doGet(t, c), fmt.Sprintf("req %d keep true", i); got != want {
			t.Errorf("request %d: body %q, want %q", i, got, want)
		}
	}
	if n := srv.accepted.Load(); n != 1 {
		t.Errorf("accepted %d connections, want 1", n)
	}
	if diff := cmp.Diff(Stats{Open: 1, Idle: 1}, c.Stats()); diff != "" {
		t.Errorf("Stats() mismatch (-want +got):\n%s", diff)
	}
}

func TestMaxIdleZeroClosesConns(t *testing.T) {
	srv := newFakeServer(t, func(_ *fakeRequest, w *fakeResponder) { w.respond("\r\nok") })
	cfg := testConfig()
	cfg.MaxIdle = 0
	c := srv.client(cfg)
	for range 3 {
		doGet(t, c)
	}
	if n := srv.accepted.Load(); n != 3 {
		t.Errorf("accepted %d connections, want 3", n)
	}
	if diff := cmp.Diff(Stats{}, c.Stats()); diff != "" {
		t.Errorf("Stats() mismatch (-want +got):\n%s", diff)
	}
}

func TestMaxConnsEnforced(t *testing.T) {
	release := make(chan struct{})
	inFlight := make(chan struct{}, 10)
	srv := newFakeServer(t, func(_ *fakeRequest, w *fakeResponder) {
		inFlight <- struct{}{}
		<-release
		w.respond("\r\nok")
	})
	cfg := testConfig()
	cfg.MaxConns, cfg.MaxIdle = 2, 2
	c := srv.client(cfg)

	var wg sync.WaitGroup
	errs := make(chan error, 10)
	get := func() {
		defer wg.Done()
		resp, err := c.Do(context.Background(), getParams, nil)
		if err != nil {
			errs <- err
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	wg.Add(2)
	go get()
	go get()
	<-inFlight
	<-inFlight

	// A third request waits for a connection and gives up with its context.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	waitErr := make(chan error, 1)
	go func() {
		_, err := c.Do(ctx, getParams, nil)
		waitErr <- err
	}()
	waitFor(t, func() bool { return c.Stats().Waiting == 1 })
	if diff := cmp.Diff(Stats{Open: 2, Busy: 2, Waiting: 1}, c.Stats()); diff != "" {
		t.Errorf("Stats() while saturated mismatch (-want +got):\n%s", diff)
	}
	if err := <-waitErr; !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiting Do() error = %v, want %v", err, context.DeadlineExceeded)
	}

	// More requests queue and run once the first two finish.
	wg.Add(4)
	for range 4 {
		go get()
	}
	waitFor(t, func() bool { return c.Stats().Waiting == 4 })
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Do() error = %v", err)
	}
	if n := srv.accepted.Load(); n != 2 {
		t.Errorf("accepted %d connections, want 2", n)
	}
	if diff := cmp.Diff(Stats{Open: 2, Idle: 2}, c.Stats()); diff != "" {
		t.Errorf("Stats() after mismatch (-want +got):\n%s", diff)
	}
}

func TestConcurrentRequests(t *testing.T) {
	srv := newFakeServer(t, func(q *fakeRequest, w *fakeResponder) {
		w.respond("\r\n" + q.Params()["REQUEST_URI"])
	})
	cfg := testConfig()
	cfg.MaxConns, cfg.MaxIdle = 3, 2
	c := srv.client(cfg)
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			uri := fmt.Sprintf("/p/%d", i)
			resp, err := c.Do(context.Background(), map[string]string{"REQUEST_URI": uri}, nil)
			if err != nil {
				t.Errorf("Do() error = %v", err)
				return
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || string(b) != uri {
				t.Errorf("body %q, %v; want %q", b, err, uri)
			}
			if s := c.Stats(); s.Open > 3 {
				t.Errorf("Stats().Open = %d, want <= 3", s.Open)
			}
		}()
	}
	wg.Wait()
	if s := c.Stats(); s.Busy != 0 || s.Waiting != 0 || s.Idle > 2 || s.Open != s.Idle {
		t.Errorf("Stats() = %+v after all requests", s)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestContextCanceledWhileWaitingForResponse(t *testing.T) {
	closed := make(chan error, 1)
	srv := newFakeServer(t, func(q *fakeRequest, w *fakeResponder) {
		// Like php-fpm, notice the client going away by reading the socket.
		var b [1]byte
		_, err := q.conn.Read(b[:])
		closed <- err
		w.closed = true
	})
	c := srv.client(testConfig())
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.Do(ctx, getParams, nil)
	if !errors.Is(err, context.DeadlineExceeded) || err != ctx.Err() {
		t.Fatalf("Do() error = %v, want ctx.Err() = %v", err, ctx.Err())
	}
	select {
	case err := <-closed:
		if !errors.Is(err, io.EOF) {
			t.Errorf("server read error = %v, want EOF", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("server never saw the connection close")
	}
	if diff := cmp.Diff(Stats{}, c.Stats()); diff != "" {
		t.Errorf("Stats() mismatch (-want +got):\n%s", diff)
	}
}

func TestContextCanceledWhileReadingBody(t *testing.T) {
	release := make(chan struct{})
	srv := newFakeServer(t, func(_ *fakeRequest, w *fakeResponder) {
		w.stdout("\r\nfirst")
		w.flush()
		<-release
		w.closed = true
	})
	defer close(release)
	c := srv.client(testConfig())
	ctx, cancel := context.WithCancel(context.Background())
	resp, err := c.Do(ctx, getParams, nil)
	if err != nil {
		t.Fatalf("Do() error = %v", err)
	}
	buf := make([]byte, 64)
	n, err := resp.Body.Read(buf)
	if string(buf[:n]) != "first" || err != nil {
		t.Fatalf("Read() = %q, %v; want \"first\", nil", buf[:n], err)
	}
	time.AfterFunc(20*time.Millisecond, cancel)
	if _, err := resp.Body.Read(buf); err != context.Canceled {
		t.Errorf("Read() error = %v, want %v", err, context.Canceled)
	}
	resp.Body.Close()
	if diff := cmp.Diff(Stats{}, c.Stats()); diff != "" {
		t.Errorf("Stats() mismatch (-want +got):\n%s", diff)
	}
}

func TestCanceledContextDoesNotPoisonPooledConn(t *testing.T) {
	srv := newFakeServer(t, func(_ *fakeRequest, w *fakeResponder) { w.respond("\r\nok") })
	c := srv.client(testConfig())
	ctx, cancel := context.WithCancel(context.Background())
	resp, err := c.Do(ctx, getParams, nil)
	if err != nil {
		t.Fatalf("Do() error = %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	cancel() // after the request: the pooled connection must stay usable
	for range 3 {
		if got := doGet(t, c); got != "ok" {
			t.Errorf("body = %q, want ok", got)
		}
	}
	if n := srv.accepted.Load(); n != 1 {
		t.Errorf("accepted %d connections, want 1", n)
	}
}

func TestBodyClose(t *testing.T) {
	big := strings.Repeat("x", 1<<20)
	tests := []struct {
		name      string
		stdout    string
		wantStats Stats
	}{
		// END_REQUEST arrived with the header block: the request ended cleanly.
		{name: "unread small body keeps conn", stdout: "\r\nsmall", wantStats: Stats{Open: 1, Idle: 1}},
		// END_REQUEST not seen yet: the connection cannot be reused.
		{name: "unread large body closes conn", stdout: "\r\n" + big, wantStats: Stats{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeServer(t, func(_ *fakeRequest, w *fakeResponder) { w.respond(tt.stdout) })
			c := srv.client(testConfig())
			resp, err := c.Do(context.Background(), getParams, nil)
			if err != nil {
				t.Fatalf("Do() error = %v", err)
			}
			time.Sleep(10 * time.Millisecond) // let the small response arrive whole
			if err := resp.Body.Close(); err != nil {
				t.Errorf("Close() = %v", err)
			}
			if err := resp.Body.Close(); err != nil {
				t.Errorf("second Close() = %v", err)
			}
			if _, err := resp.Body.Read(make([]byte, 1)); err == nil {
				t.Errorf("Read() after Close succeeded")
			}
			if diff := cmp.Diff(tt.wantStats, c.Stats()); diff != "" {
				t.Errorf("Stats() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestServerClosedIdleConn(t *testing.T) {
	tests := []struct {
		name string
		// onSecond runs for the second request on a connection.
		onSecond     func(w *fakeResponder)
		closeAfter1  bool // close after answering the first request, like pm.max_requests
		body         io.Reader
		wantErr      bool
		wantAccepted int64
	}{
		{name: "closed after response is detected before reuse", closeAfter1: true, wantAccepted: 2},
		{name: "closed before answering is retried for GET", onSecond: (*fakeResponder).closeConn, wantAccepted: 2},
		{name: "closed before answering fails for POST", onSecond: (*fakeResponder).closeConn, body: strings.NewReader("a=b"), wantErr: true, wantAccepted: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeServer(t, func(q *fakeRequest, w *fakeResponder) {
				if q.seq == 2 && tt.onSecond != nil {
					tt.onSecond(w)
					return
				}
				w.respond("\r\nok")
				if tt.closeAfter1 {
					w.closeConn()
				}
			})
			c := srv.client(testConfig())
			doGet(t, c)
			time.Sleep(10 * time.Millisecond) // let the close arrive
			resp, err := c.Do(context.Background(), getParams, tt.body)
			if tt.wantErr {
				if err == nil {
					resp.Body.Close()
					t.Fatal("Do() succeeded, want error")
				}
			} else {
				if err != nil {
					t.Fatalf("Do() error = %v", err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			if n := srv.accepted.Load(); n != tt.wantAccepted {
				t.Errorf("accepted %d connections, want %d", n, tt.wantAccepted)
			}
		})
	}
}

func TestIdleTimeout(t *testing.T) {
	srv := newFakeServer(t, func(_ *fakeRequest, w *fakeResponder) { w.respond("\r\nok") })
	cfg := testConfig()
	cfg.IdleTimeout = 30 * time.Millisecond
	c := srv.client(cfg)
	doGet(t, c)
	waitFor(t, func() bool { return c.Stats() == Stats{} })
	doGet(t, c)
	if n := srv.accepted.Load(); n != 2 {
		t.Errorf("accepted %d connections, want 2", n)
	}
}

func TestClose(t *testing.T) {
	release := make(chan struct{})
	srv := newFakeServer(t, func(_ *fakeRequest, w *fakeResponder) {
		<-release
		w.respond("\r\nok")
	})
	cfg := testConfig()
	cfg.MaxConns, cfg.MaxIdle = 1, 1
	c := srv.client(cfg)

	first := make(chan error, 1)
	go func() {
		resp, err := c.Do(context.Background(), getParams, nil)
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		first <- err
	}()
	waitFor(t, func() bool { return c.Stats().Busy == 1 })
	waiter := make(chan error, 1)
	go func() {
		_, err := c.Do(context.Background(), getParams, nil)
		waiter <- err
	}()
	waitFor(t, func() bool { return c.Stats().Waiting == 1 })

	if err := c.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if err := <-waiter; !errors.Is(err, ErrClosed) {
		t.Errorf("waiting Do() error = %v, want %v", err, ErrClosed)
	}
	close(release)
	if err := <-first; err != nil {
		t.Errorf("in-flight request error = %v, want it to finish", err)
	}
	if _, err := c.Do(context.Background(), getParams, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Do() after Close error = %v, want %v", err, ErrClosed)
	}
	if diff := cmp.Diff(Stats{}, c.Stats()); diff != "" {
		t.Errorf("Stats() mismatch (-want +got):\n%s", diff)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close() = %v", err)
	}
}

func TestDialError(t *testing.T) {
	cfg := testConfig()
	cfg.Address = t.TempDir() + "/missing.sock"
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Do(context.Background(), getParams, nil)
	if err == nil || !strings.HasPrefix(err.Error(), "fastcgi: dial unix ") {
		t.Fatalf("Do() error = %v, want dial error", err)
	}
	if diff := cmp.Diff(Stats{}, c.Stats()); diff != "" {
		t.Errorf("Stats() mismatch (-want +got):\n%s", diff)
	}
}
