package filesync

import (
	"github.com/scalepress/scalepress/internal/fileperm"

	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/scalepress/scalepress/internal/s3store"
	"github.com/scalepress/scalepress/internal/token"
)

// Rules are the limits every synced path and file must meet. The files role
// enforces them on every push; an agent applies the same Rules before it
// queues a local change, so that a node does not push what the server would
// refuse.
type Rules struct {
	// Exclude lists patterns of paths that are never synced; see the package
	// documentation for the pattern syntax.
	Exclude []string
	// MaxFileSize is the largest file, in bytes, that is synced.
	MaxFileSize int64
	// MaxDepth is the largest number of segments in a path.
	MaxDepth int
	// Perms decides the mode of a directory the agent must make on its
	// own (the parent of a file whose directory it has not seen yet), so
	// that PHP can write into it where it may write (internal/fileperm).
	Perms fileperm.Policy
}

// DefaultExclude are the paths no node shares: caches and upgrade scratch
// space, temporary files, version-control metadata, and the node-local
// wp-config.php.
var DefaultExclude = []string{
	"wp-content/cache/",
	"wp-content/upgrade/",
	"*.tmp",
	".git",
	"wp-config.php",
}

// DefaultRules returns DefaultExclude, 256 MiB files and 64 path segments.
func DefaultRules() Rules {
	return Rules{
		Exclude:     append([]string(nil), DefaultExclude...),
		MaxFileSize: 256 << 20,
		MaxDepth:    64,
	}
}

func (r Rules) validate(prefix string, bad func(field, format string, args ...any)) {
	for i, p := range r.Exclude {
		if _, err := compilePattern(p); err != nil {
			bad(fmt.Sprintf("%sExclude[%d]", prefix, i), "%v", err)
		}
	}
	if r.MaxFileSize <= 0 {
		bad(prefix+"MaxFileSize", "must be positive, got %d", r.MaxFileSize)
	}
	if r.MaxDepth < 1 || r.MaxDepth > hardMaxDepth {
		bad(prefix+"MaxDepth", "must be between 1 and %d, got %d", hardMaxDepth, r.MaxDepth)
	}
}

// Config configures the files role: the Store and its HTTP Server.
type Config struct {
	// Addr is where Run listens.
	Addr string
	// Dir holds the local backend: blobs, the change log and snapshots.
	// With S3 it only holds the lock and spooled uploads.
	Dir string
	// S3, when set, keeps the store in an S3-compatible bucket instead of
	// Dir (docs/adr/0012-files-on-s3.md).
	S3 *s3store.Config
	// Key is the files purpose key (token.Files): every request but
	// GET /healthz needs a bearer token issued with it
	// (docs/adr/0009-trust-model.md).
	Key token.Key
	// Rules are enforced on every push.
	Rules Rules
	// MaxRequestSize bounds the sum of the file sizes of one push.
	MaxRequestSize int64
	// MaxChanges bounds the number of changes in one push.
	MaxChanges int
	// SnapshotEvery is how many log records separate two snapshots.
	SnapshotEvery int
	// KeepSnapshots is how many snapshots are kept; older ones are removed.
	KeepSnapshots int
	// SegmentSize is the size from which the log starts a new segment.
	SegmentSize int64
	// Heartbeat is the interval of keep-alive lines on an idle change stream.
	Heartbeat time.Duration
	// ShutdownTimeout bounds the graceful shutdown of Run.
	ShutdownTimeout time.Duration
	// QuotaBytes bounds the bytes of all stored blobs; an upload that would
	// go over it is refused (507) with nothing written. 0 = no quota.
	QuotaBytes int64
	// GCInterval is how often blobs that no path of the current tree
	// references are removed; 0 = never (Store.GC still works on demand).
	GCInterval time.Duration
	// GCGrace is how long a blob is kept after it was uploaded or last
	// confirmed present (PUT, or HEAD by a writer), referenced or not, so
	// that the blobs of a push in progress survive a collection.
	GCGrace time.Duration
	// ReadHeaderTimeout bounds reading a request's header.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes a keep-alive connection idle for longer.
	IdleTimeout time.Duration
	// MinBodyRate is the slowest a request body (a blob, a push) may arrive
	// and a blob be read, in bytes per second: a transfer of n bytes gets
	// ReadHeaderTimeout + n/MinBodyRate. The change stream has no deadline.
	MinBodyRate int64
}

