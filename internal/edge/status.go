package edge

import (
	"encoding/json"
	"net/http"

	"github.com/scalepress/scalepress/internal/balancer"
	"github.com/scalepress/scalepress/internal/pagecache"
)

// Status is what the edge reports about itself (GET /_scalepress/edge/status).
type Status struct {
	ID         string `json:"id"`
	Region     string `json:"region"`
	Generation uint64 `json:"generation"`
	Retried    int64  `json:"retried"`
	// FromFiles counts uploads answered from the files role (the node had
	// not applied them yet).
	FromFiles int64 `json:"from_files"`
	// ClientRefused counts 429s for clients over http.client_concurrency.
	ClientRefused int64             `json:"client_refused"`
	Balancer      balancer.Snapshot `json:"balancer"`
	Cache         *pagecache.Stats  `json:"cache,omitempty"`
}

// Status returns the edge's state.
func (e *Edge) Status() Status {
	st := Status{ID: e.spec.ID, Region: e.spec.Region, Generation: e.generation.Load(), Retried: e.retried.Load(), Balancer: e.bal.Snapshot()}
	st.FromFiles = e.filesServed.Load()
	st.ClientRefused = e.clients.refused.Load()
	if e.cache != nil {
		cs := e.cache.Stats()
		st.Cache = &cs
	}
	return st
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}
