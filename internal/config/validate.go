package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/scalepress/scalepress/internal/throttle"
)

// FieldError is a validation failure of one field, named by its YAML path.
type FieldError struct {
	Field string // e.g. "nodes.count", "edges[1].addr"
	Msg   string
}

var dbHostIDRE = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

var (
	idRE      = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)
	sqlNameRE = regexp.MustCompile(`^[A-Za-z0-9_]{1,32}$`)
	userRE    = regexp.MustCompile(`^[A-Za-z0-9_.@-]{1,60}$`)
	sizeRE    = regexp.MustCompile(`^[0-9]+[KMGkmg]?$`)
	redisMem  = regexp.MustCompile(`^[0-9]+(kb|mb|gb|KB|MB|GB)?$`)
)

var bucketRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

func (s FilesStore) validate(bad func(field, format string, args ...any)) {
	switch s.Kind {
	case "local":
		return
	case "s3":
	default:
		bad("files.store.kind", "must be local or s3, got %q", s.Kind)
		return
	}
	u, err := url.Parse(s.Endpoint)
	switch {
	case s.Endpoint == "":
		bad("files.store.endpoint", "must be set with kind s3: the S3 API's base URL, e.g. https://s3.eu-west-1.amazonaws.com")
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		bad("files.store.endpoint", "must be an http:// or https:// URL, got %q", s.Endpoint)
	case u.User != nil:
		bad("files.store.endpoint", "must not hold credentials (use access_key_file and secret_key_file)")
	case u.Path != "" && u.Path != "/" || u.RawQuery != "":
		bad("files.store.endpoint", "must be scheme://host[:port] only (the bucket goes in files.store.bucket), got %q", s.Endpoint)
	}
	if !bucketRE.MatchString(s.Bucket) {
		bad("files.store.bucket", "must be an S3 bucket name (3 to 63 lowercase letters, digits, '.' or '-'), got %q", s.Bucket)
	}
	if p := strings.Trim(s.Prefix, "/"); p != "" && !sitePrefixRE.MatchString(p) {
		bad("files.store.prefix", "must be '/'-separated segments of letters, digits, '.', '_' or '-' (no '..'), got %q", s.Prefix)
	}
	if s.Region == "" {
		bad("files.store.region", "must be set (us-east-1 for most S3-compatible servers)")
	}
	for _, f := range []struct{ field, path string }{
		{"files.store.access_key_file", s.AccessKeyFile}, {"files.store.secret_key_file", s.SecretKeyFile}} {
		if !filepath.IsAbs(f.path) {
			bad(f.field, "must be an absolute path to a file holding the key, got %q", f.path)
		}
	}
	if s.CAFile != "" {
		if !filepath.IsAbs(s.CAFile) {
			bad("files.store.ca_file", "must be an absolute path, got %q", s.CAFile)
		}
		if err == nil && u.Scheme != "https" {
			bad("files.store.ca_file", "is only used with an https endpoint, got %q", s.Endpoint)
		}
	}
}

var sitePrefixRE = regexp.MustCompile(`^([A-Za-z0-9_-][A-Za-z0-9._-]*)(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$`)

var schedulerJob = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_-]{0,62}$`)

// nodeMetaKey is a Nomad node meta key usable in a constraint.
var nodeMetaKey = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]{0,62}$`)

