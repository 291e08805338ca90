// Package config is the scalepress configuration file: its format (YAML), its
// defaults (everything on loopback), and its validation, which names the field.
// Only this package knows the file format; roles get plain specs.
package config

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/scalepress/scalepress/internal/throttle"
)

// Config is the whole environment.
type Config struct {
	Site      Site      `yaml:"site"`
	API       API       `yaml:"api"`
	Edges     []Edge    `yaml:"edges"`
	Nodes     Nodes     `yaml:"nodes"`
	Autoscale Autoscale `yaml:"autoscaling"`
	DB        DB        `yaml:"db"`
	Cache     Cache     `yaml:"cache"`
	Redis     Redis     `yaml:"redis"`
	WordPress WordPress `yaml:"wordpress"`
	Supervise Supervise `yaml:"supervise"`
	DNS       DNS       `yaml:"dns"`
	Files     Files     `yaml:"files"`
	HTTP      HTTP      `yaml:"http"`
	Scheduler Scheduler `yaml:"scheduler"`
	TLS       TLS       `yaml:"tls"`
	Backup    Backup    `yaml:"backup"`
	Releases  Releases  `yaml:"releases"`
}

// Releases is where new release archives come from, which of them roll
// out by themselves and how many releases are kept
// (docs/adr/0023-releases.md).
type Releases struct {
	// SourceDir is a directory release archives (.tar.gz, .tgz, .zip:
	// WordPress core, plugins, themes) are dropped into; "" = none (only
	// `scalepress update`).
	SourceDir string `yaml:"source_dir"`
	// Auto is which newer versions found there roll out without being
	// asked, per kind.
	Auto AutoPolicy `yaml:"auto"`
	// CheckEvery is how often SourceDir is looked at.
	CheckEvery time.Duration `yaml:"check_every"`
	// Keep is how many releases (the newest) are kept; the live one and
	// the one before it are kept whatever their age. 0 (the default) keeps
	// every release, so that rollback reaches any of them (issue 17).
	Keep int `yaml:"keep"`
}

// AutoPolicy is releases.auto: for core, plugins and themes, AutoMinor
// (the running major line only), AutoAll or AutoOff. A single value
// (`auto: minor`) sets all three.
type AutoPolicy struct {
	Core    string `yaml:"core"`
	Plugins string `yaml:"plugins"`
	Themes  string `yaml:"themes"`
}

// UnmarshalYAML takes a mapping of the kinds or one value for all three.
func (p *AutoPolicy) UnmarshalYAML(n *yaml.Node) error {
	if n.Tag == "!!null" {
		return nil // `auto:` with nothing: the defaults
	}
	if n.Kind == yaml.ScalarNode {
		var v string
		if err := n.Decode(&v); err != nil {
			return err
		}
		*p = AutoPolicy{Core: v, Plugins: v, Themes: v}
		return nil
	}
	type plain AutoPolicy
	return n.Decode((*plain)(p))
}

// For is the policy for kind ("core", "plugin", "theme").
func (p AutoPolicy) For(kind string) string {
	switch kind {
	case "plugin":
		return p.Plugins
	case "theme":
		return p.Themes
	}
	return p.Core
}

// The values of releases.auto.
const (
	AutoOff   = "off"
	AutoMinor = "minor"
	AutoAll   = "all"
)

// Backup is where backups go, when the controller takes them and how many
// it keeps (docs/adr/0016-backups.md).
type Backup struct {
	// To is the backup target: a directory; "" is DIR/backups.
	To string `yaml:"to"`
	// Every is how often the controller takes a backup; 0 = never (only
	// `scalepress backup`).
	Every time.Duration `yaml:"every"`
	// KeepHourly and KeepDaily are the retention: the newest backup of each
	// of the last KeepHourly hours and of the last KeepDaily days is kept
	// (the newest backup always); the others are removed after each
	// scheduled run.
	KeepHourly int `yaml:"keep_hourly"`
	KeepDaily  int `yaml:"keep_daily"`
	// BinlogInterval is how often the database's binary logs are archived
	// beside the backups for point-in-time restores; 0 = not archived.
	BinlogInterval time.Duration `yaml:"binlog_interval"`
	// S3 is how to reach the object storage of an s3://BUCKET/PREFIX
	// target (To, or `--to`).
	S3 BackupS3 `yaml:"s3"`
}