// DefaultConfig returns the defaults: the files address of the address plan,
// DefaultRules, pushes of at most 1 GiB and 4096 changes, a snapshot every
// 10,000 records (three kept), 64 MiB log segments, a heartbeat every 10 s,
// a 10 GiB quota, garbage collection every hour of blobs unreferenced and
// untouched for an hour, the edge's header and idle timeouts (10 s, 120 s)
// and bodies at 1 MiB/s at least. Dir and Key have no default.
func DefaultConfig() Config {
	return Config{
		Addr:              "127.0.4.1:8080",
		Rules:             DefaultRules(),
		MaxRequestSize:    1 << 30,
		MaxChanges:        4096,
		SnapshotEvery:     10000,
		KeepSnapshots:     3,
		SegmentSize:       64 << 20,
		Heartbeat:         10 * time.Second,
		ShutdownTimeout:   5 * time.Second,
		QuotaBytes:        10 << 30,
		GCInterval:        time.Hour,
		GCGrace:           time.Hour,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MinBodyRate:       1 << 20,
	}
}

// Validate reports every invalid field, each by name.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("filesync: config: %s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.Addr == "" {
		bad("Addr", "must be set (host:port)")
	}
	if c.Dir == "" {
		bad("Dir", "must be set: the directory that holds the files store")
	}
	if c.Key.IsZero() {
		bad("Key", "must be set: the files key that verifies every caller's token")
	}
	if c.S3 != nil {
		if err := c.S3.Validate(); err != nil {
			bad("S3", "%v", err)
		}
	}
	c.Rules.validate("Rules.", bad)
	if c.MaxRequestSize < c.Rules.MaxFileSize {
		bad("MaxRequestSize", "must be at least Rules.MaxFileSize (%d), got %d", c.Rules.MaxFileSize, c.MaxRequestSize)
	}
	if c.MaxChanges < 1 {
		bad("MaxChanges", "must be at least 1, got %d", c.MaxChanges)
	}
	if c.SnapshotEvery < 1 {
		bad("SnapshotEvery", "must be at least 1, got %d", c.SnapshotEvery)
	}
	if c.KeepSnapshots < 1 {
		bad("KeepSnapshots", "must be at least 1, got %d", c.KeepSnapshots)
	}
	if c.SegmentSize < 1<<10 {
		bad("SegmentSize", "must be at least 1 KiB, got %d", c.SegmentSize)
	}
	if c.Heartbeat <= 0 {
		bad("Heartbeat", "must be positive, got %s", c.Heartbeat)
	}
	if c.ShutdownTimeout <= 0 {
		bad("ShutdownTimeout", "must be positive, got %s", c.ShutdownTimeout)
	}
	if c.QuotaBytes < 0 || c.QuotaBytes > 0 && c.QuotaBytes < c.Rules.MaxFileSize {
		bad("QuotaBytes", "must be 0 (no quota) or at least Rules.MaxFileSize (%d), got %d", c.Rules.MaxFileSize, c.QuotaBytes)
	}
	if c.GCInterval < 0 {
		bad("GCInterval", "must not be negative (0 = off), got %s", c.GCInterval)
	}
	if c.GCGrace <= 0 {
		bad("GCGrace", "must be positive, got %s", c.GCGrace)
	}
	if c.ReadHeaderTimeout <= 0 {
		bad("ReadHeaderTimeout", "must be positive, got %s", c.ReadHeaderTimeout)
	}
	if c.IdleTimeout <= 0 {
		bad("IdleTimeout", "must be positive, got %s", c.IdleTimeout)
	}
	if c.MinBodyRate < 1<<10 {
		bad("MinBodyRate", "must be at least 1 KiB/s, got %d", c.MinBodyRate)
	}
	return errors.Join(errs...)
}

