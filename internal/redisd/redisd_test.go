package redisd

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const testPassword = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func testConfig(dir string) Config {
	return Config{Addr: "127.0.3.1:6379", Dir: dir, MaxMemory: "64mb", Password: testPassword}
}

func TestRender(t *testing.T) {
	got := string(Render(testConfig("/s/redis")))
	for _, want := range []string{
		"bind 127.0.3.1\n", "port 6379\n", "save \"\"\n", "appendonly no\n", "maxmemory 64mb\n", "maxmemory-policy allkeys-lru\n",
		"requirepass " + testPassword + "\n",
		"enable-protected-configs no\n", "enable-debug-command no\n", "enable-module-command no\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("redis.conf lacks %q", want)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string // "" = valid
	}{
		{"ok", func(*Config) {}, ""},
		{"bad addr", func(c *Config) { c.Addr = "127.0.3.1" }, "addr"},
		{"relative dir", func(c *Config) { c.Dir = "redis" }, "dir"},
		{"no maxmemory", func(c *Config) { c.MaxMemory = "" }, "maxmemory"},
		{"no password", func(c *Config) { c.Password = "" }, "password"},
		{"short password", func(c *Config) { c.Password = "abc" }, "password"},
		// A newline would add a directive to redis.conf.
		{"password with a newline", func(c *Config) { c.Password = testPassword + "\nrequirepass x" }, "password"},
		{"password with a space", func(c *Config) { c.Password = testPassword + " x" }, "password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig("/s/redis")
			tt.mutate(&c)
			err := c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want an error naming %q", err, tt.want)
			}
			if strings.Contains(err.Error(), testPassword) {
				t.Errorf("the error prints the password: %v", err)
			}
		})
	}
}

// TestWriteConfig: redis.conf holds the password, so nobody but its owner
// reads it.
func TestWriteConfig(t *testing.T) {
	dir := t.TempDir()
	uid, gid := -1, -1
	if os.Geteuid() == 0 {
		uid, gid = 4242, 4343 // any ids: root may give a file to anyone
	}
	path, err := WriteConfig(testConfig(dir), uid, gid)
	if err != nil {
		t.Fatal(err)
	}
	if path != filepath.Join(dir, "redis.conf") {
		t.Errorf("path %s", path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	if uid >= 0 {
		st := fi.Sys().(*syscall.Stat_t)
		if int(st.Uid) != uid || int(st.Gid) != gid {
			t.Errorf("owner %d:%d, want %d:%d", st.Uid, st.Gid, uid, gid)
		}
	}
	b, _ := os.ReadFile(path)
	if diff := cmp.Diff(string(Render(testConfig(dir))), string(b)); diff != "" {
		t.Errorf("content (-want +got):\n%s", diff)
	}
	bad := testConfig(dir)
	bad.Password = ""
	if _, err := WriteConfig(bad, -1, -1); err == nil {
		t.Error("wrote a redis.conf without a password")
	}
}

func TestPing(t *testing.T) {
	tests := []struct {
		name     string
		password string
		wantReq  string
		answer   string
		ok       bool
	}{
		{"pong", "", "*1\r\n$4\r\nPING\r\n", "+PONG\r\n", true},
		{"noauth", "", "*1\r\n$4\r\nPING\r\n", "-NOAUTH Authentication required.\r\n", false},
		{"auth then pong", "pw", "*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n*1\r\n$4\r\nPING\r\n", "+OK\r\n+PONG\r\n", true},
		{"wrong password", "pw", "*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n*1\r\n$4\r\nPING\r\n", "-WRONGPASS invalid username-password pair or user is disabled.\r\n-NOAUTH Authentication required.\r\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			got := make(chan string, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					got <- err.Error()
					return
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				buf := make([]byte, len(tt.wantReq))
				_, err = io.ReadFull(bufio.NewReader(c), buf)
				got <- string(buf)
				c.Write([]byte(tt.answer))
			}()
			err = Ping(t.Context(), ln.Addr().String(), tt.password)
			if (err == nil) != tt.ok {
				t.Errorf("Ping = %v, want ok=%v", err, tt.ok)
			}
			if diff := cmp.Diff(tt.wantReq, <-got); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRealRedis starts redis-server with the rendered config: it accepts
// it, refuses a client without the password and answers one with it.
func TestRealRedis(t *testing.T) {
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c := testConfig(t.TempDir())
	c.Addr = addr
	path, err := WriteConfig(c, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, path)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for Ping(ctx, addr, c.Password) != nil {
		if ctx.Err() != nil {
			t.Fatalf("redis-server did not answer with the password:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := Ping(ctx, addr, ""); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Errorf("without the password: %v, want NOAUTH", err)
	}
	if err := Ping(ctx, addr, strings.Repeat("x", 64)); err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
		t.Errorf("with a wrong password: %v, want WRONGPASS", err)
	}
	// The commands that would write files as the redis user are off.
	for _, cmdline := range [][]string{{"CONFIG", "SET", "dir", "/tmp"}, {"DEBUG", "SLEEP", "0"}, {"MODULE", "LOAD", "/nonexistent.so"}} {
		reply := rawCommand(t, addr, c.Password, cmdline...)
		if !strings.HasPrefix(reply, "-") || !strings.Contains(reply, "not allowed") && !strings.Contains(reply, "protected") {
			t.Errorf("%v: %q, want a refusal", cmdline, reply)
		}
	}
}

// rawCommand authenticates, sends one command and returns the first line of
// its reply.
func rawCommand(t *testing.T, addr, password string, args ...string) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	conn.Write(command(command(nil, "AUTH", password), args...))
	r := bufio.NewReader(conn)
	if line, _ := r.ReadString('\n'); line != "+OK\r\n" {
		t.Fatalf("AUTH: %q", line)
	}
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(line)
}