// BackupS3 reaches the S3-compatible storage of backups to s3://BUCKET/PREFIX.
type BackupS3 struct {
	Endpoint      string `yaml:"endpoint"`
	Region        string `yaml:"region"`
	AccessKeyFile string `yaml:"access_key_file"`
	SecretKeyFile string `yaml:"secret_key_file"`
	CAFile        string `yaml:"ca_file"`
}

// Scheduler runs the node group: as child processes of the controller
// (local), or as one Nomad job (nomad) while every other role stays local.
type Scheduler struct {
	Kind    string `yaml:"kind"`    // local | nomad
	Address string `yaml:"address"` // Nomad's HTTP API
	// TokenFile holds the Nomad ACL token; CAFile checks Nomad's
	// certificate; CertFile and KeyFile are the client certificate.
	TokenFile string `yaml:"token_file"`
	CAFile    string `yaml:"ca_file"`
	CertFile  string `yaml:"cert_file"`
	KeyFile   string `yaml:"key_file"`
	Region    string `yaml:"region"`
	Namespace string `yaml:"namespace"`
	// Datacenters the node job may run in.
	Datacenters []string `yaml:"datacenters"`
	// NodeMeta: nodes run only on Nomad clients whose node meta has each
	// key with its value (e.g. scalepress_region: eu).
	NodeMeta map[string]string `yaml:"node_meta"`
	// Job is the node job's id (its variable: nomad/jobs/JOB).
	Job string `yaml:"job"`
	// CPU (MHz) and MemoryMB Nomad reserves per node.
	CPU      int `yaml:"cpu"`
	MemoryMB int `yaml:"memory_mb"`
	// Roles are the roles besides the nodes that Nomad runs as jobs of
	// their own (RoleFiles, ...): placed, restarted and moved by Nomad
	// instead of being children of the controller.
	Roles []string `yaml:"roles"`
	// RoleMeta constrains those jobs to Nomad clients whose node meta has
	// each key with its value, as NodeMeta does for the nodes.
	RoleMeta map[string]string `yaml:"role_meta"`
}

// Roles Nomad may run (scheduler.roles).
const (
	RoleFiles = "files"
	RoleRedis = "redis"
	RoleDNS   = "dns"
	RoleEdge  = "edge"
)

// NomadRoles is every role scheduler.roles may name.
var NomadRoles = []string{RoleFiles, RoleRedis, RoleDNS, RoleEdge}

// EdgeRegionMeta is the Nomad node meta key naming a client's region: an
// edge on Nomad runs only on clients whose value is its edges[].region.
const EdgeRegionMeta = "scalepress_region"

// OnNomad: the scheduler is Nomad and it runs role.
func (s Scheduler) OnNomad(role string) bool {
	return s.Kind == SchedulerNomad && slices.Contains(s.Roles, role)
}

// Scheduler kinds.
const (
	SchedulerLocal = "local"
	SchedulerNomad = "nomad"
)

// Site is what the visitor sees.
type Site struct {
	Title      string `yaml:"title"`
	URL        string `yaml:"url"` // empty: http://<first edge addr>
	AdminUser  string `yaml:"admin_user"`
	AdminEmail string `yaml:"admin_email"`
	Debug      bool   `yaml:"debug"` // keep internal headers on responses
}

// API is the controller's control API.
type API struct {
	Addr string `yaml:"addr"`
	// AllowedHosts are further Host header values (host:port) the API
	// answers to, e.g. a name a proxy in front uses; requests naming any
	// other host are refused (DNS rebinding).
	AllowedHosts []string `yaml:"allowed_hosts"`
}

// Edge is one edge process: the site's HTTP port in one region.
type Edge struct {
	ID     string `yaml:"id"`
	Region string `yaml:"region"`
	Addr   string `yaml:"addr"`
	// HTTPSAddr overrides tls.https_addr for this edge.
	HTTPSAddr string `yaml:"https_addr"`
}

