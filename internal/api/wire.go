package api

// The wire contract between processes: every path, header and query
// parameter one role sends and another answers, spelled once. The ones a
// user or a script sees (X-Cache, the /v1 control API, the edge's purge
// endpoint) are also part of docs/contract.md and never change.

// The controller's control API (JSON over HTTP).
const (
	APIPathStatus    = "/v1/status"    // GET: Status
	APIPathUpstreams = "/v1/upstreams" // GET: Upstreams
	// APIPathUpstreamsAck takes an edge's UpstreamsAck (its control token).
	APIPathUpstreamsAck = "/v1/upstreams/ack"
	APIPathDBMembers    = "/v1/db/members" // GET: DBMembers
	APIPathEvents       = "/v1/events"     // GET ?since=SEQ&wait=DURATION: Events
	APIPathScale        = "/v1/scale"      // POST ScaleRequest: Autoscaling
	APIPathPurge        = "/v1/purge"      // POST PurgeRequest: PurgeResult (202 while edges are pending)
	APIPathBackups      = "/v1/backups"    // POST BackupRequest: BackupResult (the operator token)
	APIPathMetrics      = "/metrics"       // GET: Prometheus text
	APIPathTargets      = "/v1/targets"    // GET: []TargetGroup (Prometheus HTTP service discovery)
	APIPathHealth       = "/healthz"       // GET: 200 "ok"
)

// The dashboard (docs/operations.md "Console"), served by the control API.
const (
	DashboardPath        = "/"                  // GET: the page
	DashboardAssets      = "/console/"          // GET + FILE: its script and style
	APIPathConsole       = "/v1/console"        // GET: Console
	APIPathConsoleStream = "/v1/console/stream" // GET: server-sent events: snapshot (Console), update (ConsoleUpdate), event (Event)
)

// APIPathEdgeEvents takes an edge's EdgeEvents (its control token): the
// login throttling blocks that started there.
const APIPathEdgeEvents = "/v1/edge/events"

// InternalPrefix starts every path a node agent or an edge answers itself;
// the edge never forwards such a path to a node.
const InternalPrefix = "/_scalepress/"

// The node agent's own paths.
const (
	NodePathHealth  = "/_scalepress/health"  // GET: 200 while PHP answers
	NodePathStatus  = "/_scalepress/status"  // GET: NodeReport
	NodePathMetrics = "/_scalepress/metrics" // GET: Prometheus text
)

// The edge's own paths.
const (
	EdgePathHealth  = "/_scalepress/edge/health"  // GET: 200 while the edge serves
	EdgePathStatus  = "/_scalepress/edge/status"  // GET: the edge's balancer and cache (JSON)
	EdgePathTop     = "/_scalepress/edge/top"     // GET ?n=N: the most requested paths, JSON array
	EdgePathMetrics = "/_scalepress/edge/metrics" // GET: Prometheus text
	EdgePathPurge   = "/_scalepress/purge"        // POST PurgeRequest: EdgePurgeResult
)

// The files role's API (the canonical site tree; see internal/filesync).
const (
	FilesPathManifest = "/v1/manifest" // GET [?at=SEQ]: the tree
	FilesPathBlobs    = "/v1/blobs"    // GET, HEAD, PUT + "/" + HASH: a blob
	FilesPathChanges  = "/v1/changes"  // POST: push changes
	FilesPathStream   = "/v1/stream"   // GET ?since=SEQ: changes as JSON lines
	FilesPathStatus   = "/v1/status"   // GET: FilesStoreStatus
	FilesPathSeq      = "/v1/seq"      // GET ?path=P: the seq a node needs to serve P
	FilesPathFiles    = "/v1/files"    // GET + "/" + PATH: a file's current content
	FilesPathHealth   = "/healthz"     // GET: 200 while the store is open
	FilesPathMetrics  = "/metrics"     // GET: Prometheus (any files token; FilesMetricsID's only)
)

// The database router's monitoring paths (on RouterSpec.MetricsAddr).
const (
	RouterPathStatus  = "/status"  // GET: the router's choice and connections (JSON)
	RouterPathMetrics = "/metrics" // GET: Prometheus text
)

// The dns role's monitoring paths (on dns.metrics_addr).
const (
	DNSPathStatus  = "/status"  // GET: DNSCounters (JSON)
	DNSPathMetrics = "/metrics" // GET: Prometheus text
)

// Query parameters of the paths above.
const (
	ParamSince = "since" // APIPathEvents, FilesPathStream: after this sequence number
	ParamWait  = "wait"  // APIPathEvents: long poll up to this Go duration
	ParamN     = "n"     // EdgePathTop: how many paths
	ParamAt    = "at"    // FilesPathManifest: the tree as of this sequence number
	ParamPath  = "path"  // FilesPathSeq: the site path asked about
)

// Headers between roles.
const (
	// HeaderCache is on every response the edge produces: HIT, MISS,
	// BYPASS or STALE (docs/contract.md).
	HeaderCache = "X-Cache"
	// HeaderNode names the node that served; the edge strips it unless
	// debugging is on.
	HeaderNode = "X-Scalepress-Node"
	// HeaderNodeError marks an error page of the node agent's own (PHP never
	// answered): the edge may retry an idempotent request elsewhere.
	HeaderNodeError = "X-Scalepress-Node-Error"
	// HeaderSaturated marks a node's 503 refused because every PHP worker is
	// busy and its queue is full.
	HeaderSaturated = "X-Scalepress-Saturated"
	// HeaderTags carries a page's cache tags from WordPress to the edge;
	// never sent to clients.
	HeaderTags = "X-Scalepress-Tags"
	// HeaderFilesSeq carries the files change log's last sequence number on
	// a change stream and on a file served by the files role.
	HeaderFilesSeq = "Filesync-Seq"
)
