package api

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/scalepress/scalepress/internal/atomicfile"
)

// NodeSpec is what the controller tells a node agent (`scalepress node --spec FILE`).
// The node's php-fpm and filesync agent are its sibling processes, started
// by the launcher; the agent talks to php-fpm on the socket in RunDir.
type NodeSpec struct {
	ID      string `json:"id"`
	Addr    string `json:"addr"`    // HTTP listen address of the agent
	Docroot string `json:"docroot"` // the node's own copy of the site tree
	RunDir  string `json:"run_dir"` // php-fpm's socket
	// PHPChildren is php-fpm's pm.max_children (pm = static): the FastCGI
	// connections the agent keeps.
	PHPChildren int `json:"php_children"`
	// ForwardKey (hex) checks the edges' signatures (HeaderEdge): the
	// node believes X-Forwarded-* only on requests whose signature checks.
	ForwardKey string `json:"forward_key"`
	// BodyTimeout is the longest wait for the next bytes of a request body
	// (Go duration; "" = 30s); MaxBody bounds a body in bytes (0 = 64 MiB).
	BodyTimeout string `json:"body_timeout,omitempty"`
	MaxBody     int64  `json:"max_body,omitempty"`
	// BodyDir holds request bodies too large for memory while they arrive
	// (private to the agent's user; "" = RunDir/bodies).
	BodyDir string `json:"body_dir,omitempty"`
	// Files is the address of the files role ("" = no file sync); the
	// node's filesync agent keeps Docroot identical to it and records its
	// progress in FilesState, which the agent reports.
	Files      string `json:"files,omitempty"`
	FilesState string `json:"files_state,omitempty"`
}

// FilesRules are the filesync rules shared by the files role and the nodes.
// A zero field (nil Exclude, 0 MaxFileSize or MaxDepth) means filesync's
// default for it.
type FilesRules struct {
	Exclude     []string `json:"exclude"`
	MaxFileSize int64    `json:"max_file_size"`
	MaxDepth    int      `json:"max_depth"`
	// Writable are the tree's parts PHP may write (internal/fileperm): the
	// directories a node's agent makes there are group-writable.
	Writable []string `json:"writable,omitempty"`
}

// FilesControllerID is the identity of the controller's files token
// (seeding, status): the origin of the changes it pushes. Nodes are
// "node-N", edges their configured id.
const FilesControllerID = "controller"

// FilesMetricsID is the identity of DIR/secrets/files-metrics-token: it
// may read the files role's metrics and nothing else (a scraper holding it
// cannot read the site tree, wp-config.php included).
const FilesMetricsID = "metrics"

// FilesSpec is what the controller tells the files role (`scalepress files --spec FILE`).
type FilesSpec struct {
	Addr  string     `json:"addr"`
	Dir   string     `json:"dir"` // blobs, change log, snapshots
	Rules FilesRules `json:"rules"`
	// Key is the files key (hex) that verifies every caller's token.
	Key string `json:"key"`
	// QuotaBytes bounds the stored blobs (0 = none).
	QuotaBytes int64 `json:"quota_bytes"`
	// GCInterval is how often unreferenced blobs are collected (Go
	// duration; "0s" = never).
	GCInterval string `json:"gc_interval"`
	// S3, when set, keeps the store in a bucket; Dir then only holds the
	// lock and spooled uploads.
	S3 *FilesS3Spec `json:"s3,omitempty"`
}

// FilesS3Spec is the bucket of the files store, with its credentials (the
// spec is 0600 and the role user's, like every role secret; ADR 9).
type FilesS3Spec struct {
	Endpoint  string `json:"endpoint"`
	Bucket    string `json:"bucket"`
	Prefix    string `json:"prefix"`
	Region    string `json:"region"`
	AccessKey string `json:"access_key"`
	SecretKey string `json:"secret_key"`
	// CA is PEM certificates the endpoint must chain to ("" = the system's).
	CA string `json:"ca,omitempty"`
}

// FilesyncSpec is what a node agent tells its filesync child
// (`scalepress filesync --spec FILE`).
type FilesyncSpec struct {
	NodeID string `json:"node_id"`
	Server string `json:"server"` // base URL of the files role
	// ServerFile, when set, replaces Server: a file whose first line is
	// the files role's base URL, read before each request (a files role
	// a scheduler may move; node-host keeps it current).
	ServerFile string     `json:"server_file,omitempty"`
	Token      string     `json:"token"` // the node's files token
	Docroot    string     `json:"docroot"`
	StateDir   string     `json:"state_dir"`
	Rules      FilesRules `json:"rules"`
	// LinkPool, when set, is the machine's link pool: files PHP cannot
	// write are hard-linked from it into the docroot (ADR 29).
	LinkPool string `json:"link_pool,omitempty"`
}

// FilesQuarantineFile is the journal, in a node's filesync state directory,
// of the changes of the files log its agent quarantined: one
// FilesQuarantine a line. The node agent reports it (files_quarantined).
const FilesQuarantineFile = "quarantine.jsonl"

