package api

import "time"

// Event is one entry of the controller's event log: every scaling decision,
// node lifecycle change, replacement and process failure, with its reason and
// the inputs it was made from.
type Event struct {
	Seq     uint64         `json:"seq"`
	Time    time.Time      `json:"time"`
	Kind    string         `json:"kind"` // scale, node, heal, process, config, files
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
