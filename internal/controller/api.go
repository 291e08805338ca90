package controller

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/guard"
)

func (c *Controller) startAPI(errc chan<- error) (*http.Server, error) {
	ln, err := net.Listen("tcp", c.cfg.API.Addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{
		Handler:           c.apiHandler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(c.logger.Handler(), slog.LevelWarn),
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	return srv, nil
}

// apiHandler is the control API: reads for anyone who names this server's
// address, writes only with a token.
func (c *Controller) apiHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+api.APIPathStatus, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, c.Status()) })
	mux.HandleFunc("GET "+api.APIPathUpstreams, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, c.upstreams.Get()) })
	mux.HandleFunc("GET "+api.APIPathDBMembers, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, c.db.RouterMembers()) })
	mux.HandleFunc("GET "+api.APIPathEvents, c.handleEvents)
	mux.HandleFunc("GET "+api.APIPathMetrics, c.handleMetrics)
	mux.HandleFunc("GET "+api.APIPathHealth, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	// Writes: a token and a JSON body (docs/adr/0009-trust-model.md).
	mux.HandleFunc("POST "+api.APIPathScale, c.write(c.operatorOnly, c.handleScale))
	mux.HandleFunc("POST "+api.APIPathPurge, c.write(c.purgeCaller, c.handlePurge))
	mux.HandleFunc("POST "+api.APIPathUpstreamsAck, c.write(c.edgeCaller, c.handleAck))
	mux.HandleFunc("POST "+api.APIPathEdgeEvents, c.write(c.edgeCaller, c.handleEdgeEvents))
	return guard.Hosts(guard.AllowedHosts(c.cfg.API.Addr, c.cfg.API.AllowedHosts...), c.logger, mux)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// Status is the status document of docs/contract.md, put together from what
// each owner reports.
func (c *Controller) Status() api.Status {
	st := api.Status{
		SiteURL:             c.cfg.SiteURL(),
		APIURL:              "http://" + c.cfg.API.Addr,
		Dir:                 c.layout.Dir,
		Version:             c.version,
		Ready:               c.ready.Load(),
		UpstreamsGeneration: c.upstreams.Generation(),
		Admin:               &api.Admin{User: c.cfg.Site.AdminUser, PasswordFile: c.layout.Secret("admin-password")},
		Edges:               []api.EdgeStatus{},
		Nodes:               []api.NodeStatus{},
		Controller: api.Controller{
			PID: os.Getpid(), Started: c.started.UTC().Format(time.RFC3339),
		},
	}
	for i, e := range c.cfg.Edges {
		if c.edges[i].proc.Load() == nil {
			continue // not started yet
		}
		st.Edges = append(st.Edges, api.EdgeStatus{ID: e.ID, Region: e.Region, Addr: e.Addr, Healthy: c.edges[i].up(), PID: c.edges[i].pid(), UpstreamsApplied: c.upstreams.Applied(e.ID)})
	}
	if c.group != nil {
		st.Nodes = c.nodesStatus()
		st.Autoscaling = c.group.Autoscaling()
	}
	st.DB = c.db.Status(c.router.pid())
	st.DNS = c.dnsStatus()
	st.Files = c.files.Status(c.cfg.Files)
	if c.redis.proc.Load() != nil {
		state := "down"
		if c.redis.healthy.Load() {
			state = "up"
		}
		st.Redis = &api.RedisStatus{Addr: c.cfg.Redis.Addr, State: state, PID: c.redis.pid()}
	}
	return st
}

func (c *Controller) handleEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	since, _ := strconv.ParseUint(q.Get(api.ParamSince), 10, 64)
	wait, _ := time.ParseDuration(q.Get(api.ParamWait))
	wait = min(wait, 60*time.Second)
	writeJSON(w, c.events.Since(r.Context(), since, wait))
}

// handleMetrics exposes the group and its decisions in the Prometheus text format.
func (c *Controller) handleMetrics(w http.ResponseWriter, r *http.Request) {
	st := c.Status()
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	states := map[string]int{}
	for _, n := range st.Nodes {
		states[n.State]++
	}
	fmt.Fprintf(w, "# HELP scalepress_nodes Nodes by state.\n# TYPE scalepress_nodes gauge\n")
	for _, s := range []string{api.NodePending, api.NodeWarming, api.NodeInService, api.NodeDraining, api.NodeTerminated, api.NodeFailed} {
		fmt.Fprintf(w, "scalepress_nodes{state=%q} %d\n", s, states[s])
	}
	fmt.Fprintf(w, "# HELP scalepress_node_utilization PHP utilisation per node.\n# TYPE scalepress_node_utilization gauge\n")
	for _, n := range st.Nodes {
		fmt.Fprintf(w, "scalepress_node_utilization{node=%q,state=%q} %g\n", n.ID, n.State, n.Utilization)
	}
	if a := st.Autoscaling; a != nil {
		fmt.Fprintf(w, "# HELP scalepress_autoscaling_desired Desired node count.\n# TYPE scalepress_autoscaling_desired gauge\nscalepress_autoscaling_desired %d\n", a.Desired)
		fmt.Fprintf(w, "# HELP scalepress_autoscaling_utilization Mean utilisation of nodes in service.\n# TYPE scalepress_autoscaling_utilization gauge\nscalepress_autoscaling_utilization %g\n", a.Utilization)
	}
	counts := c.events.CountByKind()
	fmt.Fprintf(w, "# HELP scalepress_events_total Events by kind (scale = scaling decisions, heal = replacements).\n# TYPE scalepress_events_total counter\n")
	for _, k := range []string{"scale", "heal", "node", "config"} {
		fmt.Fprintf(w, "scalepress_events_total{kind=%q} %d\n", k, counts[k])
	}
}
