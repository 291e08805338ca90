package tools

import (
	"crypto/tls"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Versitygw is a versitygw process serving a posix directory on a loopback
// address: the S3-compatible server of the tests.
type Versitygw struct {
	// Endpoint is its base URL; AccessKey and SecretKey its one account.
	Endpoint, AccessKey, SecretKey string
	// Data is the posix directory: a bucket is a directory in it.
	Data string
	cmd  *exec.Cmd
	done chan error
}

// StartVersitygw starts versitygw on addr ("127.0.0.1:0" picks a free port)
// with a posix backend in a temporary directory, and returns once it
// answers; it is stopped when t ends. Its log goes to LOGDIR/versitygw.log
// of the temporary directory.
func StartVersitygw(t testing.TB, addr string) *Versitygw {
	t.Helper()
	return startVersitygw(t, addr, "", "")
}

// StartVersitygwTLS is StartVersitygw serving https with the PEM
// certificate and key files given.
func StartVersitygwTLS(t testing.TB, addr, certFile, keyFile string) *Versitygw {
	t.Helper()
	return startVersitygw(t, addr, certFile, keyFile)
}

func startVersitygw(t testing.TB, addr, certFile, keyFile string) *Versitygw {
	t.Helper()
	bin := Path(t, "versitygw")
	dir := t.TempDir()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	if port == "0" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		addr = ln.Addr().String()
		ln.Close()
	} else {
		addr = net.JoinHostPort(host, port)
	}
	g := &Versitygw{Endpoint: "http://" + addr, AccessKey: "scalepress-test", SecretKey: "scalepress-test-secret",
		Data: filepath.Join(dir, "data"), done: make(chan error, 1)}
	if err := os.Mkdir(g.Data, 0o700); err != nil {
		t.Fatal(err)
	}
	log, err := os.Create(filepath.Join(dir, "versitygw.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	args := []string{"--port", addr, "--access", g.AccessKey, "--secret", g.SecretKey, "--quiet"}
	hc := &http.Client{Timeout: time.Second}
	if certFile != "" {
		g.Endpoint = "https://" + addr
		args = append(args, "--cert", certFile, "--key", keyFile)
		// Readiness only: the tests check the certificate themselves.
		hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	}
	g.cmd = exec.Command(bin, append(args, "posix", g.Data)...)
	g.cmd.Stdout, g.cmd.Stderr = log, log
	if err := g.cmd.Start(); err != nil {
		t.Fatalf("versitygw: %v", err)
	}
	go func() { g.done <- g.cmd.Wait() }()
	t.Cleanup(g.Stop)
	for deadline := time.Now().Add(15 * time.Second); ; {
		resp, err := hc.Get(g.Endpoint + "/")
		if err == nil {
			resp.Body.Close()
			return g
		}
		select {
		case err := <-g.done:
			g.done <- err
			b, _ := os.ReadFile(log.Name())
			t.Fatalf("versitygw on %s exited: %v\n%s", addr, err, b)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("versitygw on %s did not answer within 15 s: %v", addr, err)
		}
	}
}

// MakeBucket creates a bucket (a directory of the posix backend).
func (g *Versitygw) MakeBucket(t testing.TB, name string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(g.Data, name), 0o755); err != nil {
		t.Fatal(err)
	}
}

// Stop kills versitygw and waits for it; a second Stop does nothing.
func (g *Versitygw) Stop() {
	g.cmd.Process.Kill()
	err := <-g.done
	g.done <- err
}
