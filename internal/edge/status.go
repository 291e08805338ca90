package edge

import (
	"encoding/json"
	"net/http"

	"github.com/scalepress/scalepress/internal/balancer"
	"github.com/scalepress/scalepress/internal/pagecache"
	"github.com/scalepress/scalepress/internal/throttle"
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
	// Admission is admission control's counters (all 0 when it is off).
	Admission balancer.AdmissionStats `json:"admission"`
	Cache     *pagecache.Stats        `json:"cache,omitempty"`
	TLS       *TLSStatus              `json:"tls,omitempty"`
	// Logins is login throttling (nil when off).
	Logins *LoginStatus `json:"login_throttle,omitempty"`
}

// LoginStatus is login throttling at this edge: requests seen per kind,
// the limiter's counters, and the last blocks that started.
type LoginStatus struct {
	Requests struct {
		WPLogin int64 `json:"wp_login"`
		XMLRPC  int64 `json:"xmlrpc"`
		Basic   int64 `json:"basic"`
	} `json:"requests"`
	throttle.Stats
	Recent []throttle.Block `json:"recent"`
}

// Status returns the edge's state.
func (e *Edge) Status() Status {
	st := Status{ID: e.spec.ID, Region: e.spec.Region, Generation: e.generation.Load(), Retried: e.retried.Load(), Balancer: e.bal.Snapshot()}
	st.FromFiles = e.filesServed.Load()
	st.ClientRefused = e.clients.refused.Load()
	st.Admission = e.bal.Admission()
	if l := e.logins; l != nil {
		ls := &LoginStatus{Stats: l.lim.Stats(), Recent: l.lim.Recent()}
		ls.Requests.WPLogin, ls.Requests.XMLRPC, ls.Requests.Basic = l.wpLogin.Load(), l.xmlrpc.Load(), l.basic.Load()
		st.Logins = ls
	}
	if e.cache != nil {
		cs := e.cache.Stats()
		st.Cache = &cs
	}
	if e.tls != nil {
		st.TLS = e.tls.status()
	}
	return st
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}
