// Package preflight checks what `scalepress up` needs before it starts
// anything: the programs it runs, the service users, that the state
// directory is reachable by them, and that every address is free. Each
// failure says what to install or change.
package preflight

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/scalepress/scalepress/internal/config"
	"github.com/scalepress/scalepress/internal/galera"
	"github.com/scalepress/scalepress/internal/phpfpm"
	"github.com/scalepress/scalepress/internal/redisd"
)

// ErrMissingDependency means a Debian package is not installed.
var ErrMissingDependency = errors.New("missing dependency")

// Binaries are the programs the controller runs.
type Binaries struct {
	Self    string
	PHP     string
	PHPFPM  string
	Redis   string
	MariaDB galera.Binaries
}

// FindBinaries finds every program, or names the Debian package to install.
func FindBinaries(cfg config.Config) (Binaries, error) {
	var b Binaries
	var err error
	if b.Self, err = os.Executable(); err != nil {
		return b, fmt.Errorf("preflight: own executable: %w", err)
	}
	if b.PHP, err = exec.LookPath("php"); err != nil {
		return b, fmt.Errorf("%w: php CLI not found (Debian package php-cli): run scripts/install-deps.sh", ErrMissingDependency)
	}
	if b.PHPFPM, err = phpfpm.Binary(); err != nil {
		return b, fmt.Errorf("%w: %v", ErrMissingDependency, err)
	}
	if b.Redis, err = redisd.Binary(); err != nil {
		return b, fmt.Errorf("%w: %v", ErrMissingDependency, err)
	}
	if b.MariaDB, err = galera.FindBinaries(); err != nil {
		return b, fmt.Errorf("%w: %v", ErrMissingDependency, err)
	}
	src := cfg.WordPress.Source
	if _, err := os.Stat(filepath.Join(src, "wp-settings.php")); err != nil {
		return b, fmt.Errorf("%w: WordPress not found at %s (Debian package wordpress): run scripts/install-deps.sh", ErrMissingDependency, src)
	}
	themes, _ := filepath.Glob(filepath.Join(src, "wp-content", "themes", "*", "style.css"))
	if len(themes) == 0 {
		return b, fmt.Errorf("%w: no WordPress theme under %s/wp-content/themes (Debian package wordpress-theme-twentytwentythree): run scripts/install-deps.sh", ErrMissingDependency, src)
	}
	return b, nil
}

// listenAddrs names every address the environment will listen on.
func listenAddrs(cfg config.Config) [][2]string {
	out := [][2]string{{"api.addr", cfg.API.Addr}, {"db.router", cfg.DB.Router}}
	// Roles on Nomad listen on their own hosts (ADR 0025): a controller on
	// another host than the last one's (ADR 0027) may have none of their
	// addresses.
	if !cfg.Scheduler.OnNomad(config.RoleRedis) {
		out = append(out, [2]string{"redis.addr", cfg.Redis.Addr})
	}
	for i, e := range cfg.Edges {
		if !cfg.Scheduler.OnNomad(config.RoleEdge) {
			out = append(out, [2]string{fmt.Sprintf("edges[%d].addr", i), e.Addr})
		}
	}
	for n := 1; n <= cfg.Nodes.Count; n++ {
		out = append(out, [2]string{"node " + config.NodeID(n), cfg.NodeAddr(n)})
	}
	// Members on db.hosts listen on their own hosts, through their agents.
	for n := 1; n <= cfg.DB.Members && len(cfg.DB.Hosts) == 0; n++ {
		out = append(out, [2]string{"db member " + config.DBMemberID(n), cfg.DBMemberAddr(n)})
	}
	out = append(out, dnsUDPAddrs(cfg)...) // TCP as well
	if cfg.Files.Enabled && !cfg.Scheduler.OnNomad(config.RoleFiles) {
		out = append(out, [2]string{"files.addr", cfg.Files.Addr})
	}
	return out
}

// CheckPorts fails, naming the address, when one is taken.
func CheckPorts(cfg config.Config) error {
	for _, a := range listenAddrs(cfg) {
		ln, err := net.Listen("tcp", a[1])
		if err != nil {
			if errors.Is(err, syscall.EADDRINUSE) {
				return fmt.Errorf("preflight: %s %s is already in use (another scalepress or service?): choose another address in the config", a[0], a[1])
			}
			return fmt.Errorf("preflight: %s %s: %w", a[0], a[1], err)
		}
		ln.Close()
	}
	for _, a := range dnsUDPAddrs(cfg) {
		if err := checkUDPPort(a[0], a[1]); err != nil {
			return err
		}
	}
	return nil
}

// User is an account a service is run as when the controller is root.
type User struct {
	Name     string
	UID, GID int
}

// LookupUser finds a service user created by its Debian package.
func LookupUser(name string) (User, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return User{}, fmt.Errorf("%w: user %s not found (created by its Debian package): run scripts/install-deps.sh", ErrMissingDependency, name)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return User{Name: name, UID: uid, GID: gid}, nil
}

// CheckTraversable makes sure services run as other users can reach the state
// directory: every ancestor must be searchable by others.
func CheckTraversable(dir string) error {
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("preflight: %w", err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("preflight: %s (mode %04o) is not searchable by the service users (mysql, www-data) that must reach %s: chmod o+x %s, or use a --dir under another path", d, fi.Mode().Perm(), dir, d)
		}
		if d == "/" || d == "." {
			return nil
		}
	}
}

// dnsUDPAddrs are the UDP addresses the environment will listen on.
func dnsUDPAddrs(cfg config.Config) [][2]string {
	if !cfg.DNS.Enabled || cfg.Scheduler.OnNomad(config.RoleDNS) {
		return nil
	}
	return [][2]string{{"dns.addr", cfg.DNS.Addr}}
}

// checkUDPPort fails, naming the address, when a UDP port is taken.
func checkUDPPort(field, addr string) error {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("preflight: %s %s (UDP) is already in use (another scalepress or DNS server?): choose another address in the config", field, addr)
		}
		return fmt.Errorf("preflight: %s %s (UDP): %w", field, addr, err)
	}
	return pc.Close()
}

// GroupName is the name of group gid, or the number.
func GroupName(gid int) string {
	if g, err := user.LookupGroupId(strconv.Itoa(gid)); err == nil {
		return g.Name
	}
	return strconv.Itoa(gid)
}