// Nodes is the PHP node group.
type Nodes struct {
	Count int `yaml:"count"`
	// IPBase: node N listens on IPBase+N, Port.
	IPBase string `yaml:"ip_base"`
	Port   int    `yaml:"port"`
	// PHPChildren is php-fpm's pm.max_children per node; 0 sizes it from CPUs and memory.
	PHPChildren    int `yaml:"php_children"`
	PHPMaxRequests int `yaml:"php_max_requests"`
	// PHPNice lowers the PHP workers' CPU priority (nice 1..19; 0 = as the
	// node's other processes): the edge, the database and the controller
	// keep their CPU when PHP saturates the host (docs/adr/0024-capacity.md).
	PHPNice int `yaml:"php_nice"`
	// SlowStart: a new node ramps to its full share of requests over this long.
	SlowStart time.Duration `yaml:"slow_start"`
	// DeregistrationDelay bounds how long a leaving node may finish its requests.
	DeregistrationDelay time.Duration `yaml:"deregistration_delay"`
}

// Autoscale is target tracking on PHP utilisation, and self-healing.
type Autoscale struct {
	Enabled       bool          `yaml:"enabled"`
	Min           int           `yaml:"min"`
	Max           int           `yaml:"max"`
	Target        float64       `yaml:"target"`
	ScaleInWindow time.Duration `yaml:"scale_in_window"`
	MaxStep       int           `yaml:"max_step"`
	// WorkersPerCore is the host's CPU budget: the group never runs more
	// PHP workers than cores × WorkersPerCore (0 = no budget).
	WorkersPerCore float64 `yaml:"workers_per_core"`
	// CPUSaturated: from this CPU pressure (/proc/pressure/cpu some avg10,
	// 0 to 1) the host counts as saturated and the group does not grow on
	// it, until the pressure is below CPUClear (0 = no check).
	CPUSaturated float64 `yaml:"cpu_saturated"`
	CPUClear     float64 `yaml:"cpu_clear"`
	// On a saturated host the group grows by measured steps of one node,
	// kept while each raises the served rate (PHP requests completed per
	// second, over StepWindow) by at least StepGain; growth that stopped
	// stays stopped for StepCooldown (docs/adr/0032-measured-steps.md).
	// StepGain 0: a saturated host holds the size.
	StepGain     float64       `yaml:"step_gain"`
	StepWindow   time.Duration `yaml:"step_window"`
	StepCooldown time.Duration `yaml:"step_cooldown"`
	// At most MaxReplacements failed nodes are replaced per ReplacementWindow.
	MaxReplacements   int           `yaml:"max_replacements"`
	ReplacementWindow time.Duration `yaml:"replacement_window"`
	// RebalanceAfter: with nodes on several hosts (scheduler.kind: nomad),
	// when the busiest host runs two nodes more than the least busy, nodes
	// move one at a time once every host has been ready this long; 0 = off.
	RebalanceAfter time.Duration `yaml:"rebalance_after"`
}

// DB is the database: members and the router in front of them.
type DB struct {
	// Members: 1 runs a standalone MariaDB; an odd number up to 9 runs a
	// Galera cluster (every member accepts writes).
	Members int `yaml:"members"`
	// IPBase: member N listens on IPBase+N, Port (and Galera's 4567, 4568, 4444).
	IPBase string `yaml:"ip_base"`
	Port   int    `yaml:"port"`
	Router string `yaml:"router"`
	// RouterMode: single (every connection to one synced member) or multi
	// (least connections across the synced members).
	RouterMode string `yaml:"router_mode"`
	// RouterMetrics: optional IP:port where the router serves /metrics and /status.
	RouterMetrics string `yaml:"router_metrics"`
	Name          string `yaml:"name"`
	User          string `yaml:"user"`
	BufferPool    string `yaml:"buffer_pool"`
	// SSTMethod: how a member without data gets a full copy (rsync or mariabackup).
	SSTMethod string `yaml:"sst_method"`
	// GcacheSize: Galera's write-set cache per member; a member that returns
	// within it catches up by IST instead of a full copy.
	GcacheSize string `yaml:"gcache_size"`
	// Hosts places member N on Hosts[N-1], another machine, driven through
	// that host's db-agent (docs/multi-host.md, "Galera across hosts");
	// empty runs every member here, on ip_base.
	Hosts []DBHost `yaml:"hosts"`
	// Agents says who starts the db-agents of db.hosts: "operator" (from
	// the specs in DIR/run/specs) or "nomad" (a job on the Nomad of the
	// scheduler section, one agent per host whose node meta scalepress_db
	// is its id).
	Agents string `yaml:"agents"`
	// RouterPerHost runs a router on every Nomad client that runs nodes
	// (a system job), at db.router, which must then be a loopback address:
	// the same on every host, so WordPress everywhere reaches the router of
	// its own host, and a node's SQL does not cross the controller's host.
	RouterPerHost bool `yaml:"router_per_host"`
}

