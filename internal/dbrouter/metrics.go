package dbrouter

import (
	"encoding/json"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/guard"
	"github.com/scalepress/scalepress/internal/metrics"
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

// Handler serves GET /metrics (Prometheus) and GET /status (JSON), to
// requests whose Host is the metrics address (docs/adr/0009-trust-model.md).
func (r *Router) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+api.RouterPathStatus, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(r.Snapshot())
	})
	mux.Handle("GET "+api.RouterPathMetrics, metrics.Handler(r.registry))
	return guard.Hosts(guard.AllowedHosts(r.cfg.MetricsAddr), r.logger, mux)
}

// routerCollector reads the router's Snapshot at scrape time
// (docs/metrics.md, "dbrouter").
type routerCollector struct {
	r                                                             *Router
	members, writer, active, total, failovers, dialErrs, rejected *prometheus.Desc
}

func newRouterCollector(r *Router) *routerCollector {
	member := []string{"member", "addr"}
	return &routerCollector{r: r,
		members:   prometheus.NewDesc("scalepress_dbrouter_members", "Synced members the router may use.", []string{"mode"}, nil),
		writer:    prometheus.NewDesc("scalepress_dbrouter_writer", "1 for the member new connections go to (single-writer mode).", member, nil),
		active:    prometheus.NewDesc("scalepress_dbrouter_connections_active", "Relayed connections now, per member.", member, nil),
		total:     prometheus.NewDesc("scalepress_dbrouter_connections_total", "Relayed connections, per member.", member, nil),
		failovers: prometheus.NewDesc("scalepress_dbrouter_failovers_total", "Changes of the single writer.", nil, nil),
		dialErrs:  prometheus.NewDesc("scalepress_dbrouter_dial_errors_total", "Failed connections to members.", nil, nil),
		rejected:  prometheus.NewDesc("scalepress_dbrouter_rejected_total", "Client connections closed for want of a synced member.", nil, nil),
	}
}

func (c *routerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.members, c.writer, c.active, c.total, c.failovers, c.dialErrs, c.rejected} {
		ch <- d
	}
}

func (c *routerCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.r.Snapshot()
	ch <- prometheus.MustNewConstMetric(c.members, prometheus.GaugeValue, float64(len(s.Members)), s.Mode)
	for _, m := range s.Members {
		id := m.ID
		if id == "" {
			id = m.Addr
		}
		writer := s.Writer != "" && (s.Writer == m.ID || s.Writer == m.Addr)
		ch <- prometheus.MustNewConstMetric(c.writer, prometheus.GaugeValue, metrics.B2F(writer), id, m.Addr)
		ch <- prometheus.MustNewConstMetric(c.active, prometheus.GaugeValue, float64(m.Active), id, m.Addr)
		ch <- prometheus.MustNewConstMetric(c.total, prometheus.CounterValue, float64(m.Total), id, m.Addr)
	}
	ch <- prometheus.MustNewConstMetric(c.failovers, prometheus.CounterValue, float64(s.Failovers))
	ch <- prometheus.MustNewConstMetric(c.dialErrs, prometheus.CounterValue, float64(s.DialErrors))
	ch <- prometheus.MustNewConstMetric(c.rejected, prometheus.CounterValue, float64(s.Rejected))
}