// Validate checks every field and returns all problems, each naming its field.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}

	if strings.TrimSpace(c.Site.Title) == "" {
		bad("site.title", "must not be empty")
	}
	if c.Site.URL != "" {
		u, err := url.Parse(c.Site.URL)
		switch {
		case err != nil:
			bad("site.url", "%v", err)
		case u.Scheme != "http" && u.Scheme != "https":
			bad("site.url", "scheme must be http or https, got %q", u.Scheme)
		case u.Host == "":
			bad("site.url", "must include a host, e.g. http://example.test")
		case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "":
			bad("site.url", "must be scheme://host[:port] without path, query or fragment")
		}
	}
	if !userRE.MatchString(c.Site.AdminUser) {
		bad("site.admin_user", "must be 1-60 characters of letters, digits, _ . @ -")
	}
	if !strings.Contains(c.Site.AdminEmail, "@") || strings.ContainsAny(c.Site.AdminEmail, " \t\r\n'\"") {
		bad("site.admin_email", "must be an e-mail address")
	}

	checkAddr := func(field, addr string) {
		if _, err := netip.ParseAddrPort(addr); err != nil {
			bad(field, "must be IP:port (e.g. 127.0.0.1:8080), got %q", addr)
		}
	}
	checkAddr("api.addr", c.API.Addr)
	for i, h := range c.API.AllowedHosts {
		if host, port, err := net.SplitHostPort(h); err != nil || host == "" || port == "" || strings.ContainsAny(h, "/ \t") {
			bad(fmt.Sprintf("api.allowed_hosts[%d]", i), "must be host:port (e.g. ctl.example.org:9090), got %q", h)
		}
	}

	if len(c.Edges) == 0 {
		bad("edges", "at least one edge is needed")
	}
	ids := map[string]bool{}
	for i, e := range c.Edges {
		f := fmt.Sprintf("edges[%d]", i)
		if !idRE.MatchString(e.ID) {
			bad(f+".id", "must match %s, got %q", idRE, e.ID)
		} else if e.ID == "controller" || e.ID == "operator" || strings.HasPrefix(e.ID, "node-") {
			// An edge's id is the identity of its tokens: it must not
			// name the controller, the operator or a node.
			bad(f+".id", "%q is reserved (controller, operator and node-N name other identities)", e.ID)
		} else if ids[e.ID] {
			bad(f+".id", "duplicate id %q", e.ID)
		}
		ids[e.ID] = true
		if strings.TrimSpace(e.Region) == "" {
			bad(f+".region", "must not be empty")
		}
		checkAddr(f+".addr", e.Addr)
	}

	checkBase := func(field, base string) {
		ip, err := netip.ParseAddr(base)
		if err != nil || !ip.Is4() {
			bad(field, "must be an IPv4 address such as 127.0.1.0, got %q", base)
		}
	}
	checkPort := func(field string, p int) {
		if p < 1 || p > 65535 {
			bad(field, "must be 1-65535, got %d", p)
		}
	}
	if c.Nodes.Count < 1 || c.Nodes.Count > 64 {
		bad("nodes.count", "must be 1-64, got %d", c.Nodes.Count)
	}
	checkBase("nodes.ip_base", c.Nodes.IPBase)
	checkPort("nodes.port", c.Nodes.Port)
	if c.Nodes.PHPChildren < 0 || c.Nodes.PHPChildren > 256 {
		bad("nodes.php_children", "must be 0 (automatic) to 256, got %d", c.Nodes.PHPChildren)
	}
	if c.Nodes.PHPNice < 0 || c.Nodes.PHPNice > 19 {
		bad("nodes.php_nice", "must be 0 (unchanged) to 19, got %d", c.Nodes.PHPNice)
	}
	if c.Nodes.PHPMaxRequests < 0 {
		bad("nodes.php_max_requests", "must be >= 0, got %d", c.Nodes.PHPMaxRequests)
	}
	if c.Nodes.SlowStart < 0 || c.Nodes.SlowStart > 10*time.Minute {
		bad("nodes.slow_start", "must be 0 (off) to 10m, got %s", c.Nodes.SlowStart)
	}
	if c.Nodes.DeregistrationDelay < time.Second || c.Nodes.DeregistrationDelay > time.Hour {
		bad("nodes.deregistration_delay", "must be 1s to 1h, got %s", c.Nodes.DeregistrationDelay)
	}
	a := c.Autoscale
	if err, ok := a.Validate().(interface{ Unwrap() []error }); ok {
		errs = append(errs, err.Unwrap()...)
	}
	if a.Enabled && (c.Nodes.Count < a.Min || c.Nodes.Count > a.Max) {
		bad("nodes.count", "the initial count %d must be within autoscaling.min %d and max %d", c.Nodes.Count, a.Min, a.Max)
	}

	if c.DB.Members < 1 || c.DB.Members > 9 || c.DB.Members%2 == 0 {
		bad("db.members", "must be 1 (standalone) or an odd number up to 9 (a Galera cluster keeps a majority when one fails), got %d", c.DB.Members)
	}
	if len(c.DB.Hosts) > 0 {
		// One member is a standalone server on a host of its own (no
		// failover, but the database off the controller's host).
		if len(c.DB.Hosts) != c.DB.Members {
			bad("db.hosts", "must name one host per member (db.members is %d, %d hosts given)", c.DB.Members, len(c.DB.Hosts))
		}
		ids, addrs := map[string]bool{}, map[string]bool{}
		for i, h := range c.DB.Hosts {
			f := fmt.Sprintf("db.hosts[%d]", i)
			if !dbHostIDRE.MatchString(h.ID) {
				bad(f+".id", "must be 1-64 characters of a-z, 0-9, - and _, got %q", h.ID)
			} else if ids[h.ID] {
				bad(f+".id", "%q appears twice", h.ID)
			}
			ids[h.ID] = true
			if ip, err := netip.ParseAddr(h.Addr); err != nil || ip.IsUnspecified() {
				bad(f+".addr", "must be the host's IP address, got %q", h.Addr)
			} else if addrs[ip.String()] {
				bad(f+".addr", "%s appears twice: members on distinct hosts", h.Addr)
			} else {
				addrs[ip.String()] = true
			}
			if _, err := netip.ParseAddrPort(h.Agent); err != nil {
				bad(f+".agent", "must be the db-agent's IP:port, got %q", h.Agent)
			}
			if !filepath.IsAbs(h.Dir) {
				bad(f+".dir", "must be an absolute path on that host, got %q", h.Dir)
			}
		}
	}
	switch c.DB.Agents {
	case DBAgentsOperator:
	case DBAgentsNomad:
		if len(c.DB.Hosts) == 0 || c.Scheduler.Kind != SchedulerNomad {
			bad("db.agents", "nomad needs db.hosts and scheduler.kind nomad (the agents run on the DB hosts, as a Nomad job)")
		}
	default:
		bad("db.agents", "must be operator or nomad, got %q", c.DB.Agents)
	}
	if c.DB.RouterPerHost {
		ap, err := netip.ParseAddrPort(c.DB.Router)
		switch {
		case c.Scheduler.Kind != SchedulerNomad:
			bad("db.router_per_host", "needs scheduler.kind nomad (the routers run as a Nomad system job on the node hosts)")
		case err == nil && !ap.Addr().IsLoopback():
			bad("db.router_per_host", "needs db.router on a loopback address (the same on every host, e.g. 127.0.0.1:3306), got %s", c.DB.Router)
		}
	}
	checkBase("db.ip_base", c.DB.IPBase)
	checkPort("db.port", c.DB.Port)
	checkAddr("db.router", c.DB.Router)
	if c.DB.RouterMode != "single" && c.DB.RouterMode != "multi" {
		bad("db.router_mode", "must be single or multi, got %q", c.DB.RouterMode)
	}
	if c.DB.RouterMetrics != "" {
		checkAddr("db.router_metrics", c.DB.RouterMetrics)
	}
	if c.DB.SSTMethod != "rsync" && c.DB.SSTMethod != "mariabackup" {
		bad("db.sst_method", "must be rsync or mariabackup, got %q", c.DB.SSTMethod)
	}
	if !sizeRE.MatchString(c.DB.GcacheSize) {
		bad("db.gcache_size", "must be a size like 128M, got %q", c.DB.GcacheSize)
	}
	if !sqlNameRE.MatchString(c.DB.Name) {
		bad("db.name", "must be 1-32 characters of letters, digits, _, got %q", c.DB.Name)
	}
	if !sqlNameRE.MatchString(c.DB.User) {
		bad("db.user", "must be 1-32 characters of letters, digits, _, got %q", c.DB.User)
	}
	if !sizeRE.MatchString(c.DB.BufferPool) {
		bad("db.buffer_pool", "must be a size like 128M, got %q", c.DB.BufferPool)
	}

	if c.Cache.MaxMB < 1 || c.Cache.MaxMB > 1<<20 {
		bad("cache.max_mb", "must be 1 to 1048576, got %d", c.Cache.MaxMB)
	}
	if c.Cache.DefaultTTL < time.Second || c.Cache.DefaultTTL > 12*time.Hour {
		bad("cache.default_ttl", "must be 1s to 12h (WordPress nonces in cached pages live 12-24 h), got %s", c.Cache.DefaultTTL)
	}
	if c.Cache.StaticTTL < time.Second || c.Cache.StaticTTL > 365*24*time.Hour {
		bad("cache.static_ttl", "must be 1s to 8760h, got %s", c.Cache.StaticTTL)
	}
	checkAddr("redis.addr", c.Redis.Addr)
	if !redisMem.MatchString(c.Redis.MaxMemory) {
		bad("redis.maxmemory", "must be a size like 64mb, got %q", c.Redis.MaxMemory)
	}

	if !filepath.IsAbs(c.WordPress.Source) {
		bad("wordpress.source", "must be an absolute path, got %q", c.WordPress.Source)
	}
	if c.WordPress.Permalinks != "" && !strings.HasPrefix(c.WordPress.Permalinks, "/") {
		bad("wordpress.permalinks", "must be empty (plain links) or start with /, got %q", c.WordPress.Permalinks)
	}
	if c.WordPress.CronInterval != 0 && c.WordPress.CronInterval < 10*time.Second {
		bad("wordpress.cron_interval", "must be 0 (off) or at least 10s, got %s", c.WordPress.CronInterval)
	}

	if c.Supervise.MaxRestarts < 1 {
		bad("supervise.max_restarts", "must be >= 1, got %d", c.Supervise.MaxRestarts)
	}
	if c.Supervise.Window < time.Second {
		bad("supervise.window", "must be at least 1s, got %s", c.Supervise.Window)
	}
	c.validateDNS(bad)
	switch c.Scheduler.Kind {
	case SchedulerLocal:
	case SchedulerNomad:
		if u, err := url.Parse(c.Scheduler.Address); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("scheduler.address", "must be an http:// or https:// URL, got %q", c.Scheduler.Address)
		}
		if !schedulerJob.MatchString(c.Scheduler.Job) {
			bad("scheduler.job", "must be letters, digits, - and _ (at most 63), got %q", c.Scheduler.Job)
		}
		if (c.Scheduler.CertFile == "") != (c.Scheduler.KeyFile == "") {
			bad("scheduler.cert_file", "set scheduler.cert_file and scheduler.key_file both or neither")
		}
		for _, f := range []struct{ field, path string }{
			{"scheduler.token_file", c.Scheduler.TokenFile}, {"scheduler.ca_file", c.Scheduler.CAFile},
			{"scheduler.cert_file", c.Scheduler.CertFile}, {"scheduler.key_file", c.Scheduler.KeyFile}} {
			if f.path != "" && !filepath.IsAbs(f.path) {
				bad(f.field, "must be an absolute path, got %q", f.path)
			}
		}
		// TLS files with a plain http:// address would be ignored: the
		// token would go in the clear while the operator thinks it does not.
		if tlsSet := c.Scheduler.CAFile != "" || c.Scheduler.CertFile != ""; tlsSet && !strings.HasPrefix(c.Scheduler.Address, "https://") {
			bad("scheduler.ca_file", "scheduler.ca_file and cert_file are only used with an https:// scheduler.address, got %q", c.Scheduler.Address)
		}
		if len(c.Scheduler.Datacenters) == 0 {
			bad("scheduler.datacenters", "must name at least one (\"*\" = all)")
		}
		for k, v := range c.Scheduler.NodeMeta {
			if !nodeMetaKey.MatchString(k) || v == "" {
				bad("scheduler.node_meta", "key %q: want letters, digits and _ with a non-empty value", k)
			}
		}
		if c.Scheduler.CPU < 1 || c.Scheduler.MemoryMB < 1 {
			bad("scheduler.cpu", "scheduler.cpu and scheduler.memory_mb must be positive, got %d and %d", c.Scheduler.CPU, c.Scheduler.MemoryMB)
		}
		for _, r := range c.Scheduler.Roles {
			if !slices.Contains(NomadRoles, r) {
				bad("scheduler.roles", "Nomad can run %v, got %q", NomadRoles, r)
			}
		}
		for k, v := range c.Scheduler.RoleMeta {
			if !nodeMetaKey.MatchString(k) || v == "" {
				bad("scheduler.role_meta", "key %q: want letters, digits and _ with a non-empty value", k)
			}
		}
		if c.Scheduler.OnNomad(RoleDNS) && !c.DNS.Enabled {
			bad("scheduler.roles", "dns on Nomad needs dns.enabled")
		}
		if c.Scheduler.OnNomad(RoleEdge) {
			c.validateEdgesOnNomad(bad)
		}
		if c.Scheduler.OnNomad(RoleFiles) && (!c.Files.Enabled || c.Files.Store.Kind != "s3") {
			bad("scheduler.roles", "files on Nomad needs files.enabled and files.store.kind s3: Nomad moves the role between hosts and it keeps nothing but the bucket (got files.enabled %v, files.store.kind %q)", c.Files.Enabled, c.Files.Store.Kind)
		}
	default:
		bad("scheduler.kind", "must be local or nomad, got %q", c.Scheduler.Kind)
	}
	if c.Files.Enabled {
		checkAddr("files.addr", c.Files.Addr)
		if c.Files.MaxFileMB < 1 || c.Files.MaxFileMB > 1024 {
			bad("files.max_file_mb", "must be 1 to 1024, got %d", c.Files.MaxFileMB)
		}
		if c.Files.QuotaMB < 0 || c.Files.QuotaMB > 0 && c.Files.QuotaMB < c.Files.MaxFileMB {
			bad("files.quota_mb", "must be 0 (no quota) or at least files.max_file_mb (%d), got %d", c.Files.MaxFileMB, c.Files.QuotaMB)
		}
		if c.Files.GCInterval != 0 && c.Files.GCInterval < time.Minute {
			bad("files.gc_interval", "must be 0 (off) or at least 1m, got %s", c.Files.GCInterval)
		}
		c.Files.Store.validate(bad)
	}

	if bucket, prefix, ok := strings.Cut(strings.TrimPrefix(c.Backup.To, "s3://"), "/"); strings.HasPrefix(c.Backup.To, "s3://") {
		if !bucketRE.MatchString(bucket) {
			bad("backup.to", "s3://BUCKET/PREFIX: bucket must be an S3 bucket name, got %q", bucket)
		}
		if p := strings.Trim(prefix, "/"); ok && p != "" && !sitePrefixRE.MatchString(p) {
			bad("backup.to", "s3://BUCKET/PREFIX: prefix must be '/'-separated segments of letters, digits, '.', '_' or '-', got %q", prefix)
		}
		if c.Backup.S3.Endpoint == "" {
			bad("backup.s3.endpoint", "must be set for an s3:// target: the S3 API's base URL")
		}
	} else if strings.Contains(c.Backup.To, "://") {
		bad("backup.to", "must be a directory or s3://BUCKET/PREFIX, got %q", c.Backup.To)
	}
	if s := c.Backup.S3; s.Endpoint != "" {
		FilesStore{Kind: "s3", Endpoint: s.Endpoint, Bucket: "bucket", Region: s.Region, AccessKeyFile: s.AccessKeyFile,
			SecretKeyFile: s.SecretKeyFile, CAFile: s.CAFile}.validate(func(field, format string, args ...any) {
			bad(strings.Replace(field, "files.store.", "backup.s3.", 1), format, args...)
		})
	}
	if r := c.Releases; r.SourceDir != "" && !filepath.IsAbs(r.SourceDir) {
		bad("releases.source_dir", "must be an absolute directory, got %q", r.SourceDir)
	}
	for _, k := range []struct{ key, v string }{{"core", c.Releases.Auto.Core}, {"plugins", c.Releases.Auto.Plugins}, {"themes", c.Releases.Auto.Themes}} {
		if k.v != AutoOff && k.v != AutoMinor && k.v != AutoAll {
			bad("releases.auto."+k.key, "must be off, minor or all, got %q", k.v)
		}
	}
	if c.Releases.Keep != 0 && (c.Releases.Keep < 2 || c.Releases.Keep > 10000) {
		bad("releases.keep", "must be 0 (keep every release) or 2 to 10000 (the live release and the one before it are always kept), got %d", c.Releases.Keep)
	}
	if c.Releases.CheckEvery < 10*time.Second || c.Releases.CheckEvery > 24*time.Hour {
		bad("releases.check_every", "must be 10s to 24h, got %s", c.Releases.CheckEvery)
	}
	if c.Backup.Every != 0 && c.Backup.Every < time.Minute {
		bad("backup.every", "must be 0 (no scheduled backups) or at least 1m, got %s", c.Backup.Every)
	}
	if c.Backup.KeepHourly < 0 || c.Backup.KeepHourly > 10000 {
		bad("backup.keep_hourly", "must be 0 to 10000, got %d", c.Backup.KeepHourly)
	}
	if c.Backup.KeepDaily < 0 || c.Backup.KeepDaily > 10000 {
		bad("backup.keep_daily", "must be 0 to 10000, got %d", c.Backup.KeepDaily)
	}
	if c.Backup.BinlogInterval != 0 && (c.Backup.BinlogInterval < time.Second || c.Backup.BinlogInterval > time.Hour) {
		bad("backup.binlog_interval", "must be 0 (off) or 1s to 1h, got %s", c.Backup.BinlogInterval)
	}

	for i, p := range c.HTTP.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			bad(fmt.Sprintf("http.trusted_proxies[%d]", i), "must be a network in CIDR form such as 192.0.2.0/24 or 2001:db8::1/128, got %q", p)
		}
	}
	if c.HTTP.ClientConcurrency < 0 || c.HTTP.ClientConcurrency > 1<<20 {
		bad("http.client_concurrency", "must be 0 (no cap) to 1048576, got %d", c.HTTP.ClientConcurrency)
	}
	if c.HTTP.BodyTimeout < 100*time.Millisecond || c.HTTP.BodyTimeout > 10*time.Minute {
		bad("http.body_timeout", "must be 100ms to 10m, got %s", c.HTTP.BodyTimeout)
	}
	if c.HTTP.UpstreamHeaderTimeout < time.Second || c.HTTP.UpstreamHeaderTimeout > 130*time.Second {
		bad("http.upstream_header_timeout", "must be 1s to 130s (the edge's own wait for any answer head), got %s", c.HTTP.UpstreamHeaderTimeout)
	}
	if c.HTTP.MaxBodyMB < 1 || c.HTTP.MaxBodyMB > 4096 {
		bad("http.max_body_mb", "must be 1 to 4096, got %d", c.HTTP.MaxBodyMB)
	}
	if c.HTTP.QueueBacklog < 0 || c.HTTP.QueueBacklog > 1024 {
		bad("http.queue_backlog", "must be 0 to 1024, got %d", c.HTTP.QueueBacklog)
	}
	if c.HTTP.QueueTimeout < 10*time.Millisecond || c.HTTP.QueueTimeout > time.Minute {
		bad("http.queue_timeout", "must be 10ms to 1m, got %s", c.HTTP.QueueTimeout)
	}
	if c.HTTP.LoginThrottle.Enabled {
		if err := c.HTTP.LoginThrottle.Throttle().Validate(); err != nil {
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				if fe, ok := e.(*throttle.FieldError); ok {
					bad("http.login_throttle."+fe.Field, "%s", fe.Msg)
				}
			}
		}
	}

	c.validateTLS(bad, checkAddr)

	if len(errs) == 0 {
		// Listen addresses must not collide.
		seen := map[string]string{}
		claim := func(field, addr string) {
			if prev, ok := seen[addr]; ok {
				bad(field, "address %s is already used by %s", addr, prev)
				return
			}
			seen[addr] = field
		}
		claim("api.addr", c.API.Addr)
		for i, e := range c.Edges {
			claim(fmt.Sprintf("edges[%d].addr", i), e.Addr)
			if a := c.EdgeHTTPSAddr(i); a != "" {
				claim(fmt.Sprintf("edges[%d].https_addr", i), a)
			}
		}
		claim("db.router", c.DB.Router)
		if c.DB.RouterMetrics != "" {
			claim("db.router_metrics", c.DB.RouterMetrics)
		}
		claim("redis.addr", c.Redis.Addr)
		if c.DNS.Enabled {
			claim("dns.addr", c.DNS.Addr)
			if c.DNS.MetricsAddr != "" {
				claim("dns.metrics_addr", c.DNS.MetricsAddr)
			}
		}
		if c.Files.Enabled {
			claim("files.addr", c.Files.Addr)
		}
		for n := 1; n <= c.MaxNodes(); n++ {
			claim(fmt.Sprintf("nodes (node %d)", n), c.NodeAddr(n))
		}
		for n := 1; n <= c.DB.Members; n++ {
			claim(fmt.Sprintf("db (member %d)", n), c.DBMemberAddr(n))
		}
	}
	return errors.Join(errs...)
}