// Who starts the db-agents.
const (
	DBAgentsOperator = "operator"
	DBAgentsNomad    = "nomad"
)

// DBHost is one DB host: its db-agent and the address its member binds.
type DBHost struct {
	// ID names the host's db-agent (its token is issued for this id).
	ID string `yaml:"id"`
	// Addr is the host's IP: the member listens on Addr:db.port, Galera on
	// 4567, 4568 and 4444 of it.
	Addr string `yaml:"addr"`
	// Agent is the db-agent's IP:port.
	Agent string `yaml:"agent"`
	// Dir is the member's directory on that host.
	Dir string `yaml:"dir"`
}

// Cache is the edges' page cache and static-asset cache.
type Cache struct {
	Enabled    bool          `yaml:"enabled"`
	MaxMB      int           `yaml:"max_mb"`
	DefaultTTL time.Duration `yaml:"default_ttl"`
	StaticTTL  time.Duration `yaml:"static_ttl"`
	// FastHits: the edges answer HTTP/1.1 cache hits (plain or HTTPS) without net/http
	// (internal/hitfront); false sends every request through net/http.
	FastHits bool `yaml:"fast_hits"`
}

// Redis is the object cache server.
type Redis struct {
	Addr      string `yaml:"addr"`
	MaxMemory string `yaml:"maxmemory"`
}

// Files is the `files` role: the canonical site tree every node's docroot
// is kept identical to.
type Files struct {
	Enabled   bool   `yaml:"enabled"`
	Addr      string `yaml:"addr"`
	MaxFileMB int    `yaml:"max_file_mb"`
	// QuotaMB bounds what the store's blobs take (0 = no quota).
	QuotaMB int `yaml:"quota_mb"`
	// GCInterval is how often blobs no file uses any more are removed
	// (0 = never).
	GCInterval time.Duration `yaml:"gc_interval"`
	// Store is where the files role keeps blobs, the change log and
	// snapshots: its local directory, or an S3-compatible bucket.
	Store FilesStore `yaml:"store"`
}

// FilesStore is the backend of the files role (docs/adr/0012-files-on-s3.md).
type FilesStore struct {
	// Kind is "local" (DIR/files) or "s3".
	Kind string `yaml:"kind"`
	// Endpoint is the S3 API's base URL (path-style), http:// or https://.
	Endpoint string `yaml:"endpoint"`
	Bucket   string `yaml:"bucket"`
	// Prefix keeps the store's objects under PREFIX/ in the bucket.
	Prefix string `yaml:"prefix"`
	Region string `yaml:"region"`
	// AccessKeyFile and SecretKeyFile hold the credentials (first line),
	// readable by their owner only.
	AccessKeyFile string `yaml:"access_key_file"`
	SecretKeyFile string `yaml:"secret_key_file"`
	// CAFile holds the PEM certificates an https endpoint must chain to
	// ("" = the system's).
	CAFile string `yaml:"ca_file"`
}

// HTTP bounds what one client can hold of the request path
// (docs/adr/0009-trust-model.md): who may claim a client address, how many
// requests one client has in flight to the nodes, how slow and how large a
// request body may be.
type HTTP struct {
	// TrustedProxies are the networks (CIDRs) of proxies in front of the
	// edges whose X-Forwarded-For, -Proto and -Host the edges believe.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// ClientConcurrency caps the requests one client address has in flight
	// to the nodes at each edge (cache hits do not count); 0 = no cap.
	ClientConcurrency int `yaml:"client_concurrency"`
	// BodyTimeout is the longest wait for the next bytes of a request body,
	// at the edge and at the node.
	BodyTimeout time.Duration `yaml:"body_timeout"`
	// MaxBodyMB is the largest request body, in MiB, at the edge and the node.
	MaxBodyMB int `yaml:"max_body_mb"`
	// Admission bounds each node's requests in flight at each edge to its
	// PHP workers (nodes.php_children); QueueBacklog more per node in
	// service wait at the edge, fair between clients, for at most
	// QueueTimeout; beyond that a stale copy or a fast 503
	// (docs/adr/0024-capacity.md).
	Admission    bool          `yaml:"admission"`
	QueueBacklog int           `yaml:"queue_backlog"`
	QueueTimeout time.Duration `yaml:"queue_timeout"`
	// UpstreamHeaderTimeout bounds an edge's wait for a node's response
	// head to a GET or HEAD while another node is in service; then the
	// request is sent once to another node (docs/adr/0021).
	UpstreamHeaderTimeout time.Duration `yaml:"upstream_header_timeout"`
	// LoginThrottle limits password guessing at each edge.
	LoginThrottle LoginThrottle `yaml:"login_throttle"`
}

