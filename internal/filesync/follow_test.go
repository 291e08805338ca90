package filesync

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestFirstServer(t *testing.T) {
	tests := []struct {
		in, want string
		err      bool
	}{
		{"http://10.77.0.12:21000\n", "http://10.77.0.12:21000", false},
		{"\n\n  http://10.77.0.13:2/ \nhttp://10.77.0.14:3\n", "http://10.77.0.13:2", false},
		{"https://files.example.test\n", "https://files.example.test", false},
		{"", "", true},
		{"\n \n", "", true},
		{"10.77.0.12:21000\n", "", true},
		{"http://10.77.0.12:21000/v1/files\n", "", true},
		{"ftp://x\n", "", true},
	}
	for _, tt := range tests {
		got, err := FirstServer(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("FirstServer(%q) = %q, %v; want %q (error %v)", tt.in, got, err, tt.want, tt.err)
		}
		if err != nil && !errors.Is(err, ErrNoServer) {
			t.Errorf("FirstServer(%q): %v is not ErrNoServer", tt.in, err)
		}
	}
}

func FuzzFirstServer(f *testing.F) {
	for _, s := range []string{"http://10.77.0.12:21000\n", "\nhttps://a/\nhttp://b\n", "", "x\n", "http://a/b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := FirstServer(s)
		if err != nil {
			if got != "" || !errors.Is(err, ErrNoServer) {
				t.Fatalf("FirstServer(%q) = %q, %v", s, got, err)
			}
			return
		}
		if !strings.HasPrefix(got, "http://") && !strings.HasPrefix(got, "https://") || strings.HasSuffix(got, "/") || strings.ContainsAny(got, "\n\r") {
			t.Fatalf("FirstServer(%q) = %q", s, got)
		}
	})
}

