package hosts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// helperEnv makes the test binary a tiny HTTP server instead of running
// tests: `SCALEPRESS_HOSTS_HELPER=serve hosts.test ADDR TEXT` answers every
// request with TEXT. The tests start it inside namespaces (and as a Nomad
// task), so they need no other program.
const helperEnv = "SCALEPRESS_HOSTS_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "serve" {
		if len(os.Args) != 3 {
			fmt.Fprintln(os.Stderr, "usage: SCALEPRESS_HOSTS_HELPER=serve hosts.test ADDR TEXT")
			os.Exit(2)
		}
		text := os.Args[2]
		err := http.ListenAndServe(os.Args[1], http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			io.WriteString(w, text)
		}))
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// serve starts the helper HTTP server inside h on addr, answering text.
func serve(t testing.TB, h *Host, addr, text string) *Proc {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := h.Command(context.Background(), self, addr, text)
	cmd.Env = append(os.Environ(), helperEnv+"=serve")
	return h.StartCmd(t, cmd)
}

// get fetches url with c and returns the body.
func get(ctx context.Context, c *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	return string(b), nil
}

// waitGet polls url until it answers (a server starting), failing t after
// within.
func waitGet(t testing.TB, c *http.Client, url string, within time.Duration) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	var last error
	for {
		rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
		body, err := get(rctx, c, url)
		rcancel()
		if err == nil {
			return body
		}
		last = err
		select {
		case <-ctx.Done():
			t.Fatalf("GET %s did not answer within %v: %v", url, within, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// errFatal is what fakeT panics with on Fatal, to stop the body like
// runtime.Goexit stops a real test.
var errFatal = errors.New("fakeT: Fatal")

// fakeT runs a body the way the testing package runs a test, so that a test
// can watch New fail or panic and then check what its cleanup left.
type fakeT struct {
	testing.TB // the real test: TempDir, Logf, Name

	mu       sync.Mutex
	failed   bool
	msgs     []string
	cleanups []func()
}

func (f *fakeT) Helper() {}
func (f *fakeT) Cleanup(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleanups = append(f.cleanups, fn)
}
func (f *fakeT) Failed() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.failed }
func (f *fakeT) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failed = true
	f.msgs = append(f.msgs, fmt.Sprintf(format, args...))
}
func (f *fakeT) Error(args ...any) { f.Errorf("%s", fmt.Sprint(args...)) }
func (f *fakeT) Fatalf(format string, args ...any) {
	f.Errorf(format, args...)
	panic(errFatal)
}
func (f *fakeT) Fatal(args ...any) { f.Fatalf("%s", fmt.Sprint(args...)) }

// run runs body on its own goroutine, then the cleanups last-first, also
// when body panicked or called Fatal, and returns what body panicked with
// (nil, errFatal, or anything else).
func (f *fakeT) run(body func(t testing.TB)) (panicked any) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			panicked = recover()
			f.mu.Lock()
			cs := f.cleanups
			f.cleanups = nil
			f.mu.Unlock()
			for i := len(cs) - 1; i >= 0; i-- {
				cs[i]()
			}
		}()
		body(f)
	}()
	<-done
	return panicked
}

func (f *fakeT) messages() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.msgs, "\n")
}
