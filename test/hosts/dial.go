package hosts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ErrNotInside is returned when a socket was not in the namespace it was
// meant to be created in; the connection is never attempted.
var ErrNotInside = errors.New("socket is not inside the host's namespace")

// DialContext connects to addr from inside h's namespace: the socket is
// created on an OS thread that entered the namespace with setns(2), and its
// namespace is checked before it connects. The thread is never given back to
// the Go scheduler (the goroutine exits locked, so the runtime ends the
// thread), and there is no fallback to the root namespace on any error.
//
// addr must be an IP literal and port: a name lookup would run in the root
// namespace.
func (h *Host) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s from %s: %w", addr, h.Name, err)
	}
	if _, err := netip.ParseAddr(host); err != nil {
		return nil, fmt.Errorf("dial %s from %s: want an IP address, not a name (a lookup would run in the root namespace)", addr, h.Name)
	}
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// No UnlockOSThread: this thread's namespace is changed, so it
		// must die with the goroutine.
		runtime.LockOSThread()
		c, err := dialIn(ctx, h.nsPath(), network, addr, true)
		ch <- result{c, err}
	}()
	r := <-ch
	if r.err != nil {
		return nil, fmt.Errorf("dial %s from %s: %w", addr, h.Name, r.err)
	}
	return r.c, nil
}

func (h *Host) nsPath() string { return filepath.Join(netnsDir, h.NS) }

// dialIn dials from the namespace at nsPath. The caller's goroutine must be
// locked to a thread it will never give back. enter is false only in the
// test that shows the socket check refusing a socket made in the wrong
// namespace.
func dialIn(ctx context.Context, nsPath, network, addr string, enter bool) (net.Conn, error) {
	f, err := os.Open(nsPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var want syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &want); err != nil {
		return nil, err
	}
	if enter {
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			return nil, fmt.Errorf("setns %s: %w", nsPath, err)
		}
	}
	d := net.Dialer{
		// Runs after the socket is made and before it connects: a socket
		// that is not in the host's namespace never sends a packet.
		Control: func(_, _ string, rc syscall.RawConn) error {
			var err error
			if cerr := rc.Control(func(fd uintptr) { err = socketIn(int(fd), want.Ino) }); cerr != nil {
				return cerr
			}
			return err
		},
	}
	return d.DialContext(ctx, network, addr)
}

// socketIn checks that the socket fd lives in the network namespace with
// inode ino (SIOCGSKNS gives a descriptor of the socket's namespace).
func socketIn(fd int, ino uint64) error {
	nsfd, err := unix.IoctlRetInt(fd, unix.SIOCGSKNS)
	if err != nil {
		return fmt.Errorf("SIOCGSKNS: %w", err)
	}
	defer unix.Close(nsfd)
	var st unix.Stat_t
	if err := unix.Fstat(nsfd, &st); err != nil {
		return fmt.Errorf("fstat namespace: %w", err)
	}
	if st.Ino != ino {
		return ErrNotInside
	}
	return nil
}

// HTTPClient returns h's HTTP client: its connections are made from inside
// h, with no proxy from the environment. URLs must use IP addresses. The
// client is shared by every caller (so its idle connections are reused, not
// piled up against servers' per-client limits): do not modify it; build a
// Transport on h.DialContext for other settings.
func (h *Host) HTTPClient() *http.Client {
	h.clientOnce.Do(func() {
		h.client = &http.Client{
			Transport: &http.Transport{
				Proxy:               nil,
				DialContext:         h.DialContext,
				MaxIdleConnsPerHost: 16,
				IdleConnTimeout:     30 * time.Second,
			},
			Timeout: 30 * time.Second,
		}
	})
	return h.client
}

// Forward listens on 127.0.0.1:0 in the root namespace and connects every
// accepted connection to target from inside h, so that a program in the root
// namespace (the scalepress CLI, curl) can reach target without a route to
// the test subnet. It returns the listener's address ("127.0.0.1:PORT");
// t.Cleanup closes it and every forwarded connection.
func (h *Host) Forward(t testing.TB, target string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("hosts: forward: %v", err)
	}
	f := &forwarder{h: h, target: target, ln: ln, conns: map[net.Conn]bool{}}
	f.wg.Add(1)
	go f.serve()
	t.Cleanup(f.close)
	return ln.Addr().String()
}

type forwarder struct {
	h      *Host
	target string
	ln     net.Listener
	wg     sync.WaitGroup

	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]bool
}

func (f *forwarder) serve() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.wg.Add(1)
		go f.pipe(c)
	}
}

// track registers c for close; false when the forwarder is closing.
func (f *forwarder) track(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.conns[c] = true
	return true
}

func (f *forwarder) pipe(in net.Conn) {
	defer f.wg.Done()
	defer in.Close()
	if !f.track(in) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	out, err := f.h.DialContext(ctx, "tcp", f.target)
	cancel()
	if err != nil {
		return // the client sees the connection closed
	}
	defer out.Close()
	if !f.track(out) {
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(out, in)
		if cw, ok := out.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
	}()
	_, _ = io.Copy(in, out)
	if cw, ok := in.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	<-done
	f.mu.Lock()
	delete(f.conns, in)
	delete(f.conns, out)
	f.mu.Unlock()
}

func (f *forwarder) close() {
	f.mu.Lock()
	f.closed = true
	f.ln.Close()
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}