// transferTimeout is how long a body or blob of n bytes may take.
func (c Config) transferTimeout(n int64) time.Duration {
	return c.ReadHeaderTimeout + time.Duration(n/c.MinBodyRate)*time.Second
}

// AgentConfig configures the filesync side of a node.
type AgentConfig struct {
	// Server is the base URL of the files role, e.g. http://127.0.4.1:8080.
	Server string
	// ServerFile, when set, replaces Server: the first line of this file
	// is the base URL, read before each request (a files role that Nomad
	// may place on another host; the file is rendered from its service).
	ServerFile string
	// NodeID names this node in the change log (Change.Origin).
	NodeID string
	// Token is this node's files token (identity NodeID), sent with every
	// request.
	Token string
	// Docroot is the node's local copy of the site tree.
	Docroot string
	// StateDir keeps the applied sequence number and the queue of local
	// changes not yet acknowledged by the server. It must not be inside
	// Docroot.
	StateDir string
	// Rules must match the server's; a local change that breaks them is
	// logged and not pushed.
	Rules Rules
	// Debounce is how long a path must stay quiet before its change is read
	// and pushed.
	Debounce time.Duration
	// RetryMin and RetryMax bound the exponential backoff of reconnects and
	// of pushes while the server is unreachable.
	RetryMin, RetryMax time.Duration
	// RequestTimeout bounds every request but the change stream.
	RequestTimeout time.Duration
	// StreamTimeout is how long the change stream may stay silent (no change,
	// no heartbeat) before the agent reconnects; above the server's Heartbeat.
	StreamTimeout time.Duration
	// PushBatch is the largest number of changes in one push.
	PushBatch int
	// Uploaders is how many blobs are uploaded or downloaded at once.
	Uploaders int
	// QuarantineAfter is how many times in a row a change of the log may
	// fail to apply on this node for a reason of its own (not the network,
	// not a full or read-only disk) before it is quarantined: recorded in
	// StateDir, counted, and skipped so that later changes apply. Attempts
	// are spaced by the reconnect backoff (RetryMin doubling up to RetryMax).
	QuarantineAfter int
	// LinkPool, when set, is a directory on Docroot's filesystem, shared
	// by the agents of this host, from which files PHP cannot write are
	// hard-linked into the docroot instead of copied
	// (docs/adr/0029-linked-docroot.md). Set it only when PHP runs as
	// another user than the agent: PHP must not own a linked file. The
	// agent makes it (0700, its own) if needed.
	LinkPool string
	// SwapWait bounds how long a unit's swap waits for the node's PHP
	// requests in flight to finish (new ones wait meanwhile); after it the
	// swap goes ahead, and a request still running may read both trees.
	SwapWait time.Duration
	// Prefetch is how many blobs of the changes read ahead of the applier
	// are fetched at once (prefetch.go); the changes are still applied one
	// at a time in log order. 0 fetches each blob when its change is
	// applied.
	Prefetch int
	// PrefetchBytes bounds the bytes of the blobs fetched ahead and not yet
	// applied; a larger blob is fetched when its change is applied.
	PrefetchBytes int64
}

// DefaultAgentConfig returns the defaults: DefaultRules, 20 ms debounce,
// 50 ms to 2 s backoff, 30 s requests, a stream silent for 30 s is dead,
// 256 changes a push, 4 transfers at once, quarantine after 5 failures
// (0.4 to 0.75 s of retries), a swap waits 2 s at most for requests in
// flight, 8 blobs fetched ahead of the applier, 64 MiB of them. Server, NodeID, Token, Docroot and StateDir
// have no default.
func DefaultAgentConfig() AgentConfig {
	return AgentConfig{
		Rules:           DefaultRules(),
		Debounce:        20 * time.Millisecond,
		RetryMin:        50 * time.Millisecond,
		RetryMax:        2 * time.Second,
		RequestTimeout:  30 * time.Second,
		StreamTimeout:   30 * time.Second,
		PushBatch:       256,
		Uploaders:       4,
		QuarantineAfter: 5,
		SwapWait:        2 * time.Second,
		Prefetch:        8,
		PrefetchBytes:   64 << 20,
	}
}

