package controller

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
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
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, c.Status()) })
	mux.HandleFunc("GET /v1/upstreams", func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		ups := api.Upstreams{Generation: c.upGen, Nodes: append([]api.Upstream{}, c.upstreams...)}
		c.mu.Unlock()
		writeJSON(w, ups)
	})
	mux.HandleFunc("GET /v1/db/members", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, c.routerMembers()) })
	mux.HandleFunc("GET /v1/events", c.handleEvents)
	mux.HandleFunc("GET /metrics", c.handleMetrics)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	// Writes: a token and a JSON body (docs/adr/0009-trust-model.md).
	mux.HandleFunc("POST /v1/scale", c.write(c.operatorOnly, c.handleScale))
	mux.HandleFunc("POST /v1/purge", c.write(c.purgeCaller, c.handlePurge))
	mux.HandleFunc("POST /v1/upstreams/ack", c.write(c.edgeCaller, c.handleAck))
	return guard.Hosts(guard.AllowedHosts(c.cfg.API.Addr, c.cfg.API.AllowedHosts...), c.logger, mux)
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
		SiteURL:             c.cfg.SiteURL(),
		APIURL:              "http://" + c.cfg.API.Addr,
		Dir:                 c.layout.Dir,
		Version:             c.version,
		Ready:               c.ready,
		UpstreamsGeneration: c.upGen,
		Admin:               &api.Admin{User: c.cfg.Site.AdminUser, PasswordFile: c.layout.Secret("admin-password")},
		Edges:               []api.EdgeStatus{},
		Nodes:               []api.NodeStatus{},
		Controller: api.Controller{
			PID: osGetpid(), Started: c.started.UTC().Format(time.RFC3339),
		},
	}
	for _, e := range c.edges {
		st.Edges = append(st.Edges, api.EdgeStatus{ID: e.cfg.ID, Region: e.cfg.Region, Addr: e.cfg.Addr, Healthy: e.healthy, PID: e.proc.Pid(), UpstreamsApplied: c.edgeGen[e.cfg.ID]})
	}
	for _, n := range c.nodes {
		ns := api.NodeStatus{ID: n.id, Addr: n.addr, State: n.state, Docroot: n.docroot, PIDs: []int{}, Utilization: n.util, FilesSeq: n.filesSeq}
		if n.proc != nil {
			ns.Restarts = n.proc.Restarts()
			if pid := n.proc.Pid(); pid > 0 {
				ns.PIDs = append(ns.PIDs, pid)
				ns.PIDs = append(ns.PIDs, childPIDs(pid)...)
			}
		}
		if n.state == api.NodeFailed || n.state == api.NodeDraining {
			ns.Error = n.reason
		}
		st.Nodes = append(st.Nodes, ns)
	}
	st.DB = c.dbStatusLocked()
	st.DNS = c.dnsStatusLocked()
	st.Files = c.filesStatusLocked()
	if c.scaler != nil {
		st.Autoscaling = c.scaler.status(c.desired, c.avgUtilLocked())
	}
	if c.redis != nil {
		state := "down"
		if c.redis.healthy {
			state = "up"
		}
		st.Redis = &api.RedisStatus{Addr: c.cfg.Redis.Addr, State: state, PID: c.redis.proc.Pid()}
	}
	return st
}

func (c *Controller) handleEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	since, _ := strconv.ParseUint(q.Get("since"), 10, 64)
	wait, _ := time.ParseDuration(q.Get("wait"))
	wait = min(wait, 60*time.Second)
	writeJSON(w, c.events.Since(r.Context(), since, wait))
}

func (c *Controller) handleScale(w http.ResponseWriter, r *http.Request, _ string) {
	var req api.ScaleRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		http.Error(w, "scale: bad request body: "+err.Error(), http.StatusBadRequest)
		return
	}
	applied, err := c.scaler.update(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.eventWith("config", "", map[string]any{"min": applied.Min, "max": applied.Max, "target": applied.Target, "scale_in_window": applied.ScaleInWindow.String()},
		"scaling policy set: min %d, max %d, target %.2f, scale-in window %s", applied.Min, applied.Max, applied.Target, applied.ScaleInWindow)
	if st, err := readState(c.layout.StateFile()); err == nil {
		w := applied.ScaleInWindow.String()
		st.Policy = &api.ScaleRequest{Min: &applied.Min, Max: &applied.Max, Target: &applied.Target, ScaleInWindow: &w}
		writeState(c.layout.StateFile(), st)
	}
	writeJSON(w, c.Status().Autoscaling)
}

// avgUtilLocked is the mean utilisation of the nodes in service.
func (c *Controller) avgUtilLocked() float64 {
	var sum float64
	n := 0
	for _, ns := range c.nodes {
		if ns.state == api.NodeInService {
			sum += ns.util
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
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
	counts := c.events.countByKind()
	fmt.Fprintf(w, "# HELP scalepress_events_total Events by kind (scale = scaling decisions, heal = replacements).\n# TYPE scalepress_events_total counter\n")
	for _, k := range []string{"scale", "heal", "node", "config"} {
		fmt.Fprintf(w, "scalepress_events_total{kind=%q} %d\n", k, counts[k])
	}
}
