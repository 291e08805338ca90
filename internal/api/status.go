// Package api is the wire contract between processes (docs/architecture.md):
// every path, header and query parameter one role sends and another answers
// (wire.go), the status document of docs/contract.md, the node agent's
// report, the role specs the controller hands to the processes it starts,
// the purge documents, and a small JSON client.
package api

// Status is the document `scalepress status --json` prints and GET /v1/status
// returns. Components that are not configured are nil and omitted.
type Status struct {
	SiteURL     string       `json:"site_url"`
	APIURL      string       `json:"api_url"`
	Dir         string       `json:"dir"`
	Version     string       `json:"version"`
	Ready       bool         `json:"ready"`
	Admin       *Admin       `json:"admin,omitempty"`
	Edges       []EdgeStatus `json:"edges"`
	Nodes       []NodeStatus `json:"nodes"`
	Autoscaling *Autoscaling `json:"autoscaling,omitempty"`
	DB          *DBStatus    `json:"db,omitempty"`
	Redis       *RedisStatus `json:"redis,omitempty"`
	Files       *FilesStatus `json:"files,omitempty"`
	DNS         *DNSStatus   `json:"dns,omitempty"`
	TLS         *TLSStatus   `json:"tls,omitempty"`
	Controller  Controller   `json:"controller"`
	// DashboardURL is the live web page of the environment.
	DashboardURL string `json:"dashboard_url"`
	// Startup lists the steps of bringing the environment up that are done,
	// in order.
	Startup []StartupStep `json:"startup"`
	// UpstreamsGeneration counts the changes of the in-service node set
	// published to the edges.
	UpstreamsGeneration uint64 `json:"upstreams_generation"`
}

// Admin tells where the generated WordPress admin password is kept.
type Admin struct {
	User         string `json:"user"`
	PasswordFile string `json:"password_file"`
}

// EdgeStatus is one edge process.
type EdgeStatus struct {
	ID      string `json:"id"`
	Region  string `json:"region"`
	Addr    string `json:"addr"`
	Healthy bool   `json:"healthy"`
	PID     int    `json:"pid"`
	// Host is the Nomad client running the edge (scheduler.roles: edge;
	// "" when the controller runs it).
	Host string `json:"host,omitempty"`
	// HTTPSAddr is where the edge serves HTTPS (TLS on).
	HTTPSAddr string `json:"https_addr,omitempty"`
	// UpstreamsApplied is the generation of the node set this edge last
	// acknowledged applying; UpstreamsGeneration in Status is the latest.
	UpstreamsApplied uint64 `json:"upstreams_applied"`
}

// Node states, as docs/contract.md lists them.
const (
	NodePending    = "pending"
	NodeWarming    = "warming"
	NodeInService  = "in-service"
	NodeDraining   = "draining"
	NodeTerminated = "terminated"
	NodeFailed     = "failed"
)

// NodeStatus is one PHP node: its agent and its php-fpm.
type NodeStatus struct {
	ID          string  `json:"id"`
	Addr        string  `json:"addr"`
	State       string  `json:"state"`
	Docroot     string  `json:"docroot"`
	PIDs        []int   `json:"pids"`
	Utilization float64 `json:"utilization"`
	Restarts    int     `json:"restarts"`
	Error       string  `json:"error,omitempty"`
	FilesSeq    uint64  `json:"files_seq,omitempty"` // the node's applied files sequence number
	// Host is the machine the node runs on as its scheduler names it (the
	// Nomad node name); absent for nodes the controller runs itself.
	Host string `json:"host,omitempty"`
}

// Autoscaling is reported once the autoscaler exists.
type Autoscaling struct {
	Min         int     `json:"min"`
	Max         int     `json:"max"`
	Desired     int     `json:"desired"`
	Target      float64 `json:"target"`
	Utilization float64 `json:"utilization"`
}

// DB member states, as docs/contract.md lists them.
const (
	DBSynced  = "synced"
	DBJoining = "joining"
	DBDonor   = "donor"
	DBDown    = "down"
)

