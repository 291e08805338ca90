package hitfront

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// testTLS returns a server config with a fresh self-signed ECDSA P-256
// certificate for "site.test" and 127.0.0.1 (ALPN h2 and http/1.1, as the
// edge's), and a client config that trusts it.
func testTLS(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "site.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"site.test"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}},
		NextProtos: []string{"h2", "http/1.1"}, MinVersion: tls.VersionTLS12}
	client = &tls.Config{RootCAs: pool, ServerName: "site.test", NextProtos: []string{"http/1.1"}}
	return server, client
}

// countingConn records each write on the connection under the *tls.Conn.
type countingConn struct {
	net.Conn
	mu     sync.Mutex
	writes [][]byte
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes = append(c.writes, append([]byte(nil), p...))
	c.mu.Unlock()
	return c.Conn.Write(p)
}

// take returns the writes since the last take.
func (c *countingConn) take() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.writes
	c.writes = nil
	return w
}

// countingListener hands out its connections as countingConns.
type countingListener struct {
	net.Listener
	conns chan *countingConn
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	cc := &countingConn{Conn: c}
	l.conns <- cc
	return cc, nil
}

// records splits TLS records out of b and returns their lengths.
func records(t *testing.T, b []byte) []int {
	t.Helper()
	var out []int
	for len(b) > 0 {
		if len(b) < 5 {
			t.Fatalf("%d bytes left, not a record header", len(b))
		}
		n := int(binary.BigEndian.Uint16(b[3:5]))
		if len(b) < 5+n {
			t.Fatalf("record of %d bytes cut at %d", n, len(b)-5)
		}
		out = append(out, n)
		b = b[5+n:]
	}
	return out
}

// TestTLSWholeResponse: over TLS, a response goes to crypto/tls in one
// Write (full 16 KB records, not one per piece of the writev) and to the
// connection in one write (the cork), for a block (a cache hit) and for
// a handler's header map and body alike. net/http wrote a record and a
// system call per 4 KB buffer flush.
func TestTLSWholeResponse(t *testing.T) {
	body := strings.Repeat("x", 52<<10)
	fields := []byte("Content-Type: text/html\r\nContent-Length: 53248\r\n")
	s, err := New(DefaultConfig(), func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/block" {
			w.(interface {
				WriteBlock(status int, needDate bool, fields, xcache, age, body []byte)
			}).WriteBlock(200, true, fields, []byte("X-Cache: HIT\r\n"), nil, []byte(body))
			return true
		}
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Content-Length", "53248")
		io.WriteString(w, body) // as the cache writes a body from a header map
		return true
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &countingListener{Listener: inner, conns: make(chan *countingConn, 1)}
	scfg, ccfg := testTLS(t)
	done := make(chan error, 1)
	go func() { done <- s.ServeTLS(ln, TLS{Config: scfg}) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		<-done
	}()
	c := target{addr: inner.Addr().String(), tls: ccfg}.dial(t)
	defer c.Close()
	cc := <-ln.conns
	br := bufio.NewReader(c)
	for _, path := range []string{"/block", "/map"} {
		// crypto/tls sends a new connection's first 128 KB in small
		// records (dynamic record sizing): past those, the records are full.
		for i := range 4 {
			cc.take()
			io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: site.test\r\n\r\n")
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			if string(b) != body {
				t.Fatalf("%s: body of %d bytes, want %d", path, len(b), len(body))
			}
			if i < 3 {
				continue
			}
			w := cc.take()
			if len(w) != 1 {
				t.Errorf("%s: %d writes on the connection for one response, want 1", path, len(w))
			}
			var got []int
			for _, p := range w {
				got = append(got, records(t, p)...)
			}
			// 52 KB and a header: three full records and the rest (each
			// full one 16 KB of data, a content type byte and a 16-byte tag).
			if len(got) != 4 || got[0] != 16<<10+17 || got[1] != got[0] || got[2] != got[0] {
				t.Errorf("%s: records of %v bytes, want three of %d and the rest", path, got, 16<<10+17)
			}
		}
	}
}

