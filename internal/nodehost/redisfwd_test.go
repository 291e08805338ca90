package nodehost

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/scalepress/scalepress/internal/statedir"
)

// fakeRedis answers every line with its name until the connection ends.
func fakeRedis(t *testing.T, name string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					if _, err := r.ReadString('\n'); err != nil {
						return
					}
					io.WriteString(c, name+"\n")
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// TestRedisForwarder: each connection on the node's socket reaches the
// redis the rendered file names at that moment (a moved redis gets the
// next connections); no redis registered closes the connection at once;
// the socket is 0660; Serve ends with ctx, open connections included.
func TestRedisForwarder(t *testing.T) {
	a, b := fakeRedis(t, "a"), fakeRedis(t, "b")
	dir := t.TempDir()
	from := filepath.Join(dir, "redis-server")
	f := RedisForwarder{Socket: filepath.Join(dir, "redis.sock"), From: from, GID: -1, Logger: slog.New(slog.DiscardHandler)}
	ln, err := f.Listen()
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(f.Socket); err != nil || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode %v (%v), want 0660", fi.Mode(), err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { defer close(served); f.Serve(ctx, ln) }()

	ask := func() (net.Conn, string) {
		c, err := net.Dial("unix", f.Socket)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "PING\n")
		line, _ := bufio.NewReader(c).ReadString('\n')
		return c, line
	}
	if c, got := ask(); got != "" {
		t.Errorf("no file: answered %q, want the connection closed", got)
		c.Close()
	}
	steps := []struct{ file, want string }{
		{"http://" + a + "\n", "a\n"},
		{"\nhttp://" + b + "\nhttp://" + a + "\n", "b\n"},
		{"", ""},
	}
	var held net.Conn
	for _, st := range steps {
		if err := os.WriteFile(from, []byte(st.file), 0o644); err != nil {
			t.Fatal(err)
		}
		c, got := ask()
		if got != st.want {
			t.Errorf("file %q: answered %q, want %q", st.file, got, st.want)
		}
		if held == nil && got != "" {
			held = c // kept open across ctx's end
		} else {
			c.Close()
		}
	}
	cancel()
	select {
	case <-served:
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after ctx ended with a connection open")
	}
	held.SetDeadline(time.Now().Add(time.Second))
	if _, err := held.Read(make([]byte, 1)); err == nil {
		t.Error("a connection still open after Serve returned")
	}
}

// TestRedisSocketPath: wp-config's socket, relative to the docroot, is the
// one node-host listens on in the node's run directory.
func TestRedisSocketPath(t *testing.T) {
	lay := statedir.Layout{Dir: "/srv/scalepress"}
	got := filepath.Join(lay.Docroot("node-2"), RedisSocket)
	if want := filepath.Join(lay.NodeRun("node-2"), "redis.sock"); got != want {
		t.Errorf("wp-config's socket %s, node-host's %s", got, want)
	}
}
