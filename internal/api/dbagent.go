package api

// The db-agent's API (`scalepress db-agent --spec FILE`,
// docs/adr/0018-galera-across-hosts.md): the operations the controller's
// galera.Cluster needs on a DB host, one member at a time. Every request
// carries the controller's bearer token for that agent; every write is
// application/json.

// DBAgentCaller is the one identity a db-agent accepts: the controller.
const DBAgentCaller = "controller"

// DBAgentHeaderEpoch carries the controller's owner epoch (ADR 31): the
// home variable's modify index at which its run took the site over, a
// decimal number that grows with every take-over. An agent refuses (409) a
// request whose epoch is below the highest it has seen, and one without it
// once it has seen one: a controller that was taken over changes no member
// through an agent the new one has reached.
const DBAgentHeaderEpoch = "Scalepress-Owner-Epoch"

// DBAgentPathMembers prefixes the member routes:
//
//	GET  /v1/db/members/{id}             DBAgentMember
//	GET  /v1/db/members/{id}/last-error  DBAgentLastError
//	POST /v1/db/members/{id}/{op}        op is one of the DBOp* below
const DBAgentPathMembers = "/v1/db/members/"

// The operations (POST). Bodies: start DBAgentStart, stop DBAgentStop,
// safe-to-bootstrap DBAgentSafe, ensure-site DBAgentGrant, the others {}.
// Answers: recover DBAgentPosition, start DBAgentMember, the others 204.
const (
	DBOpPrepare     = "prepare"
	DBOpInit        = "init"
	DBOpRecover     = "recover"
	DBOpClearSST    = "clear-sst"
	DBOpSSTDone     = "sst-done"
	DBOpSafe        = "safe-to-bootstrap"
	DBOpStart       = "start"
	DBOpStop        = "stop"
	DBOpPing        = "ping"
	DBOpEnsureSite  = "ensure-site"
	DBOpPCBootstrap = "pc-bootstrap"
)

// DBAgentMember is what an agent says of one member.
type DBAgentMember struct {
	ID      string `json:"id"`
	Addr    string `json:"addr"` // the SQL address from the agent's spec
	Running bool   `json:"running"`
	PID     int    `json:"pid,omitempty"`
	Disk    DBDisk `json:"disk"`
}

// DBDisk is what a member's datadir holds (galera.Disk on the wire).
type DBDisk struct {
	Initialized bool        `json:"initialized"`
	HasData     bool        `json:"has_data"`
	Grastate    *DBGrastate `json:"grastate,omitempty"`
	ViewID      string      `json:"view_id,omitempty"`
}

// DBGrastate is grastate.dat.
type DBGrastate struct {
	Version         string `json:"version,omitempty"`
	UUID            string `json:"uuid"`
	Seqno           int64  `json:"seqno"`
	SafeToBootstrap bool   `json:"safe_to_bootstrap"`
}

// DBAgentStart starts mariadbd: Mode is "bootstrap" or "join"; Position
// ("uuid:seqno", optional) is where it starts. Nothing else of the command
// line is the caller's: the agent builds it from its spec.
type DBAgentStart struct {
	Mode     string `json:"mode"`
	Position string `json:"position,omitempty"`
}

// DBAgentStop stops the run PID (0: whichever runs), waiting at most
// TimeoutMS (capped by the agent) before it kills it.
type DBAgentStop struct {
	PID       int `json:"pid"`
	TimeoutMS int `json:"timeout_ms"`
}

// DBAgentSafe sets grastate.dat's safe_to_bootstrap.
type DBAgentSafe struct {
	Safe bool `json:"safe"`
}

// DBAgentGrant is the site's database and users (galera.Grant).
type DBAgentGrant struct {
	Database        string `json:"database"`
	User            string `json:"user"`
	Password        string `json:"password"`
	MonitorUser     string `json:"monitor_user"`
	MonitorPassword string `json:"monitor_password"`
}

// DBAgentPosition is what --wsrep-recover found.
type DBAgentPosition struct {
	Position string `json:"position"`
}

// DBAgentLastError is the line of the member's log that says why it failed.
type DBAgentLastError struct {
	LastError string `json:"last_error"`
	Log       string `json:"log"` // where the log is on the agent's host
}

// DBAgentSpec is what a db-agent is told (`scalepress db-agent --spec FILE`).
type DBAgentSpec struct {
	// ID names the agent; the controller's token for it is issued under
	// Key, which is derived for this id (token.AgentKey).
	ID string `json:"id"`
	// Addr is the HTTP listen address, on the host's own address.
	Addr string `json:"addr"`
	// Key (hex) verifies the controller's token.
	Key string `json:"key"`
	// User runs mariadbd (and owns the datadirs) when the agent runs as
	// root; "" = mysql.
	User string `json:"user,omitempty"`
	// Members are the members on this host.
	Members []DBAgentMemberSpec `json:"members"`
}

// DBAgentMemberSpec is one member as its agent runs it (galera.MemberConfig).
type DBAgentMemberSpec struct {
	ID          string   `json:"id"`
	Addr        string   `json:"addr"` // IP:port on this host's address
	Dir         string   `json:"dir"`
	BufferPool  string   `json:"buffer_pool"`
	Peers       []string `json:"peers"`
	PeerIDs     []string `json:"peer_ids"`
	ClusterName string   `json:"cluster_name"`
	SSTMethod   string   `json:"sst_method"`
	GcacheSize  string   `json:"gcache_size"`
}
