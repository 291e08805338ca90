// Package galera runs the site's MariaDB members: one standalone server, or a
// Galera cluster of an odd number of members on their own addresses.
//
// The decisions (bootstrap which member, join, recover, refuse) are a pure
// function, Plan, over what is observed of every member (plan.go); the driver
// beside it (cluster.go) observes, asks Plan and acts: it renders my.cnf,
// initialises, runs mariadbd --wsrep-recover before every start of existing
// data, starts members through a Starter (the controller's supervisor, with
// restarts disabled: a restart is always a fresh decision), and probes their
// wsrep status.
package galera

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Galera ports on every member's own address (NOTES: standard ports per IP).
const (
	GroupPort = 4567 // gmcast.listen_addr: group communication
	ISTPort   = 4568 // ist.recv_addr
	SSTPort   = 4444 // wsrep_sst_receive_address
)

// ProviderPath is galera-4's library from Debian's galera-4 package.
const ProviderPath = "/usr/lib/galera/libgalera_smm.so"

// MemberConfig is one mariadbd.
type MemberConfig struct {
	ID         string // db-1
	Addr       string // IP:port it listens on
	Dir        string // member directory: data/, run/, tmp/, my.cnf
	BufferPool string // innodb_buffer_pool_size, e.g. 128M
	// UID/GID run mariadbd (and own its files) when the controller is root; -1 = current user.
	UID, GID int

	// Peers are the SQL addresses of every member of the cluster, this one
	// included, in id order; empty runs a standalone server (wsrep off).
	Peers []string
	// PeerIDs name Peers (wsrep_node_name), same order.
	PeerIDs []string
	// ClusterName is wsrep_cluster_name.
	ClusterName string
	// SSTMethod is wsrep_sst_method: rsync or mariabackup.
	SSTMethod string
	// GcacheSize is gcache.size, e.g. 128M: how much history a member keeps
	// to bring a returning member up to date by IST instead of a full SST.
	GcacheSize string
}

var (
	sizeRE    = regexp.MustCompile(`^[0-9]+[KMGkmg]?$`)
	clusterRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)
)

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
	if !c.Clustered() {
		return nil
	}
	if len(c.PeerIDs) != len(c.Peers) {
		return fmt.Errorf("galera: member %s: %d peer ids for %d peers", c.ID, len(c.PeerIDs), len(c.Peers))
	}
	for _, p := range c.Peers {
		if _, err := netip.ParseAddrPort(p); err != nil {
			return fmt.Errorf("galera: member %s peer %q: must be IP:port", c.ID, p)
		}
	}
	if !slices.Contains(c.Peers, c.Addr) {
		return fmt.Errorf("galera: member %s addr %s is not among its peers %v", c.ID, c.Addr, c.Peers)
	}
	if !clusterRE.MatchString(c.ClusterName) {
		return fmt.Errorf("galera: member %s cluster name %q: must be 1-32 of [A-Za-z0-9_-]", c.ID, c.ClusterName)
	}
	if c.SSTMethod != "rsync" && c.SSTMethod != "mariabackup" {
		return fmt.Errorf("galera: member %s sst method %q: must be rsync or mariabackup", c.ID, c.SSTMethod)
	}
	if !sizeRE.MatchString(c.GcacheSize) {
		return fmt.Errorf("galera: member %s gcache size %q: must be a size like 128M", c.ID, c.GcacheSize)
	}
	return nil
}

// Clustered reports whether the member runs with wsrep (Galera) on.
func (c MemberConfig) Clustered() bool { return len(c.Peers) > 0 }

// DataDir is the member's datadir.
func (c MemberConfig) DataDir() string { return filepath.Join(c.Dir, "data") }

// RunDir holds the socket and pid file.
func (c MemberConfig) RunDir() string { return filepath.Join(c.Dir, "run") }

// TmpDir is the member's own tmpdir (SST scripts write there too).
func (c MemberConfig) TmpDir() string { return filepath.Join(c.Dir, "tmp") }

// Socket is the unix socket root uses (unix_socket authentication).
func (c MemberConfig) Socket() string { return filepath.Join(c.RunDir(), "mysqld.sock") }

// MyCnf is the path of the rendered option file.
func (c MemberConfig) MyCnf() string { return filepath.Join(c.Dir, "my.cnf") }

// sstMarker exists while the member receives its first full copy (SST):
// a datadir with it is a half-made one, holding nothing of value.
func (c MemberConfig) sstMarker() string { return filepath.Join(c.Dir, "sst-in-progress") }

