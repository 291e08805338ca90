package hosts

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// rootServer serves "root" on 127.0.0.1:0 in the root namespace.
func rootServer(t *testing.T) (ln net.Listener, accepted chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted = make(chan struct{}, 16)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "root") }),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				accepted <- struct{}{}
			}
		},
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return ln, accepted
}

// TestDialInsideNamespace: the root namespace and h1 both serve on the same
// 127.0.0.1 port; h1's client must reach h1's server. Loopback only: this
// test sends nothing to the test subnet, so it is safe to run with the
// namespace switch removed.
func TestDialInsideNamespace(t *testing.T) {
	n := New(t, Config{Hosts: []string{"h1"}})
	h1 := n.Hosts[0]
	ln, _ := rootServer(t)
	port := ln.Addr().(*net.TCPAddr).Port
	serve(t, h1, "127.0.0.1:"+strconv.Itoa(port), "h1")

	if got := waitGet(t, h1.HTTPClient(), "http://127.0.0.1:"+strconv.Itoa(port)+"/", 10*time.Second); got != "h1" {
		t.Fatalf("GET from h1 reached %q, want h1's own server", got)
	}
	if _, err := h1.DialContext(context.Background(), "tcp", "localhost:"+strconv.Itoa(port)); err == nil {
		t.Fatal("DialContext with a name: want an error (a lookup would run in the root namespace)")
	}
}

// TestSocketCheck: a socket created outside the host's namespace is refused
// before it connects.
func TestSocketCheck(t *testing.T) {
	n := New(t, Config{Hosts: []string{"h1"}})
	ln, accepted := rootServer(t)

	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		c, err := dialIn(context.Background(), n.Hosts[0].nsPath(), "tcp", ln.Addr().String(), false)
		if c != nil {
			c.Close()
		}
		errc <- err
	}()
	if err := <-errc; !errors.Is(err, ErrNotInside) {
		t.Fatalf("dial without entering the namespace: %v, want ErrNotInside", err)
	}
	// Close the listener: a connection the check let through would be
	// accepted before this.
	ln.Close()
	select {
	case <-accepted:
		t.Fatal("the root listener accepted a connection: the socket connected")
	default:
	}
}
