package node

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/forward"
	"github.com/scalepress/scalepress/internal/phpfpm"
	"github.com/scalepress/scalepress/internal/token"
)

// TestPingWithEveryChildPinned: after a burst that opened a kept-alive
// FastCGI connection per php-fpm child, every child waits on one of them.
// The health ping must still be answered (through one of those
// connections), not wait in php-fpm's accept backlog until the idle
// connections are reaped 30 s later, which failed the node's health checks
// in the meantime. Real php-fpm (about 1 s; -short runs it too).
func TestPingWithEveryChildPinned(t *testing.T) {
	const children = 2
	a, fpmLog := startAgentFPM(t, children)
	var wg sync.WaitGroup
	for range children {
		wg.Go(func() {
			w := httptest.NewRecorder()
			a.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "http://node/slow.php", nil))
			if w.Code != http.StatusOK || w.Body.String() != "slow" {
				t.Errorf("GET /slow.php = %d %q, want 200 \"slow\"; php-fpm log:\n%s", w.Code, w.Body, fpmLog())
			}
		})
	}
	wg.Wait()
	if st := a.fcgi.Stats(); st.Idle != children {
		t.Fatalf("after %d concurrent pages %+v, want %d idle connections (one per child)", children, st, children)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := a.ping(ctx); err != nil {
		t.Fatalf("ping with every child holding an idle connection: %v", err)
	}
	if st := a.fcgi.Stats(); st.Open != children {
		t.Errorf("after the ping %+v, want still %d connections open (no child beyond the pool)", st, children)
	}
}

// startAgentFPM starts php-fpm with a static pool of children under a fresh
// node directory (docroot with slow.php) and returns an agent for it.
func startAgentFPM(t testing.TB, children int) (*Agent, func() string) {
	t.Helper()
	bin, err := phpfpm.Binary()
	if err != nil {
		t.Fatal(err)
	}
	// Not t.TempDir: the children (www-data when the test runs as root)
	// must read the docroot.
	dir, err := os.MkdirTemp("", "node-fpm-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	docroot, run := filepath.Join(dir, "docroot"), filepath.Join(dir, "run")
	for _, d := range []string{dir, docroot, run} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, src := range map[string]string{
		"slow.php": "<?php usleep(200000); echo 'slow';\n",
		// 67,200 bytes in 3,200 echoes, as a theme writes a page.
		"page.php": "<?php header('Content-Type: text/html; charset=UTF-8'); for ($i = 0; $i < 3200; $i++) { echo '<p>WordPress page</p>'; }\n",
	} {
		if err := os.WriteFile(filepath.Join(docroot, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := phpfpm.Pool{Name: "node-test", Listen: filepath.Join(run, "php-fpm.sock"), MaxChildren: children,
		PidFile: filepath.Join(run, "php-fpm.pid"), ErrorLog: filepath.Join(run, "php-fpm.log")}
	if os.Geteuid() == 0 {
		p.User, p.Group = "www-data", "www-data"
	}
	conf, err := phpfpm.Render(p)
	if err != nil {
		t.Fatal(err)
	}
	ini, err := phpfpm.RenderINI(phpfpm.DefaultINI())
	if err != nil {
		t.Fatal(err)
	}
	confPath, iniPath := filepath.Join(run, "php-fpm.conf"), filepath.Join(run, "php.ini")
	if err := os.WriteFile(confPath, conf, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(iniPath, ini, 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, "-F", "-y", confPath, "-c", iniPath)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	fpmLog := func() string { b, _ := os.ReadFile(p.ErrorLog); return out.String() + string(b) }
	for deadline := time.Now().Add(10 * time.Second); ; {
		nc, err := net.Dial("unix", p.Listen)
		if err == nil {
			nc.Close()
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("php-fpm exited: %v\n%s", err, fpmLog())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("php-fpm socket not ready after 10s: %v\n%s", err, fpmLog())
		}
		time.Sleep(20 * time.Millisecond) // polling a process we do not control
	}
	a, err := newAgent(api.NodeSpec{ID: "node-1", Addr: "127.0.0.1:0", Docroot: docroot, RunDir: run,
		PHPChildren: children, ForwardKey: token.NewKey().Hex()}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.fcgi.Close(); a.root.Close() })
	return a, fpmLog
}

// BenchmarkServePHP is the agent's PHP path against real php-fpm: a signed
// GET from the edge in, a 64 KB page out. ns/op includes PHP's own time;
// agent-cpu-us/op is this process's CPU alone (php-fpm's workers are other
// processes) and vcsw/op its voluntary context switches, its wake-ups.
func BenchmarkServePHP(b *testing.B) {
	a, _ := startAgentFPM(b, 2)
	key := token.NewKey()
	a.edges, _ = forward.NewVerifier(key)
	signer, err := forward.NewSigner("edge-1", key)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var ru0, ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	n := 0
	for b.Loop() {
		n++
		r := httptest.NewRequest(http.MethodGet, "http://blog.example/page.php?x=1", nil)
		r.Header.Set(forward.HeaderFor, "203.0.113.7")
		r.Header.Set(forward.HeaderProto, "https")
		signer.Sign(r.Header, r.Method, r.Host, r.RequestURI, time.Now())
		w := httptest.NewRecorder()
		a.ServeHTTP(w, r)
		if w.Code != http.StatusOK || w.Body.Len() != 67200 {
			b.Fatalf("%d, %d bytes", w.Code, w.Body.Len())
		}
	}
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := (ru1.Utime.Nano() + ru1.Stime.Nano()) - (ru0.Utime.Nano() + ru0.Stime.Nano())
	b.ReportMetric(float64(cpu)/1e3/float64(n), "agent-cpu-us/op")
	b.ReportMetric(float64(ru1.Nvcsw-ru0.Nvcsw)/float64(n), "vcsw/op")
}

// BenchmarkProbe is what the controller's status probe costs a node: the
// handler with PHP progressing (no ping: the load path) and idle (a
// php-fpm ping over a kept-alive connection, answered without a script).
func BenchmarkProbe(b *testing.B) {
	a, _ := startAgentFPM(b, 2)
	for _, bb := range []struct {
		name     string
		progress bool
	}{{"busy", true}, {"idle", false}} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if bb.progress {
					a.load.done(time.Now())
				} else {
					a.load.done(time.Time{})
				}
				w := httptest.NewRecorder()
				a.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "http://node"+api.NodePathStatus, nil))
				if w.Code != http.StatusOK || !bytes.Contains(w.Body.Bytes(), []byte(`"php_ok":true`)) {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
			}
		})
	}
}