// LoginThrottle limits failed logins (POST wp-login.php, xmlrpc.php, Basic
// credentials answered 401) per client address and per user name, at each
// edge on its own (docs/adr/0014-login-throttling.md).
type LoginThrottle struct {
	Enabled bool `yaml:"enabled"`
	// PerAddress: failed attempts per client address (IPv6: per /64) per
	// window; 0 = no limit.
	PerAddress int `yaml:"per_address"`
	// PerUser: failed attempts per user name, all addresses together, per
	// window; 0 = no limit. Addresses the user logged in from within
	// TrustedFor are spared.
	PerUser int           `yaml:"per_user"`
	Window  time.Duration `yaml:"window"`
	// Block is how long a key over its limit gets 429.
	Block      time.Duration `yaml:"block"`
	TrustedFor time.Duration `yaml:"trusted_for"`
	// MaxEntries bounds each of the edge's tables (addresses, user names,
	// trusted pairs).
	MaxEntries int `yaml:"max_entries"`
}

// Throttle is the limiter configuration of l.
func (l LoginThrottle) Throttle() throttle.Config {
	return throttle.Config{PerAddress: l.PerAddress, PerUser: l.PerUser, Window: l.Window, Block: l.Block,
		TrustFor: l.TrustedFor, MaxEntries: l.MaxEntries}
}

func defaultLoginThrottle() LoginThrottle {
	t := throttle.DefaultConfig()
	return LoginThrottle{Enabled: true, PerAddress: t.PerAddress, PerUser: t.PerUser, Window: t.Window, Block: t.Block,
		TrustedFor: t.TrustFor, MaxEntries: t.MaxEntries}
}

// WordPress is the site tree and its scheduled work.
type WordPress struct {
	Source       string        `yaml:"source"`
	Permalinks   string        `yaml:"permalinks"`
	CronInterval time.Duration `yaml:"cron_interval"`
	// LockCode forbids every file change from wp-admin (DISALLOW_FILE_MODS):
	// for sites whose plugins and themes are deployed another way.
	LockCode bool `yaml:"lock_code"`
	// BlockExternalHTTP keeps WordPress from making HTTP requests to other
	// hosts (update checks, oEmbed, pingbacks): for closed networks and tests.
	BlockExternalHTTP bool `yaml:"block_external_http"`
}

// Supervise is the restart policy for every child process.
type Supervise struct {
	MaxRestarts int           `yaml:"max_restarts"`
	Window      time.Duration `yaml:"window"`
}

