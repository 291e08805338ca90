package api

import "time"

// Console is the dashboard's document (GET APIPathConsole, and the
// "snapshot" message of APIPathConsoleStream): the status document with
// what the status leaves out and an operator watches — the edges' caches,
// the load against the target over the last minutes, the latest events and
// the host.
type Console struct {
	Time   time.Time    `json:"time"`
	Status Status       `json:"status"`
	Edges  []EdgeCache  `json:"edges"`
	DNS    []DNSAnswers `json:"dns,omitempty"` // per configured region; absent without dns
	Host   HostLoad     `json:"host"`
	Load   []LoadSample `json:"load,omitempty"`   // oldest first; only in a snapshot
	Events []Event      `json:"events,omitempty"` // the latest, oldest first; only in a snapshot
}

// ConsoleUpdate is the "update" message of APIPathConsoleStream: the
// latest status, caches and host, and the load sample just taken.
type ConsoleUpdate struct {
	Time   time.Time    `json:"time"`
	Status Status       `json:"status"`
	Edges  []EdgeCache  `json:"edges"`
	DNS    []DNSAnswers `json:"dns,omitempty"`
	Host   HostLoad     `json:"host"`
	Sample LoadSample   `json:"sample"`
}

// EdgeCache is one edge's page cache as the controller last read it from
// the edge (EdgePathStatus). Error says why it could not be read.
type EdgeCache struct {
	ID       string  `json:"id"`
	Region   string  `json:"region"`
	Healthy  bool    `json:"healthy"`
	Hits     int64   `json:"hits"`
	Misses   int64   `json:"misses"`
	Bypasses int64   `json:"bypasses"`
	Stale    int64   `json:"stale"`
	Purged   int64   `json:"purged"` // entries affected by purges
	Objects  int64   `json:"objects"`
	Bytes    int64   `json:"bytes"`
	HitRatio float64 `json:"hit_ratio"` // hits / (hits + misses + stale), 0 without traffic
	Error    string  `json:"error,omitempty"`
}

// DNSAnswers is one region's geo answers as the controller last read them
// from the dns role (DNSPathStatus): Answers is the total since the role
// started, Rate the answers per second between the last two reads (0 until
// there are two). Error says why the last read failed.
type DNSAnswers struct {
	Region  string  `json:"region"`
	Answers uint64  `json:"answers"`
	Rate    float64 `json:"rate"`
	Error   string  `json:"error,omitempty"`
}

// DNSCounters is the dns role's status document (GET DNSPathStatus): its
// geo answer counters, one entry per configured region, in config order.
type DNSCounters struct {
	Regions []DNSRegionCounters `json:"regions"`
}

// DNSRegionCounters counts one region's geo answers since the role
// started: Served the answers that handed out the region's edges, Matched
// the answers for clients placed in the region (they differ by fallbacks).
type DNSRegionCounters struct {
	Name    string `json:"name"`
	Served  uint64 `json:"served"`
	Matched uint64 `json:"matched"`
}

// HostLoad is the machine the controller runs on (every role of a local
// environment shares it).
type HostLoad struct {
	CPUs  int     `json:"cpus"`
	CPU   float64 `json:"cpu"` // busy share of all CPUs since the last sample, 0..1
	Load1 float64 `json:"load1"`
}

// LoadSample is the node group's load at one time.
type LoadSample struct {
	Time        time.Time `json:"t"`
	Utilization float64   `json:"utilization"`
	Target      float64   `json:"target"`
	InService   int       `json:"in_service"`
	Desired     int       `json:"desired"`
}

// StartupStep is one step of bringing the environment up, once it is done.
type StartupStep struct {
	Name   string `json:"name"`
	TookMS int64  `json:"took_ms"`
}