// TestTLSFixedHeader: TLS.Header's fields (the edge's HSTS) go out with
// every response, from a header map or a rendered block, unless the
// response has its own.
func TestTLSFixedHeader(t *testing.T) {
	type blockWriter interface {
		WriteBlock(status int, needDate bool, fields, xcache, age, body []byte)
	}
	s, err := New(DefaultConfig(), func(w http.ResponseWriter, r *http.Request) bool {
		switch r.URL.Path {
		case "/map":
			w.Header().Set("Content-Length", "2")
		case "/map-own":
			w.Header().Set("Strict-Transport-Security", "max-age=1")
			w.Header().Set("Content-Length", "2")
		case "/block":
			w.(blockWriter).WriteBlock(200, true, []byte("Content-Length: 2\r\n"), nil, nil, []byte("ok"))
			return true
		case "/block-own":
			w.(blockWriter).WriteBlock(404, true, []byte("Content-Length: 2\r\nStrict-Transport-Security: max-age=1\r\n"), nil, nil, []byte("ok"))
			return true
		}
		io.WriteString(w, "ok")
		return true
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	scfg, ccfg := testTLS(t)
	done := make(chan error, 1)
	hdr := http.Header{"Strict-Transport-Security": {"max-age=63072000"}, "Alt-Svc": {`h3=":443"; ma=86400`}}
	go func() { done <- s.ServeTLS(ln, TLS{Config: scfg, Header: hdr}) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		<-done
	}()
	c := target{addr: ln.Addr().String(), tls: ccfg}.dial(t)
	defer c.Close()
	br := bufio.NewReader(c)
	got := map[string][]string{}
	for _, path := range []string{"/map", "/map-own", "/block", "/block-own"} {
		io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: site.test\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		got[path] = append(resp.Header.Values("Strict-Transport-Security"), resp.Header.Values("Alt-Svc")...)
	}
	alt := `h3=":443"; ma=86400`
	want := map[string][]string{
		"/map": {"max-age=63072000", alt}, "/map-own": {"max-age=1", alt},
		"/block": {"max-age=63072000", alt}, "/block-own": {"max-age=1", alt},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Strict-Transport-Security and Alt-Svc per response (-want +got):\n%s", diff)
	}
}

// TestTLSProtocols: an h2 connection goes to net/http unread and is
// served there; a client speaking plain HTTP to the TLS port gets
// net/http's 400 and the failed handshake is reported.
func TestTLSProtocols(t *testing.T) {
	s, tg := front(t, true)
	var reported []string
	var mu sync.Mutex
	_ = s
	t.Run("h2 goes to net/http", func(t *testing.T) {
		cfg := tg.tls.Clone()
		cfg.NextProtos = []string{"h2"}
		tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}
		defer tr.CloseIdleConnections()
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", tg.addr)
		}
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://site.test/hit")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		got := answer{resp.StatusCode, via(resp.Header) + " " + resp.Proto, string(b)}
		if diff := cmp.Diff(answer{200, "net/http+tls HTTP/2.0", "GET /hit body="}, got); diff != "" {
			t.Errorf("h2 request (-want +got):\n%s", diff)
		}
	})
	t.Run("plain HTTP to the TLS port", func(t *testing.T) {
		s, err := New(DefaultConfig(), func(http.ResponseWriter, *http.Request) bool { return false }, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		scfg, _ := testTLS(t)
		done := make(chan error, 1)
		go func() {
			done <- s.ServeTLS(ln, TLS{Config: scfg, HandshakeError: func(_ net.Addr, reason string) {
				mu.Lock()
				reported = append(reported, reason)
				mu.Unlock()
			}})
		}()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: site.test\r\n\r\n")
		b, _ := io.ReadAll(c)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		<-done
		if !strings.HasPrefix(string(b), "HTTP/1.0 400 Bad Request\r\n") {
			t.Errorf("answer %q, want net/http's 400", b)
		}
		mu.Lock()
		defer mu.Unlock()
		if diff := cmp.Diff([]string{"client sent an HTTP request to an HTTPS server"}, reported); diff != "" {
			t.Errorf("handshake errors reported (-want +got):\n%s", diff)
		}
	})
}

// TestTLSHandshakeTimeout: a connection that does not complete its
// handshake within ReadHeaderTimeout (nothing sent, or a ClientHello cut
// short) is closed and reported, as net/http closes it: the slowloris
// defence of the plain path holds before the first request too.
func TestTLSHandshakeTimeout(t *testing.T) {
	cfg := DefaultConfig()
	scfg, _ := testTLS(t)
	tests := []struct {
		name string
		sent []byte
	}{
		{"nothing sent", nil},
		{"ClientHello cut short", []byte{0x16, 0x03, 0x01, 0x00, 0xf0, 0x01, 0x00}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var reported []string
				s, err := New(cfg, func(http.ResponseWriter, *http.Request) bool { return false }, slog.New(slog.DiscardHandler))
				if err != nil {
					t.Fatal(err)
				}
				client, server := net.Pipe()
				defer client.Close()
				s.track(server, true) // as the accept loop does
				done := make(chan struct{})
				go func() {
					defer close(done)
					defer s.wg.Done()
					s.serveTLSConn(server, &TLS{Config: scfg, HandshakeError: func(_ net.Addr, reason string) {
						reported = append(reported, reason)
					}})
				}()
				go io.Copy(io.Discard, client)
				if len(tt.sent) > 0 {
					client.Write(tt.sent)
				}
				time.Sleep(cfg.ReadHeaderTimeout + time.Second)
				synctest.Wait()
				select {
				case <-done:
				default:
					t.Errorf("the connection is still open %s after it began its handshake, want closed after %s", cfg.ReadHeaderTimeout+time.Second, cfg.ReadHeaderTimeout)
					client.Close()
					<-done
				}
				if len(reported) != 1 || !strings.Contains(reported[0], "timeout") {
					t.Errorf("handshake errors reported: %q, want one timeout", reported)
				}
				if n := len(s.conns); n != 0 {
					t.Errorf("%d connections still tracked, want none", n)
				}
			})
		})
	}
}