// Default returns the built-in configuration: everything on loopback at the
// addresses of the architecture's address plan.
func Default() Config {
	return Config{
		Site: Site{
			Title:      "scalepress",
			AdminUser:  "admin",
			AdminEmail: "admin@example.invalid",
		},
		API:   API{Addr: "127.0.0.1:9090"},
		Edges: []Edge{{ID: "edge-1", Region: "default", Addr: "127.0.0.1:8080"}},
		Nodes: Nodes{
			Count:          2,
			IPBase:         "127.0.1.0",
			Port:           8080,
			PHPChildren:    0,
			PHPMaxRequests: 1000,
			PHPNice:        10,

			SlowStart:           30 * time.Second,
			DeregistrationDelay: 30 * time.Second,
		},
		Autoscale: Autoscale{
			Enabled: true, Min: 2, Max: 8, Target: 0.6, ScaleInWindow: 120 * time.Second, MaxStep: 4,
			WorkersPerCore: 8, CPUSaturated: 0.8, CPUClear: 0.6,
			StepGain: 0.1, StepWindow: 15 * time.Second, StepCooldown: 10 * time.Minute,
			MaxReplacements: 3, ReplacementWindow: time.Minute,
			RebalanceAfter: 30 * time.Second,
		},
		DB: DB{
			Members:    3,
			IPBase:     "127.0.2.0",
			Port:       3306,
			Router:     "127.0.0.1:3306",
			RouterMode: "single",
			Name:       "wordpress",
			User:       "wordpress",
			BufferPool: "128M",
			SSTMethod:  "rsync",
			Agents:     DBAgentsOperator,
			GcacheSize: "128M",
		},
		Cache: Cache{Enabled: true, MaxMB: 256, DefaultTTL: 5 * time.Minute, StaticTTL: time.Minute, FastHits: true},
		Redis: Redis{Addr: "127.0.3.1:6379", MaxMemory: "64mb"},
		WordPress: WordPress{
			Source:       "/usr/share/wordpress",
			Permalinks:   "/%postname%/",
			CronInterval: time.Minute,
		},
		Supervise: Supervise{MaxRestarts: 5, Window: time.Minute},
		DNS:       defaultDNS(),
		Files: Files{Enabled: true, Addr: "127.0.4.1:8080", MaxFileMB: 256, QuotaMB: 10240, GCInterval: time.Hour,
			Store: FilesStore{Kind: "local", Region: "us-east-1"}},
		Backup:   Backup{KeepHourly: 24, KeepDaily: 7, BinlogInterval: 30 * time.Second, S3: BackupS3{Region: "us-east-1"}},
		Releases: Releases{Auto: AutoPolicy{Core: AutoMinor, Plugins: AutoMinor, Themes: AutoMinor}, CheckEvery: 5 * time.Minute},
		HTTP: HTTP{TrustedProxies: []string{}, ClientConcurrency: 64, BodyTimeout: 30 * time.Second, MaxBodyMB: 64,
			Admission: true, QueueBacklog: 16, QueueTimeout: 3 * time.Second, UpstreamHeaderTimeout: 15 * time.Second,
			LoginThrottle: defaultLoginThrottle()},
		Scheduler: Scheduler{Kind: SchedulerLocal, Address: "http://127.0.0.1:4646", Datacenters: []string{"*"}, Job: "scalepress-nodes", CPU: 500, MemoryMB: 512},
		TLS:       defaultTLS(),
	}
}

// SiteURL is the public URL of the site.
func (c *Config) SiteURL() string {
	if c.Site.URL != "" {
		return c.Site.URL
	}
	if len(c.Edges) == 0 {
		return ""
	}
	if c.TLS.Enabled() {
		if len(c.TLS.ACME.Names) > 0 {
			return "https://" + hostPort(c.TLS.ACME.Names[0], c.EdgeHTTPSAddr(0))
		}
		return "https://" + c.EdgeHTTPSAddr(0)
	}
	return "http://" + c.Edges[0].Addr
}

// NodeAddr is the listen address of node n (1-based).
func (c *Config) NodeAddr(n int) string {
	return offsetAddr(c.Nodes.IPBase, n, c.Nodes.Port)
}

// DBMemberAddr is the SQL address of member n (1-based): on its host's
// address when db.hosts places it, else ip_base + n.
func (c *Config) DBMemberAddr(n int) string {
	if len(c.DB.Hosts) > 0 {
		if n < 1 || n > len(c.DB.Hosts) {
			return ""
		}
		ip, err := netip.ParseAddr(c.DB.Hosts[n-1].Addr)
		if err != nil {
			return ""
		}
		return netip.AddrPortFrom(ip, uint16(c.DB.Port)).String()
	}
	return offsetAddr(c.DB.IPBase, n, c.DB.Port)
}

func offsetAddr(base string, n, port int) string {
	ip, err := netip.ParseAddr(base)
	if err != nil {
		return ""
	}
	for range n {
		ip = ip.Next()
	}
	return netip.AddrPortFrom(ip, uint16(port)).String()
}

// MaxNodes is the most nodes that may run at once (their addresses are reserved).
func (c *Config) MaxNodes() int {
	if c.Autoscale.Enabled {
		// Replacements may start while the node they replace drains.
		return c.Autoscale.Max + c.Autoscale.MaxReplacements
	}
	return c.Nodes.Count + c.Autoscale.MaxReplacements
}

// NodeID names node n.
func NodeID(n int) string { return fmt.Sprintf("node-%d", n) }

// DBMemberID names member n.
func DBMemberID(n int) string { return fmt.Sprintf("db-%d", n) }

// hostPort is name with addr's port, left out when it is 443.
func hostPort(name, addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil || port == "443" {
		return name
	}
	return net.JoinHostPort(name, port)
}
