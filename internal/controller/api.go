package controller

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/supervise"
)

func (c *Controller) startAPI(errc chan<- error) (*http.Server, error) {
	ln, err := net.Listen("tcp", c.cfg.API.Addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, c.Status()) })
	mux.HandleFunc("GET /v1/upstreams", func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		ups := api.Upstreams{Generation: c.upGen, Nodes: append([]api.Upstream{}, c.upstreams...)}
		c.mu.Unlock()
		writeJSON(w, ups)
	})
	mux.HandleFunc("GET /v1/db/members", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, c.routerMembers()) })
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	return srv, nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// Status is the status document of CONTRACT.md.
func (c *Controller) Status() api.Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := api.Status{
		SiteURL: c.cfg.SiteURL(),
		APIURL:  "http://" + c.cfg.API.Addr,
		Dir:     c.layout.Dir,
		Version: c.version,
		Ready:   c.ready,
		Admin:   &api.Admin{User: c.cfg.Site.AdminUser, PasswordFile: c.layout.Secret("admin-password")},
		Edges:   []api.EdgeStatus{},
		Nodes:   []api.NodeStatus{},
		Controller: api.Controller{
			PID: osGetpid(), Started: c.started.UTC().Format(time.RFC3339),
		},
	}
	for _, e := range c.edges {
		st.Edges = append(st.Edges, api.EdgeStatus{ID: e.cfg.ID, Region: e.cfg.Region, Addr: e.cfg.Addr, Healthy: e.healthy, PID: e.proc.Pid()})
	}
	for _, n := range c.nodes {
		ns := api.NodeStatus{ID: n.id, Addr: n.addr, State: n.state, Docroot: n.docroot, PIDs: []int{}, Utilization: n.util, Restarts: n.proc.Restarts()}
		if pid := n.proc.Pid(); pid > 0 {
			ns.PIDs = append(ns.PIDs, pid)
			ns.PIDs = append(ns.PIDs, childPIDs(pid)...)
		}
		if err := n.proc.Err(); err != nil && n.proc.State() == supervise.Failed {
			ns.Error = err.Error()
		}
		st.Nodes = append(st.Nodes, ns)
	}
	st.DB = c.dbStatusLocked()
	if c.redis != nil {
		state := "down"
		if c.redis.healthy {
			state = "up"
		}
		st.Redis = &api.RedisStatus{Addr: c.cfg.Redis.Addr, State: state, PID: c.redis.proc.Pid()}
	}
	return st
}