// Validate reports every invalid field, each by name.
func (c AgentConfig) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("filesync: agent config: %s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.ServerFile != "" {
		if !filepath.IsAbs(c.ServerFile) {
			bad("ServerFile", "must be an absolute path, got %q", c.ServerFile)
		}
	} else if u, err := url.Parse(c.Server); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("Server", "must be an http:// or https:// URL of the files role, got %q", c.Server)
	}
	if err := checkOrigin(c.NodeID); err != nil || c.NodeID == "" {
		bad("NodeID", "must be 1 to %d letters, digits, '.', '_', ':' or '-', got %q", maxOriginLen, c.NodeID)
	}
	if id, _, ok := strings.Cut(c.Token, "."); !ok || id != c.NodeID {
		bad("Token", "must be the files token of identity NodeID (%q)", c.NodeID)
	}
	if c.Docroot == "" {
		bad("Docroot", "must be set")
	}
	if c.StateDir == "" {
		bad("StateDir", "must be set")
	} else if c.Docroot != "" && within(c.Docroot, c.StateDir) {
		bad("StateDir", "must not be inside Docroot (%s), got %s", c.Docroot, c.StateDir)
	}
	if c.LinkPool != "" && !filepath.IsAbs(c.LinkPool) {
		bad("LinkPool", "must be an absolute path, got %q", c.LinkPool)
	} else if c.LinkPool != "" && c.Docroot != "" && (within(c.Docroot, c.LinkPool) || within(c.LinkPool, c.Docroot)) {
		bad("LinkPool", "must be outside Docroot (%s) and not contain it, got %s", c.Docroot, c.LinkPool)
	}
	c.Rules.validate("Rules.", bad)
	if c.Debounce < 0 {
		bad("Debounce", "must not be negative, got %s", c.Debounce)
	}
	if c.RetryMin <= 0 {
		bad("RetryMin", "must be positive, got %s", c.RetryMin)
	}
	if c.RetryMax < c.RetryMin {
		bad("RetryMax", "must be at least RetryMin (%s), got %s", c.RetryMin, c.RetryMax)
	}
	if c.RequestTimeout <= 0 {
		bad("RequestTimeout", "must be positive, got %s", c.RequestTimeout)
	}
	if c.StreamTimeout <= 0 {
		bad("StreamTimeout", "must be positive, got %s", c.StreamTimeout)
	}
	if c.PushBatch < 1 {
		bad("PushBatch", "must be at least 1, got %d", c.PushBatch)
	}
	if c.Uploaders < 1 {
		bad("Uploaders", "must be at least 1, got %d", c.Uploaders)
	}
	if c.QuarantineAfter < 1 {
		bad("QuarantineAfter", "must be at least 1, got %d", c.QuarantineAfter)
	}
	if c.SwapWait <= 0 {
		bad("SwapWait", "must be positive, got %s", c.SwapWait)
	}
	if c.Prefetch < 0 {
		bad("Prefetch", "must not be negative, got %d", c.Prefetch)
	}
	if c.Prefetch > 0 && c.PrefetchBytes <= 0 {
		bad("PrefetchBytes", "must be positive when Prefetch is set, got %d", c.PrefetchBytes)
	}
	return errors.Join(errs...)
}

// within reports whether dir is parent or a directory below it, comparing
// cleaned paths.
func within(parent, dir string) bool {
	p, d := filepath.Clean(parent), filepath.Clean(dir)
	return d == p || len(d) > len(p) && d[:len(p)] == p && (p == "/" || d[len(p)] == '/')
}