// TestFollowingClient: a client that follows a file asks the server the
// file names now, before each request: when the files role moves (the
// file is rewritten), the next request goes to the new one; no server
// named is an error the agent retries, not a request anywhere.
func TestFollowingClient(t *testing.T) {
	serve := func(name string) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"seq": 1, "entries": [], "name": "` + name + `"}`))
		}))
	}
	a, b := serve("a"), serve("b")
	defer a.Close()
	defer b.Close()
	hits := func(s *httptest.Server) string { return s.URL }
	file := filepath.Join(t.TempDir(), "files-server")
	c := NewFollowingClient(file, "node-1.tok", nil)
	ctx := context.Background()
	ask := func() (string, error) {
		var v struct{ Name string }
		err := c.getJSON(ctx, "/v1/manifest", &v)
		return v.Name, err
	}
	if _, err := ask(); !errors.Is(err, ErrNoServer) {
		t.Fatalf("no file: got %v, want ErrNoServer", err)
	}
	steps := []struct {
		content, want string
	}{
		{hits(a) + "\n", "a"},
		{hits(b) + "\n" + hits(a) + "\n", "b"},
		{hits(a) + "/\n", "a"},
	}
	for _, st := range steps {
		if err := os.WriteFile(file, []byte(st.content), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := ask()
		if err != nil || got != st.want {
			t.Errorf("file %q: asked %q (%v), want %q", st.content, got, err, st.want)
		}
	}
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ask(); !errors.Is(err, ErrNoServer) {
		t.Errorf("empty file: got %v, want ErrNoServer", err)
	}
}

// freezer relays TCP connections to target until freeze: then it drops the
// upstream side and keeps each client's side open and silent, as a host
// cut off does (no FIN, no RST).
type freezer struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	frozen bool
	ups    []net.Conn
	downs  []net.Conn
	wg     sync.WaitGroup
}

// newFreezer listens; set target before the first connection.
func newFreezer(t *testing.T) *freezer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln}
	f.wg.Go(func() {
		for {
			down, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			target := f.target
			f.mu.Unlock()
			up, err := net.Dial("tcp", target)
			if err != nil {
				down.Close()
				continue
			}
			f.mu.Lock()
			f.ups, f.downs = append(f.ups, up), append(f.downs, down)
			f.mu.Unlock()
			f.wg.Go(func() { io.Copy(up, down) })
			f.wg.Go(func() {
				io.Copy(down, up)
				f.mu.Lock()
				if !f.frozen {
					down.Close()
				}
				f.mu.Unlock()
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		f.mu.Lock()
		for _, c := range append(f.ups, f.downs...) {
			c.Close()
		}
		f.mu.Unlock()
		f.wg.Wait()
	})
	return f
}

func (f *freezer) url() string { return "http://" + f.ln.Addr().String() }

// freeze cuts the upstream side; the clients' connections stay open.
func (f *freezer) freeze() {
	f.mu.Lock()
	f.frozen = true
	ups := f.ups
	f.mu.Unlock()
	for _, c := range ups {
		c.Close()
	}
}

// TestAgentFollowsMovedRole: an agent that follows a files role that may
// move (ServerFile) reconnects its change stream as soon as the file names
// another role, even while the old one's connection stays open and silent
// (its host cut off): a change pushed to the new role reaches it without
// waiting for StreamTimeout (here longer than the wait).
func TestAgentFollowsMovedRole(t *testing.T) {
	base := t.TempDir()
	store := filepath.Join(base, "store")
	// The old role is reached through the freezer (its address is the
	// one the role answers to: the role checks the Host header).
	cut := newFreezer(t)
	old := startServer(t, store, "", func(c *Config) { c.Addr = cut.ln.Addr().String() })
	cut.mu.Lock()
	cut.target = old.addr
	cut.mu.Unlock()
	follow := filepath.Join(base, "files-server")
	if err := os.WriteFile(follow, []byte(cut.url()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var agents []*testAgent
	for _, name := range []string{"node-1", "node-2"} {
		ta := newTestAgent(t, old.url, base, name)
		ta.cfg.ServerFile = follow
		ta.cfg.StreamTimeout = 10 * time.Minute
		ta.restart()
		ta.bootstrap()
		ta.start()
		agents = append(agents, ta)
	}
	writer, reader := agents[0], agents[1]
	writer.write("wp-content/uploads/before.txt", "before")
	reader.waitContent("wp-content/uploads/before.txt", "before")

	// The old role's host is cut off; the role starts elsewhere over the
	// same store and the file names it.
	cut.freeze()
	old.kill()
	moved := startServer(t, store, "", nil)
	if err := os.WriteFile(follow, []byte(moved.url+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	writer.write("wp-content/uploads/after.txt", "after")
	reader.waitContent("wp-content/uploads/after.txt", "after")
}

// TestFollowingClientCutOnMove: a following client's request in flight to
// a role that went silent (its host cut off: no answer, no reset) is cut
// with ErrRoleMoved once the followed file names another role, whether it
// waits for the answer (a blob PUT, as a push does) or reads its body (a
// blob GET); not after its deadline (here 2 minutes, the wait the cut
// saves).
func TestFollowingClientCutOnMove(t *testing.T) {
	const hash = "a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447"
	for _, tc := range []struct {
		name string
		call func(ctx context.Context, c *Client) error
		// headers: the silent role sends the answer's headers and part of
		// its body first.
		headers bool
	}{
		{"put blob waits for the answer", func(ctx context.Context, c *Client) error {
			return c.PutBlob(ctx, hash, strings.NewReader("hello\n"), 6)
		}, false},
		{"get blob reads the body", func(ctx context.Context, c *Client) error {
			_, err := c.GetBlob(ctx, hash, io.Discard)
			return err
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			arrived := make(chan struct{}, 1)
			release := make(chan struct{})
			silent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				if tc.headers {
					w.Header().Set("Content-Length", "6")
					w.Write([]byte("hel"))
					w.(http.Flusher).Flush()
				}
				arrived <- struct{}{}
				select {
				case <-release:
				case <-r.Context().Done():
				}
			}))
			defer silent.Close()
			defer close(release)
			other := httptest.NewServer(http.NotFoundHandler())
			defer other.Close()
			file := filepath.Join(t.TempDir(), "files-server")
			if err := os.WriteFile(file, []byte(silent.URL+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			c := NewFollowingClient(file, "node-1.tok", nil)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- tc.call(ctx, c) }()
			<-arrived
			if err := os.WriteFile(file, []byte(other.URL+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			err := <-done
			if !errors.Is(err, ErrRoleMoved) {
				t.Fatalf("request in flight when the role moved: %v, want ErrRoleMoved", err)
			}
			if !strings.Contains(err.Error(), other.URL) {
				t.Errorf("error %q does not name the new role %s", err, other.URL)
			}
		})
	}
}
