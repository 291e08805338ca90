// Package galera runs the site's MariaDB members. This version runs one
// standalone member; the Galera issue grows the same API to a three-member
// cluster (wsrep settings, bootstrap, join, recovery) without changing callers.
package galera

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// MemberConfig is one mariadbd.
type MemberConfig struct {
	ID         string // db-1
	Addr       string // IP:port it listens on
	Dir        string // member directory: data/, run/, my.cnf
	BufferPool string // innodb_buffer_pool_size, e.g. 128M
	// UID/GID run mariadbd (and own its files) when the controller is root; -1 = current user.
	UID, GID int
}

// Validate names the field that is wrong.
func (c MemberConfig) Validate() error {
	if c.ID == "" {
		return fmt.Errorf("galera: member id is empty")
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("galera: member %s addr %q: %w", c.ID, c.Addr, err)
	}
	if !filepath.IsAbs(c.Dir) {
		return fmt.Errorf("galera: member %s dir %q must be absolute", c.ID, c.Dir)
	}
	return nil
}

// DataDir is the member's datadir.
func (c MemberConfig) DataDir() string { return filepath.Join(c.Dir, "data") }

// RunDir holds the socket and pid file.
func (c MemberConfig) RunDir() string { return filepath.Join(c.Dir, "run") }

// Socket is the unix socket root uses (unix_socket authentication).
func (c MemberConfig) Socket() string { return filepath.Join(c.RunDir(), "mysqld.sock") }

// MyCnf is the path of the rendered option file.
func (c MemberConfig) MyCnf() string { return filepath.Join(c.Dir, "my.cnf") }

// RenderMyCnf returns the member's option file.
func RenderMyCnf(c MemberConfig) []byte {
	host, port, _ := net.SplitHostPort(c.Addr)
	var b bytes.Buffer
	fmt.Fprintf(&b, `# Written by scalepress for member %s; rewritten on every up.
[mariadbd]
datadir = %s
socket = %s
pid-file = %s
bind-address = %s
port = %s
skip-name-resolve
character-set-server = utf8mb4
collation-server = utf8mb4_unicode_ci
innodb_buffer_pool_size = %s
innodb_log_file_size = 64M
# Nothing acknowledged is lost: flush the redo log at every commit.
innodb_flush_log_at_trx_commit = 1
max_connections = 500
# Errors go to stderr, which the supervisor writes to DIR/logs/%s.log.

[client]
socket = %s
`, c.ID, c.DataDir(), c.Socket(), filepath.Join(c.RunDir(), "mysqld.pid"), host, port, c.BufferPool, c.ID, c.Socket())
	return b.Bytes()
}

// initMarker is written after mariadb-install-db succeeded: a datadir without
// it is a half-made one and is made again.
const initMarker = ".scalepress-initialized"

// Binaries are the Debian programs a member needs.
type Binaries struct {
	Mariadbd, InstallDB, Client string
}

// FindBinaries locates mariadbd, mariadb-install-db and the mariadb client.
func FindBinaries() (Binaries, error) {
	var b Binaries
	for _, x := range []struct {
		dst   *string
		names []string
		pkg   string
	}{
		{&b.Mariadbd, []string{"mariadbd", "/usr/sbin/mariadbd"}, "mariadb-server"},
		{&b.InstallDB, []string{"mariadb-install-db", "/usr/bin/mariadb-install-db"}, "mariadb-server"},
		{&b.Client, []string{"mariadb", "/usr/bin/mariadb"}, "mariadb-client"},
	} {
		for _, n := range x.names {
			if p, err := exec.LookPath(n); err == nil {
				*x.dst = p
				break
			}
		}
		if *x.dst == "" {
			return b, fmt.Errorf("galera: %s not found (Debian package %s): run scripts/install-deps.sh", x.names[0], x.pkg)
		}
	}
	return b, nil
}

// Prepare writes my.cnf and initialises the datadir the first time.
func Prepare(ctx context.Context, c MemberConfig, bin Binaries) error {
	if err := c.Validate(); err != nil {
		return err
	}
	for _, d := range []string{c.Dir, c.RunDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("galera: %w", err)
		}
		// mariadbd runs as mysql: it must reach my.cnf and the run dir.
		if err := os.Chmod(d, 0o755); err != nil {
			return fmt.Errorf("galera: %w", err)
		}
	}
	if err := os.WriteFile(c.MyCnf(), RenderMyCnf(c), 0o644); err != nil {
		return fmt.Errorf("galera: %w", err)
	}
	if err := chown(c.RunDir(), c.UID, c.GID); err != nil {
		return err
	}
	os.Remove(c.Socket()) // a stale socket from a killed run
	if _, err := os.Stat(filepath.Join(c.DataDir(), initMarker)); err == nil {
		return chownTree(c.DataDir(), c.UID, c.GID)
	}
	if err := os.RemoveAll(c.DataDir()); err != nil {
		return fmt.Errorf("galera: remove half-made datadir: %w", err)
	}
	if err := os.MkdirAll(c.DataDir(), 0o750); err != nil {
		return fmt.Errorf("galera: %w", err)
	}
	if err := chown(c.DataDir(), c.UID, c.GID); err != nil {
		return err
	}
	args := []string{"--defaults-file=" + c.MyCnf(), "--auth-root-authentication-method=socket", "--skip-test-db"}
	if c.UID >= 0 && os.Geteuid() == 0 {
		args = append(args, "--user="+userName(c.UID))
	} else {
		args = append(args, "--auth-root-socket-user="+userName(os.Geteuid()))
	}
	cmd := exec.CommandContext(ctx, bin.InstallDB, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("galera: mariadb-install-db for %s: %v: %s", c.ID, err, lastLines(out, 5))
	}
	if err := os.WriteFile(filepath.Join(c.DataDir(), initMarker), []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644); err != nil {
		return fmt.Errorf("galera: %w", err)
	}
	return nil
}

// Command returns the program and arguments that run the member in the foreground.
func Command(c MemberConfig, bin Binaries) (string, []string) {
	return bin.Mariadbd, []string{"--defaults-file=" + c.MyCnf()}
}

// RootSQL runs statements as root over the member's unix socket.
func RootSQL(ctx context.Context, c MemberConfig, bin Binaries, sql string) (string, error) {
	cmd := exec.CommandContext(ctx, bin.Client, "--no-defaults", "--socket="+c.Socket(), "-uroot", "--batch", "--skip-column-names")
	cmd.Stdin = strings.NewReader(sql)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("galera: sql on %s: %v: %s", c.ID, err, strings.TrimSpace(stderr.String()))
	}
	return out.String(), nil
}

// Ping asks the member for SELECT 1 as root over its socket.
func Ping(ctx context.Context, c MemberConfig, bin Binaries) error {
	_, err := RootSQL(ctx, c, bin, "SELECT 1;")
	return err
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
