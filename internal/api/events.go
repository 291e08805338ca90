package api

import "time"

// Event is one entry of the controller's event log: every scaling decision,
// node lifecycle change, replacement and process failure, with its reason and
// the inputs it was made from.
type Event struct {
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	Kind string    `json:"kind"` // scale, node, heal, process, config, files, purge, throttle, backup
	// Level is "alert" for an event an operator must act on (a failed
	// backup); empty for the rest.
	Level   string         `json:"level,omitempty"`
	Node    string         `json:"node,omitempty"`
	Message string         `json:"message"`
	Inputs  map[string]any `json:"inputs,omitempty"`
}

// Events is a page of the event log.
type Events struct {
	Events []Event `json:"events"`
	Next   uint64  `json:"next"` // pass as since= to continue
}

// ScaleRequest changes the autoscaling policy at run time; nil fields keep their value.
type ScaleRequest struct {
	Min           *int     `json:"min,omitempty"`
	Max           *int     `json:"max,omitempty"`
	Target        *float64 `json:"target,omitempty"`
	ScaleInWindow *string  `json:"scale_in_window,omitempty"` // Go duration, e.g. "30s"
}

// MaxEdgeEvents is the most login blocks one EdgeEvents carries one by one.
const MaxEdgeEvents = 10

// EdgeEvents is what an edge POSTs to APIPathEdgeEvents: the login blocks
// that started since its last report (at most MaxEdgeEvents), and how many
// more started that it counts only.
type EdgeEvents struct {
	LoginBlocks []LoginBlock `json:"login_blocks"`
	More        int          `json:"more,omitempty"`
	// TLS are certificate events: a reload that failed, an ACME
	// certificate obtained or failing, one close to expiry (at most
	// MaxEdgeEvents).
	TLS []TLSEvent `json:"tls,omitempty"`
	// Overload is admission control's refusals over the edge's last
	// report interval (nil when it refused nothing).
	Overload *OverloadReport `json:"overload,omitempty"`
}

// OverloadReport is what an edge's admission control did over one report
// interval in which it refused requests: refused because the queue was
// full or after waiting the whole queue timeout, let through at once, and
// let through after a wait (MeanWaitMs on average).
type OverloadReport struct {
	QueueFull    uint64  `json:"queue_full"`
	QueueTimeout uint64  `json:"queue_timeout"`
	Admitted     uint64  `json:"admitted"`
	Queued       uint64  `json:"queued"`
	MeanWaitMs   float64 `json:"mean_wait_ms"`
}

// EventKindOverload is the kind of an edge's overload events.
const EventKindOverload = "overload"

// TLSEvent is one certificate event of an edge; Alert marks the ones an
// operator must act on.
type TLSEvent struct {
	Alert   bool   `json:"alert,omitempty"`
	Message string `json:"message"`
}

// EventKindTLS is the kind of certificate events in the event log.
const EventKindTLS = "tls"

// MaxEventMessage bounds a TLSEvent's message.
const MaxEventMessage = 1024

// LoginBlock is a client address or a user name that went over its login
// throttling limit at an edge. It never holds a password.
type LoginBlock struct {
	Time    time.Time `json:"time"`
	By      string    `json:"by"` // address or user: the limit that was passed
	Address string    `json:"address"`
	User    string    `json:"user,omitempty"`
	Count   int       `json:"count"` // failed attempts, the refused one included
	Until   time.Time `json:"until"`
}