// RenderMyCnf returns the member's option file.
func RenderMyCnf(c MemberConfig) []byte {
	host, port, _ := net.SplitHostPort(c.Addr)
	var b bytes.Buffer
	fmt.Fprintf(&b, `# Written by scalepress for member %s; rewritten on every up.
[mariadbd]
datadir = %s
socket = %s
pid-file = %s
tmpdir = %s
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
# Binary log in the datadir: archived beside the backups, it lets a restore
# replay to a moment after a backup (docs/adr/0016-backups.md).
log_bin = binlog
server_id = 1
binlog_format = ROW
max_binlog_size = 64M
binlog_expire_logs_seconds = 172800
# Errors go to stderr, which the supervisor writes to DIR/logs/%s.log.
`, c.ID, c.DataDir(), c.Socket(), filepath.Join(c.RunDir(), "mysqld.pid"), c.TmpDir(), host, port, c.BufferPool, c.ID)
	if c.Clustered() {
		var gcomm []string
		var donors []string
		for i, p := range c.Peers {
			h, _, _ := net.SplitHostPort(p)
			gcomm = append(gcomm, net.JoinHostPort(h, fmt.Sprint(GroupPort)))
			if c.PeerIDs[i] != c.ID {
				donors = append([]string{c.PeerIDs[i]}, donors...)
			}
		}
		fmt.Fprintf(&b, `
# Galera: every member accepts writes; a commit is certified in one total
# order across members before it is acknowledged.
default_storage_engine = InnoDB
# Replicated transactions go to this member's binary log too, so that the
# log of any one member holds the whole history.
log_slave_updates = ON
innodb_autoinc_lock_mode = 2
wsrep_on = ON
wsrep_provider = %s
wsrep_cluster_name = %s
wsrep_cluster_address = gcomm://%s
wsrep_node_name = %s
wsrep_node_address = %s
# Each member has its own loopback address: bind every Galera port to it.
wsrep_sst_receive_address = %s
# evs.join_retrans_period: once the survivors suspect a lost member, each
# round of the membership change waits for a join retransmission; 0.5 s, not
# Galera's 1 s, halves that wait. Eviction itself is unchanged (5 s of
# silence, evs.suspect_timeout): docs/adr/0018-galera-across-hosts.md.
wsrep_provider_options = "gmcast.listen_addr=tcp://%s;ist.recv_addr=%s;gcache.size=%s;evs.join_retrans_period=PT0.5S"
wsrep_sst_method = %s
# Prefer the members that joined last as donors (the router writes to the
# lowest synced id; an rsync donor blocks writes while it copies). The
# trailing comma allows any member when those are unavailable.
wsrep_sst_donor = %s,
wsrep_slave_threads = 2
`, ProviderPath, c.ClusterName, strings.Join(gcomm, ","), c.ID, host,
			net.JoinHostPort(host, fmt.Sprint(SSTPort)),
			net.JoinHostPort(host, fmt.Sprint(GroupPort)), net.JoinHostPort(host, fmt.Sprint(ISTPort)),
			c.GcacheSize, c.SSTMethod, strings.Join(donors, ","))
	} else {
		b.WriteString("wsrep_on = OFF\n")
	}
	fmt.Fprintf(&b, `
[client]
socket = %s
`, c.Socket())
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

// CheckProvider reports whether galera-4 is installed (needed when clustered).
func CheckProvider() error {
	if _, err := os.Stat(ProviderPath); err != nil {
		return fmt.Errorf("galera: %s not found (Debian package galera-4): run scripts/install-deps.sh", ProviderPath)
	}
	return nil
}

// writeConfig makes the member's directories and writes my.cnf; it never
// touches the datadir's content.
func writeConfig(c MemberConfig) error {
	if err := c.Validate(); err != nil {
		return err
	}
	for _, d := range []string{c.Dir, c.RunDir(), c.TmpDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("galera: prepare: %w", err)
		}
		// mariadbd runs as mysql: it must reach my.cnf and the run dir.
		if err := os.Chmod(d, 0o755); err != nil {
			return fmt.Errorf("galera: prepare: %w", err)
		}
	}
	if err := os.WriteFile(c.MyCnf(), RenderMyCnf(c), 0o644); err != nil {
		return fmt.Errorf("galera: prepare: %w", err)
	}
	for _, d := range []string{c.RunDir(), c.TmpDir()} {
		if err := chown(d, c.UID, c.GID); err != nil {
			return err
		}
	}
	os.Remove(c.Socket()) // a stale socket from a killed run
	if err := os.MkdirAll(c.DataDir(), 0o750); err != nil {
		return fmt.Errorf("galera: prepare: %w", err)
	}
	return chownTree(c.DataDir(), c.UID, c.GID)
}

// initialize makes a new, empty database in the member's datadir.
func initialize(ctx context.Context, c MemberConfig, bin Binaries) error {
	if err := os.RemoveAll(c.DataDir()); err != nil {
		return fmt.Errorf("galera: remove half-made datadir: %w", err)
	}
	if err := os.MkdirAll(c.DataDir(), 0o750); err != nil {
		return fmt.Errorf("galera: init: %w", err)
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
		return fmt.Errorf("galera: init: %w", err)
	}
	return nil
}

// Command returns the program and arguments that run the member in the
// foreground; extra are the one-off options of this start (a recovered
// position, the bootstrap flag), never persisted anywhere.
func Command(c MemberConfig, bin Binaries, extra ...string) (string, []string) {
	return bin.Mariadbd, append([]string{"--defaults-file=" + c.MyCnf()}, extra...)
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

// MarkInitialized marks a datadir made outside Prepare (a restored backup)
// as a complete database, which Prepare then keeps.
func MarkInitialized(datadir string) error {
	if err := os.WriteFile(filepath.Join(datadir, initMarker), []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644); err != nil {
		return fmt.Errorf("galera: mark initialised: %w", err)
	}
	return nil
}
