package wordpress

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Helpers for tests that run the real PHP CLI and a real redis-server.

func phpBinary(t *testing.T) string {
	t.Helper()
	php, err := exec.LookPath("php")
	if err != nil {
		t.Fatal("php CLI not found: run scripts/install-deps.sh (Debian package php-cli)")
	}
	return php
}

// phpResult is what a php process left behind.
type phpResult struct {
	stdout, stderr string
	code           int
}

// lines are stdout's lines.
func (r phpResult) lines() []string {
	return strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
}

func (r phpResult) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// runPHP runs php with env added to the test's environment.
func runPHP(t *testing.T, env []string, args ...string) phpResult {
	t.Helper()
	cmd := exec.Command(phpBinary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := phpResult{stdout: out.String(), stderr: errb.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		res.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("php %v: %v", args, err)
	}
	return res
}

// freePort returns a TCP port on 127.0.0.1 that nothing listened on a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// redisServer is a real redis-server on 127.0.0.1 for one test: no
// persistence, killed at the end of the test.
type redisServer struct {
	t        *testing.T
	port     int
	dir      string
	password string // requirepass; "" for none
	cmd      *exec.Cmd
	done     chan struct{}
}

func startRedis(t *testing.T) *redisServer { return startRedisWithPassword(t, "") }

// startRedisWithPassword starts a redis-server that requires password ("" for none).
func startRedisWithPassword(t *testing.T, password string) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server not found: run scripts/install-deps.sh (Debian package redis-server)")
	}
	r := &redisServer{t: t, dir: t.TempDir(), password: password}
	t.Cleanup(r.stop)
	var err error
	for range 3 { // the free port may be taken in between
		r.port = freePort(t)
		if err = r.start(); err == nil {
			return r
		}
	}
	t.Fatal(err)
	return nil
}

func (r *redisServer) addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

// start runs redis-server on r.port and waits until it answers.
func (r *redisServer) start() error {
	r.t.Helper()
	args := []string{"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir, "--logfile", filepath.Join(r.dir, "redis.log")}
	if r.password != "" {
		args = append(args, "--requirepass", r.password)
	}
	cmd := exec.Command("redis-server", args...)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("redis-server: %w", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	r.cmd, r.done = cmd, done
	deadline := time.Now().Add(5 * time.Second)
	for {
		if reply, err := r.try("PING"); err == nil && reply == "PONG" {
			return nil
		}
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(r.dir, "redis.log"))
			return fmt.Errorf("redis-server on port %d exited:\n%s", r.port, log)
		default:
		}
		if time.Now().After(deadline) {
			r.stop()
			return fmt.Errorf("redis-server on port %d did not answer", r.port)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop kills redis-server (if it still runs) and waits for it.
func (r *redisServer) stop() {
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Kill()
	<-r.done
	r.cmd = nil
}

// exited reports whether redis-server is gone (for tests in which PHP shuts it down).
func (r *redisServer) exited(within time.Duration) bool {
	select {
	case <-r.done:
		r.cmd = nil
		return true
	case <-time.After(within):
		return false
	}
}

// do sends one command and returns the reply: string, int64, nil, []any; an
// error (reply) fails t.
func (r *redisServer) do(t *testing.T, args ...string) any {
	t.Helper()
	reply, err := r.try(args...)
	if err != nil {
		t.Fatalf("redis %v: %v", args, err)
	}
	return reply
}

func (r *redisServer) try(args ...string) (any, error) {
	conn, err := net.DialTimeout("tcp", r.addr(), time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	var b bytes.Buffer
	write := func(args ...string) {
		fmt.Fprintf(&b, "*%d\r\n", len(args))
		for _, a := range args {
			fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
		}
	}
	if r.password != "" {
		write("AUTH", r.password)
	}
	write(args...)
	if _, err := conn.Write(b.Bytes()); err != nil {
		return nil, err
	}
	br := bufio.NewReader(conn)
	if r.password != "" {
		if _, err := readRESP(br); err != nil {
			return nil, fmt.Errorf("AUTH: %w", err)
		}
	}
	return readRESP(br)
}

func readRESP(br *bufio.Reader) (any, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return nil, errors.New("empty reply")
	}
	switch line[0] {
	case '+':
		return line[1:], nil
	case '-':
		return nil, errors.New(line[1:])
	case ':':
		return strconv.ParseInt(line[1:], 10, 64)
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return nil, err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(br, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return nil, err
		}
		out := make([]any, n)
		for i := range out {
			if out[i], err = readRESP(br); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("unexpected reply %q", line)
}

// keys lists the keys matching pattern.
func (r *redisServer) keys(t *testing.T, pattern string) []string {
	t.Helper()
	var out []string
	for _, k := range r.do(t, "KEYS", pattern).([]any) {
		out = append(out, k.(string))
	}
	return out
}
