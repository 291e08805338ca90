package dbrouter

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/scalepress/scalepress/internal/api"
)

// Snapshot is the router's state for metrics and status.
type Snapshot struct {
	Mode       string           `json:"mode"`
	Writer     string           `json:"writer,omitempty"` // single mode: the member new connections go to
	Members    []MemberSnapshot `json:"members"`
	Active     int64            `json:"active"`
	Total      int64            `json:"total"`
	Failovers  int64            `json:"failovers"`   // writer changes
	DialErrors int64            `json:"dial_errors"` // failed connections to members
	Rejected   int64            `json:"rejected"`    // clients closed for want of a synced member
}

// MemberSnapshot is one member the router may use.
type MemberSnapshot struct {
	ID     string `json:"id,omitempty"`
	Addr   string `json:"addr"`
	Active int    `json:"active"`
	Total  int64  `json:"total"`
}

// Snapshot returns the router's state now.
func (r *Router) Snapshot() Snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Snapshot{Mode: r.mode, Active: r.active.Load(), Total: r.total.Load(), Failovers: r.failovers.Load(),
		DialErrors: r.dialErrors.Load(), Rejected: r.rejected.Load(), Members: []MemberSnapshot{}}
	if r.mode == ModeSingle && r.writer != "" {
		s.Writer = r.name(r.writer)
	}
	for _, m := range r.members {
		s.Members = append(s.Members, MemberSnapshot{ID: r.ids[m], Addr: m, Active: r.perConn[m], Total: r.perTot[m]})
	}
	return s
}

// Handler serves GET /metrics (Prometheus text format) and GET /status (JSON).
func (r *Router) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+api.RouterPathStatus, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(r.Snapshot())
	})
	mux.HandleFunc("GET "+api.RouterPathMetrics, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		w.Write([]byte(r.Snapshot().Prometheus()))
	})
	return mux
}

// Prometheus renders s in the Prometheus text format.
func (s Snapshot) Prometheus() string {
	var b strings.Builder
	metric := func(name, typ, help string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	label := func(m MemberSnapshot) string {
		id := m.ID
		if id == "" {
			id = m.Addr
		}
		return fmt.Sprintf(`{member=%q,addr=%q}`, id, m.Addr)
	}
	metric("scalepress_dbrouter_members", "gauge", "Synced members the router may use.")
	fmt.Fprintf(&b, "scalepress_dbrouter_members{mode=%q} %d\n", s.Mode, len(s.Members))
	metric("scalepress_dbrouter_writer", "gauge", "1 for the member new connections go to (single-writer mode).")
	for _, m := range s.Members {
		v := 0
		if s.Writer != "" && (s.Writer == m.ID || s.Writer == m.Addr) {
			v = 1
		}
		fmt.Fprintf(&b, "scalepress_dbrouter_writer%s %d\n", label(m), v)
	}
	metric("scalepress_dbrouter_connections_active", "gauge", "Relayed connections now, per member.")
	for _, m := range s.Members {
		fmt.Fprintf(&b, "scalepress_dbrouter_connections_active%s %d\n", label(m), m.Active)
	}
	metric("scalepress_dbrouter_connections_total", "counter", "Relayed connections, per member.")
	for _, m := range s.Members {
		fmt.Fprintf(&b, "scalepress_dbrouter_connections_total%s %d\n", label(m), m.Total)
	}
	metric("scalepress_dbrouter_failovers_total", "counter", "Changes of the single writer.")
	fmt.Fprintf(&b, "scalepress_dbrouter_failovers_total %d\n", s.Failovers)
	metric("scalepress_dbrouter_dial_errors_total", "counter", "Failed connections to members.")
	fmt.Fprintf(&b, "scalepress_dbrouter_dial_errors_total %d\n", s.DialErrors)
	metric("scalepress_dbrouter_rejected_total", "counter", "Client connections closed for want of a synced member.")
	fmt.Fprintf(&b, "scalepress_dbrouter_rejected_total %d\n", s.Rejected)
	return b.String()
}