// FilesQuarantine is a line of FilesQuarantineFile: a change that kept
// failing on this node and was skipped, or (Released) the end of a path's
// quarantine because a later change to it applied.
type FilesQuarantine struct {
	Seq      uint64    `json:"seq"`
	Op       string    `json:"op,omitempty"`
	Path     string    `json:"path"`
	Error    string    `json:"error,omitempty"`
	Attempts int       `json:"attempts,omitempty"`
	Time     time.Time `json:"time"`
	Released bool      `json:"released,omitempty"`
}

// EdgeSpec is what the controller tells an edge (`scalepress edge --spec FILE`).
type EdgeSpec struct {
	ID     string `json:"id"`
	Region string `json:"region"`
	Addr   string `json:"addr"`
	// UpstreamsURL is polled for the in-service node set (GET returns Upstreams).
	UpstreamsURL string `json:"upstreams_url"`
	// AckURL is told (POST {"generation": N}, ControlToken) each upstream
	// generation the edge applied.
	AckURL string `json:"ack_url,omitempty"`
	// EventsURL is told (POST EdgeEvents, ControlToken) what the edge
	// reports as events: the login throttling blocks that started.
	EventsURL string `json:"events_url,omitempty"`
	// ControlToken is this edge's token for the control API.
	ControlToken string `json:"control_token,omitempty"`
	// Debug keeps internal headers (node id) on responses.
	Debug bool `json:"debug"`
	// SlowStart is how long a new node takes to get its full share (Go duration; "" = default 30s).
	SlowStart string `json:"slow_start,omitempty"`
	// PurgeSecret authenticates POST /_scalepress/purge.
	PurgeSecret string `json:"purge_secret,omitempty"`
	// Cache configures the page cache; nil = defaults.
	Cache *CacheSpec `json:"cache,omitempty"`
	// Files is the address of the files role ("" = none): an upload the
	// chosen node answers 404 for is served from there.
	Files string `json:"files,omitempty"`
	// FilesToken is this edge's files token (identity ID; reads only).
	FilesToken string `json:"files_token,omitempty"`
	// ForwardKey (hex) signs the forwarded headers of every request sent
	// to a node (HeaderEdge).
	ForwardKey string `json:"forward_key"`
	// HTTP bounds what one client can hold of the request path.
	HTTP HTTPSpec `json:"http"`
	// TLS, when not nil, serves HTTPS (docs/adr/0013-edge-tls.md).
	TLS *TLSSpec `json:"tls,omitempty"`
}

// TLSSpec is HTTPS at an edge.
type TLSSpec struct {
	// Addr is the HTTPS listen address (TCP, and UDP for HTTP/3).
	Addr         string `json:"addr"`
	RedirectHTTP bool   `json:"redirect_http"`
	// HSTS is the Strict-Transport-Security max-age in seconds (0 = none).
	HSTS       int64 `json:"hsts,omitempty"`
	HTTP3      bool  `json:"http3,omitempty"`
	MaxStreams int   `json:"max_streams"`
	// Certificates are PEM files, reloaded when they change.
	Certificates []CertFileSpec `json:"certificates,omitempty"`
	ACME         *ACMESpec      `json:"acme,omitempty"`
	// TicketKey (hex) derives the session ticket keys every edge shares.
	TicketKey string `json:"ticket_key,omitempty"`
}

// CertFileSpec is a certificate chain file and its key file.
type CertFileSpec struct {
	CertFile string `json:"cert_file"`
	KeyFile  string `json:"key_file"`
}

// ACMESpec is automatic certificates; Storage is the directory all edges share.
type ACMESpec struct {
	Email        string `json:"email,omitempty"`
	DirectoryURL string `json:"directory_url"`
	// CAPEM is tls.acme.ca_file's contents (read by the controller: the
	// edge's user need not be able to read the file).
	CAPEM         string   `json:"ca_pem,omitempty"`
	Names         []string `json:"names"`
	Storage       string   `json:"storage"`
	CheckInterval string   `json:"check_interval"`
}

// HTTPSpec is the http configuration an edge is told.
type HTTPSpec struct {
	// TrustedProxies are CIDRs whose X-Forwarded-* the edge believes.
	TrustedProxies []string `json:"trusted_proxies,omitempty"`
	// ClientConcurrency caps requests in flight to nodes per client address (0 = no cap).
	ClientConcurrency int `json:"client_concurrency"`
	// BodyTimeout is the longest wait for the next bytes of a request body
	// (Go duration; "" = 30s); MaxBody bounds a body in bytes (0 = 64 MiB).
	BodyTimeout string `json:"body_timeout,omitempty"`
	MaxBody     int64  `json:"max_body,omitempty"`
	// NodeLimit is how many requests the edge lets each node have in
	// flight (its PHP workers); 0 = no admission control. QueueBacklog is
	// how many more may wait at the edge per node in service, for at most
	// QueueTimeout (Go duration); beyond that: a stale copy or a fast 503.
	NodeLimit    int    `json:"node_limit,omitempty"`
	QueueBacklog int    `json:"queue_backlog,omitempty"`
	QueueTimeout string `json:"queue_timeout,omitempty"`
	// UpstreamHeaderTimeout (Go duration; "" = 15s) bounds the wait for a
	// node's response head to a GET or HEAD while another node is in
	// service; the request then goes once to another node (ADR 0021).
	UpstreamHeaderTimeout string `json:"upstream_header_timeout,omitempty"`
	// LoginThrottle limits password guessing (docs/adr/0014-login-throttling.md);
	// nil = off.
	LoginThrottle *LoginThrottleSpec `json:"login_throttle,omitempty"`
}