// TestTLSHandshakePanic: a panic in the handshake (the certificate
// callback) ends that connection, as in net/http; the server goes on.
func TestTLSHandshakePanic(t *testing.T) {
	s, err := New(DefaultConfig(), func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Content-Length", "2")
		io.WriteString(w, "ok")
		return true
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	scfg, ccfg := testTLS(t)
	cert := scfg.Certificates[0]
	scfg.Certificates = nil
	scfg.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if hello.ServerName == "panic.test" {
			panic("certificate callback bug")
		}
		return &cert, nil
	}
	done := make(chan error, 1)
	go func() { done <- s.ServeTLS(ln, TLS{Config: scfg}) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		<-done
	}()
	bad := ccfg.Clone()
	bad.ServerName = "panic.test"
	if c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second, Deadline: time.Now().Add(5 * time.Second)}, "tcp", ln.Addr().String(), bad); err == nil {
		c.Close()
		t.Fatal("handshake with a panicking certificate callback succeeded")
	}
	c := target{addr: ln.Addr().String(), tls: ccfg}.dial(t)
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: site.test\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("the next connection: %v", err)
	}
	if resp.StatusCode != 200 {
		t.Errorf("the next connection: status %d, want 200", resp.StatusCode)
	}
	s.mu.Lock()
	n := len(s.conns)
	s.mu.Unlock()
	if n != 1 {
		t.Errorf("%d connections tracked, want 1 (the panicking one untracked)", n)
	}
}

// countConn counts the bytes written to it and drops them.
type countConn struct {
	net.Conn
	n atomic.Int64
}

func (c *countConn) Write(p []byte) (int, error) { c.n.Add(int64(len(p))); return len(p), nil }

// TestCorkConcurrentWrite: crypto/tls may write to the connection under it
// from another goroutine (Shutdown's forced Close sends close_notify when
// no Write is in flight), between the serving goroutine's cork and uncork.
// Every byte of both reaches the connection, and (under -race, as `make
// unit` runs) the two never touch the cork's state at once.
func TestCorkConcurrentWrite(t *testing.T) {
	under := &countConn{}
	c := &corkConn{Conn: under}
	const rounds, resp, alert = 2000, 700, 31
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		p := make([]byte, resp)
		for range rounds {
			c.cork()
			c.Write(p)
			c.Write(p)
			if err := c.uncork(); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		p := make([]byte, alert)
		for range rounds {
			if _, err := c.Write(p); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	wg.Wait()
	if got, want := under.n.Load(), int64(rounds*(2*resp+alert)); got != want {
		t.Errorf("%d bytes reached the connection, want %d", got, want)
	}
}
