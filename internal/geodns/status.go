package geodns

import (
	"encoding/json"
	"net/http"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/guard"
)

// Counters returns the geo answer counters per region, in config order:
// what the controller's console reads (api.DNSPathStatus).
func (s *Server) Counters() api.DNSCounters {
	c := s.counters
	out := api.DNSCounters{Regions: make([]api.DNSRegionCounters, len(c.regions))}
	for i, r := range c.regions {
		out.Regions[i] = api.DNSRegionCounters{Name: r, Served: c.served[i].Load(), Matched: c.matched[i].Load()}
	}
	return out
}

// StatusHandler serves Counters as JSON.
func (s *Server) StatusHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(s.Counters())
	})
}

// monitorHandler is what Run serves on Config.MetricsAddr: the metrics
// and the status, read-only, to requests naming that address (a
// DNS-rebinding page sends its own Host).
func (s *Server) monitorHandler(addr string) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET "+api.DNSPathMetrics, s.MetricsHandler())
	mux.Handle("GET "+api.DNSPathStatus, s.StatusHandler())
	return guard.Hosts(guard.AllowedHosts(addr), s.logger, mux)
}