// LoginThrottleSpec is the login throttling an edge applies on its own
// (durations are Go durations).
type LoginThrottleSpec struct {
	PerAddress int    `json:"per_address"`
	PerUser    int    `json:"per_user"`
	Window     string `json:"window"`
	Block      string `json:"block"`
	TrustedFor string `json:"trusted_for"`
	MaxEntries int    `json:"max_entries"`
}

// RouterSpec is what the controller tells the database router.
type RouterSpec struct {
	Addr string `json:"addr"`
	// MembersURL is polled for the members the router may send connections
	// to; only a 200 is applied (the controller answers 503 until it has
	// observed the members), an empty list too.
	MembersURL string `json:"members_url"`
	// Members is the initial member list, used until MembersURL answers.
	Members []string `json:"members"`
	// Mode is how connections are spread: "single" (default: every
	// connection to one synced member) or "multi" (least connections).
	// DBMembers.Mode, when set, overrides it.
	Mode string `json:"mode,omitempty"`
	// MetricsAddr, when set, serves GET /metrics (Prometheus text) and
	// GET /status (JSON) about the router's choice and connections.
	MetricsAddr string `json:"metrics_addr,omitempty"`
}

// Upstreams is the set of in-service nodes the edge balances over.
type Upstreams struct {
	Generation uint64     `json:"generation"`
	Nodes      []Upstream `json:"nodes"`
}

// UpstreamsAck is what an edge POSTs to APIPathUpstreamsAck: the
// generation of Upstreams it applied.
type UpstreamsAck struct {
	Generation uint64 `json:"generation"`
}

// Upstream is one node address.
type Upstream struct {
	ID   string `json:"id"`
	Addr string `json:"addr"`
}

// DBMembers is the set of members the router may use, in preference order:
// the synced members, by id.
type DBMembers struct {
	Members []string `json:"members"`
	// IDs name Members (same order), for metrics.
	IDs []string `json:"ids,omitempty"`
	// Mode is "single" or "multi" (see RouterSpec.Mode); empty keeps the router's.
	Mode string `json:"mode,omitempty"`
}

// WriteSpec writes v as JSON to path atomically and durably, readable by
// its owner only: specs may hold secrets.
func WriteSpec(path string, v any) error {
	return atomicfile.WriteJSON(path, v, 0o600)
}

// ReadSpec reads a JSON spec written by WriteSpec.
func ReadSpec(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read spec: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("read spec %s: %w", path, err)
	}
	return nil
}

// CacheSpec is the part of the page cache configuration an edge is told.
type CacheSpec struct {
	Enabled    bool   `json:"enabled"`
	MaxBytes   int64  `json:"max_bytes"`
	DefaultTTL string `json:"default_ttl"` // Go duration
	StaticTTL  string `json:"static_ttl"`
	// SlowHits turns hitfront off: every request goes through net/http
	// (config cache.fast_hits: false).
	SlowHits bool `json:"slow_hits,omitempty"`
}

// NodeHostSpec is what a node needs on the machine that runs it but its id
// and address: `scalepress node-host` (a Nomad task) reads it, and the
// controller builds the same for the nodes it runs itself. It holds
// secrets (the database password in WPConfig, the keys): it reaches a
// Nomad task through the job's variable, never through the job.
type NodeHostSpec struct {
	// StateDir holds the node's directories (nodes/ID), the logs, the pid
	// files and the role specs, laid out as a state directory; Site (in it)
	// is the canonical tree a new docroot is copied from. It is the
	// controller's: `scalepress node-host` replaces it with its own host's
	// directory and bootstraps the docroot from the files role instead.
	StateDir string `json:"state_dir"`
	PHPFPM   string `json:"php_fpm"` // php-fpm's path
	// WPConfig is wp-config.php, written into the docroot readable by PHP.
	WPConfig       string `json:"wp_config"`
	PHPChildren    int    `json:"php_children"`
	PHPMaxRequests int    `json:"php_max_requests"`
	// PHPNice is the PHP workers' nice value (php-fpm process.priority; 0 = unchanged).
	PHPNice     int    `json:"php_nice,omitempty"`
	ForwardKey  string `json:"forward_key"`
	BodyTimeout string `json:"body_timeout,omitempty"`
	MaxBody     int64  `json:"max_body,omitempty"`
	// Files is the files role's address ("" = no file sync); FilesTokens
	// the files token of each node id that may run.
	Files       string            `json:"files,omitempty"`
	FilesTokens map[string]string `json:"files_tokens,omitempty"`
	FilesRules  FilesRules        `json:"files_rules"`
	// LockCode: PHP may write uploads only (wordpress.lock_code).
	LockCode bool `json:"lock_code,omitempty"`
}