// Validate checks the scaling limits: the config file's and every run-time
// change of them (`scalepress scale`) go through here, so the limits are
// stated once. Each problem is a *FieldError naming the autoscaling key.
func (a Autoscale) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: "autoscaling." + field, Msg: fmt.Sprintf(format, args...)})
	}
	if a.Min < 1 || a.Min > 64 {
		bad("min", "must be 1-64, got %d", a.Min)
	}
	if a.Max < a.Min || a.Max > 64 {
		bad("max", "must be between autoscaling.min (%d) and 64, got %d", a.Min, a.Max)
	}
	if !(a.Target > 0 && a.Target <= 1) {
		bad("target", "must be in (0, 1], got %g", a.Target)
	}
	if a.ScaleInWindow < time.Second {
		bad("scale_in_window", "must be at least 1s, got %s", a.ScaleInWindow)
	}
	if a.MaxStep < 1 {
		bad("max_step", "must be >= 1, got %d", a.MaxStep)
	}
	if !(a.WorkersPerCore >= 0 && a.WorkersPerCore <= 1024) {
		bad("workers_per_core", "must be 0 (no budget) to 1024, got %g", a.WorkersPerCore)
	}
	if !(a.CPUSaturated >= 0 && a.CPUSaturated <= 1) {
		bad("cpu_saturated", "must be 0 (no check) to 1, got %g", a.CPUSaturated)
	}
	if !(a.CPUClear >= 0 && a.CPUClear <= a.CPUSaturated) && a.CPUSaturated > 0 {
		bad("cpu_clear", "must be 0 to autoscaling.cpu_saturated (%g), got %g", a.CPUSaturated, a.CPUClear)
	}
	if !(a.StepGain >= 0 && a.StepGain <= 10) {
		bad("step_gain", "must be 0 (off) to 10, got %g", a.StepGain)
	}
	if a.StepGain > 0 && a.StepWindow < time.Second {
		bad("step_window", "must be at least 1s, got %s", a.StepWindow)
	}
	if a.StepGain > 0 && a.StepCooldown < a.StepWindow {
		bad("step_cooldown", "must be at least autoscaling.step_window (%s), got %s", a.StepWindow, a.StepCooldown)
	}
	if a.RebalanceAfter < 0 {
		bad("rebalance_after", "must be 0 (off) or a duration, got %s", a.RebalanceAfter)
	}
	if a.MaxReplacements < 1 {
		bad("max_replacements", "must be >= 1, got %d", a.MaxReplacements)
	}
	if a.ReplacementWindow < time.Second {
		bad("replacement_window", "must be at least 1s, got %s", a.ReplacementWindow)
	}
	return errors.Join(errs...)
}