// DBStatus is the router and its members.
type DBStatus struct {
	Router  string           `json:"router"`
	Name    string           `json:"name"`
	Members []DBMemberStatus `json:"members"`
	Writer  string           `json:"writer,omitempty"`
	// RouterPID is the dbrouter process.
	RouterPID int `json:"router_pid"`
	// RouterMode is "single" (one writer) or "multi" (least connections).
	RouterMode string `json:"router_mode,omitempty"`
	// RouterChoice is the member that answered the controller's last
	// connection through the router (in single mode: the writer).
	RouterChoice string `json:"router_choice,omitempty"`
	// ClusterSize is the size of the primary component, 0 when none.
	ClusterSize int `json:"cluster_size,omitempty"`
}

// DBMemberStatus is one MariaDB member.
type DBMemberStatus struct {
	ID   string `json:"id"`
	Addr string `json:"addr"`
	// Host is the DB host the member runs on (its db.hosts id), absent
	// when it runs on the controller's machine.
	Host  string `json:"host,omitempty"`
	State string `json:"state"`
	PID   int    `json:"pid"`
	// Galera's own view (absent for a standalone member or one that does not answer).
	WsrepState        string  `json:"wsrep_state,omitempty"`    // wsrep_local_state_comment, e.g. Synced, Donor/Desynced
	ClusterStatus     string  `json:"cluster_status,omitempty"` // Primary or non-Primary
	ClusterSize       int     `json:"cluster_size,omitempty"`
	StateUUID         string  `json:"state_uuid,omitempty"`
	LastCommitted     int64   `json:"last_committed,omitempty"`
	FlowControlPaused float64 `json:"flow_control_paused,omitempty"`
	RecvQueue         int64   `json:"recv_queue,omitempty"`
	// Starts counts the controller's starts of this member (restarts included).
	Starts int    `json:"starts,omitempty"`
	Error  string `json:"error,omitempty"`
}

// RedisStatus is the object-cache server.
type RedisStatus struct {
	Addr  string `json:"addr"`
	State string `json:"state"`
	PID   int    `json:"pid"`
	// Host is the Nomad client running redis (scheduler.roles has redis),
	// "" when the controller runs it.
	Host string `json:"host,omitempty"`
}

// FilesStatus is the files role (the canonical site tree), present when
// files is enabled. Seq is the change log's last sequence number.
type FilesStatus struct {
	Addr  string `json:"addr"`
	State string `json:"state"`
	Seq   uint64 `json:"seq"`
	PID   int    `json:"pid,omitempty"`
	// Host is the Nomad client running the role (scheduler.roles has
	// files), "" when the controller runs it.
	Host string `json:"host,omitempty"`
}

// DNSStatus is the geo DNS server, present when dns is enabled.
type DNSStatus struct {
	Addr string `json:"addr"` // UDP and TCP
	Zone string `json:"zone"`
	// State is "up" while the process runs and answered at start, else "down".
	State string `json:"state"`
	PID   int    `json:"pid"`
	// Host is the Nomad client running the server (scheduler.roles has
	// dns), "" when the controller runs it.
	Host string `json:"host,omitempty"`
	// Regions are the regions the server answers with, in configuration order.
	Regions []DNSRegionStatus `json:"regions"`
}

// DNSRegionStatus is one region of the geo DNS server.
type DNSRegionStatus struct {
	Name  string   `json:"name"`
	Edges []string `json:"edges"` // edge ids
	// Healthy: one of its edges passes the controller's health check (the
	// DNS server checks the edges itself, and follows within its rise/fall).
	Healthy bool `json:"healthy"`
}

// Controller describes the controller process itself.
type Controller struct {
	PID     int    `json:"pid"`
	Started string `json:"started"`
}

// TLSStatus is HTTPS at the edges, present when TLS is configured.
type TLSStatus struct {
	HTTPSURL     string       `json:"https_url"`
	Certificates []CertStatus `json:"certificates"`
}

// CertStatus is one certificate the edges serve.
type CertStatus struct {
	Names    []string `json:"names"`
	Issuer   string   `json:"issuer"`
	NotAfter string   `json:"not_after"` // RFC 3339
	Source   string   `json:"source"`    // file or acme
}
