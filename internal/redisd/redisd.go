// Package redisd runs the object-cache redis-server: its config and its health check.
package redisd

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/scalepress/scalepress/internal/atomicfile"
)

// Config is one redis-server.
type Config struct {
	Addr      string // IP:port
	Dir       string // working directory (no persistence is written there)
	MaxMemory string // e.g. 64mb
	// Password is requirepass: every client authenticates
	// (docs/adr/0009-trust-model.md). 32 or more letters and digits.
	Password string
}

var passwordRE = regexp.MustCompile(`^[A-Za-z0-9]{32,}$`)

// Validate names the field that is wrong.
func (c Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("redisd: addr %q: %w", c.Addr, err)
	}
	if !filepath.IsAbs(c.Dir) {
		return fmt.Errorf("redisd: dir %q must be absolute", c.Dir)
	}
	if c.MaxMemory == "" {
		return fmt.Errorf("redisd: maxmemory is empty")
	}
	if !passwordRE.MatchString(c.Password) {
		// Never print it: it may be a real password with one bad character.
		return fmt.Errorf("redisd: password must be 32 or more letters and digits (got %d characters)", len(c.Password))
	}
	return nil
}

// Render returns redis.conf: a pure cache (no RDB, no AOF), LRU over all
// keys, a password, and none of the commands that change the server's files
// or load code into it.
func Render(c Config) []byte {
	host, port, _ := net.SplitHostPort(c.Addr)
	return fmt.Appendf(nil, `# Written by scalepress; rewritten on every up. Holds the password: mode 0600.
bind %s
port %s
protected-mode yes
requirepass %s
enable-protected-configs no
enable-debug-command no
enable-module-command no
daemonize no
supervised no
dir %s
logfile ""
save ""
appendonly no
maxmemory %s
maxmemory-policy allkeys-lru
tcp-keepalive 60
timeout 0
databases 16
`, host, port, c.Password, c.Dir, c.MaxMemory)
}

// ConfigMode is the mode of redis.conf: it holds the password, so only its
// owner (the user redis runs as) reads it.
const ConfigMode os.FileMode = 0o600

// WriteConfig writes Dir/redis.conf (ConfigMode) and, with uid >= 0, gives
// it to uid:gid, the user redis-server runs as. It returns the path.
func WriteConfig(c Config, uid, gid int) (string, error) {
	if err := c.Validate(); err != nil {
		return "", err
	}
	path := filepath.Join(c.Dir, "redis.conf")
	if err := atomicfile.Write(path, Render(c), ConfigMode); err != nil {
		return "", fmt.Errorf("redisd: %w", err)
	}
	if uid >= 0 {
		if err := os.Chown(path, uid, gid); err != nil {
			return "", fmt.Errorf("redisd: %w", err)
		}
	}
	return path, nil
}

// Binary finds redis-server.
func Binary() (string, error) {
	for _, n := range []string{"redis-server", "/usr/bin/redis-server"} {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("redisd: redis-server not found (Debian package redis-server): run scripts/install-deps.sh")
}

// Ping authenticates with password (none if empty), sends PING and expects
// +PONG.
func Ping(ctx context.Context, addr, password string) error {
	d := net.Dialer{Timeout: time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("redisd: ping: %w", err)
	}
	defer conn.Close()
	deadline := time.Now().Add(time.Second)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	conn.SetDeadline(deadline)
	var req []byte
	want := []string{"+PONG"}
	if password != "" {
		req = command(req, "AUTH", password)
		want = []string{"+OK", "+PONG"}
	}
	req = command(req, "PING")
	if _, err := conn.Write(req); err != nil {
		return fmt.Errorf("redisd: ping: %w", err)
	}
	r := bufio.NewReader(conn)
	for _, w := range want {
		line, err := r.ReadString('\n')
		if err != nil {
			return fmt.Errorf("redisd: ping: %w", err)
		}
		if got := strings.TrimSpace(line); got != w {
			return fmt.Errorf("redisd: ping: unexpected answer %q", got)
		}
	}
	return nil
}

// command appends one command in RESP (an array of bulk strings).
func command(b []byte, args ...string) []byte {
	b = fmt.Appendf(b, "*%d\r\n", len(args))
	for _, a := range args {
		b = fmt.Appendf(b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b
}
