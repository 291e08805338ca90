package filesync

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
