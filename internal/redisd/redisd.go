// Package redisd runs the object-cache redis-server: its config and its health check.
package redisd

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Config is one redis-server.
type Config struct {
	Addr      string // IP:port
	Dir       string // working directory (no persistence is written there)
	MaxMemory string // e.g. 64mb
}

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
	return nil
}

// Render returns redis.conf: a pure cache (no RDB, no AOF), LRU over all keys.
func Render(c Config) []byte {
	host, port, _ := net.SplitHostPort(c.Addr)
	return fmt.Appendf(nil, `# Written by scalepress; rewritten on every up.
bind %s
port %s
protected-mode yes
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
`, host, port, c.Dir, c.MaxMemory)
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

// Ping sends PING and expects +PONG.
func Ping(ctx context.Context, addr string) error {
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
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return fmt.Errorf("redisd: ping: %w", err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("redisd: ping: %w", err)
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("redisd: ping: unexpected answer %q", strings.TrimSpace(line))
	}
	return nil
}