// validateEdgesOnNomad: an edge on Nomad is pinned to the client whose
// address is its edges[].addr's IP (dns publishes that address, ADR 0025).
// With tls.certificates it serves HTTPS on that host's IP too: the
// controller delivers the files through the edge job's Nomad Variable
// (ADR 0033), which holds at most 64 KiB. ACME stays refused: its storage
// (the issuance lock, the certificates) is a directory on one host.
// MaxNomadCertBytes bounds tls.certificates' files (chains and keys
// together) with edges on Nomad: a Nomad Variable holds 64 KiB, and the
// edge's spec shares it.
const MaxNomadCertBytes = 48 << 10

func (c *Config) validateEdgesOnNomad(bad func(field, format string, args ...any)) {
	if len(c.TLS.ACME.Names) > 0 {
		bad("tls.acme.names", "edges on Nomad (scheduler.roles: edge) cannot share the ACME storage across hosts: use tls.certificates (the controller delivers the files to the edges' hosts), or keep the edges off Nomad")
	}
	pemBytes := 0
	for _, f := range c.TLS.Certificates {
		for _, p := range []string{f.CertFile, f.KeyFile} {
			if fi, err := os.Stat(p); err == nil {
				pemBytes += int(fi.Size())
			}
		}
	}
	if pemBytes > MaxNomadCertBytes {
		bad("tls.certificates", "edges on Nomad get the certificate files through a Nomad Variable (64 KiB with the edge's spec): these are %d bytes, more than %d", pemBytes, MaxNomadCertBytes)
	}
	for i, e := range c.Edges {
		ap, err := netip.ParseAddrPort(e.Addr)
		if err != nil {
			continue // edges[].addr is checked on its own
		}
		if ip := ap.Addr(); ip.IsUnspecified() || ip.IsLoopback() {
			bad(fmt.Sprintf("edges[%d].addr", i), "an edge on Nomad runs on the client with this address: want that host's IP, got %s", e.Addr)
		}
		if a := c.EdgeHTTPSAddr(i); a != "" {
			hp, err := netip.ParseAddrPort(a)
			if err != nil {
				continue // checked with the tls section
			}
			if hp.Addr() != ap.Addr() || hp.Port() == ap.Port() {
				bad(fmt.Sprintf("edges[%d].https_addr", i), "an edge on Nomad serves HTTPS on its host's IP, %s, on a port other than addr's: got %q", ap.Addr(), a)
			}
		}
	}
}
