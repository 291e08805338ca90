package controller

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/config"
	"github.com/scalepress/scalepress/internal/console"
	"github.com/scalepress/scalepress/internal/guard"
	"github.com/scalepress/scalepress/internal/metrics"
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
	mux.HandleFunc("GET "+api.APIPathDBMembers, c.handleDBMembers)
	mux.HandleFunc("GET "+api.APIPathEvents, c.handleEvents)
	mux.Handle("GET "+api.APIPathMetrics, metrics.Handler(metrics.NewRegistry(newControllerMetrics(c.scrape))))
	mux.HandleFunc("GET "+api.APIPathTargets, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, c.Targets()) })
	mux.HandleFunc("GET "+api.APIPathReleases, c.handleReleases)
	mux.HandleFunc("GET "+api.APIPathHealth, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	// The dashboard and its stream: reads, like the routes above. Its
	// actions are the writes below, with the operator's token.
	c.console.Handle(mux)
	// Writes: a token and a JSON body (docs/adr/0009-trust-model.md).
	mux.HandleFunc("POST "+api.APIPathScale, c.write(c.operatorOnly, c.handleScale))
	mux.HandleFunc("POST "+api.APIPathPurge, c.write(c.purgeCaller, c.handlePurge))
	mux.HandleFunc("POST "+api.APIPathBackups, c.write(c.operatorOnly, c.handleBackup))
	mux.HandleFunc("POST "+api.APIPathReleases, c.write(c.operatorOnly, c.handleUpdate))
	mux.HandleFunc("POST "+api.APIPathRollback, c.write(c.operatorOnly, c.handleRollback))
	mux.HandleFunc("POST "+api.APIPathUpstreamsAck, c.write(c.edgeCaller, c.handleAck))
	mux.HandleFunc("POST "+api.APIPathEdgeEvents, c.write(c.edgeCaller, c.handleEdgeEvents))
	return guard.Hosts(guard.AllowedHosts(c.cfg.API.Addr, c.cfg.API.AllowedHosts...), c.logger, mux)
}

// handleDBMembers answers the routers' poll. Before the database has been
// started (its members observed), 503: a router keeps the list it has on
// any answer but a 200, and the members that served until now keep serving.
func (c *Controller) handleDBMembers(w http.ResponseWriter, r *http.Request) {
	m, ok := c.db.RouterMembers()
	if !ok {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "database members not observed yet (the controller is starting): keep the list you have", http.StatusServiceUnavailable)
		return
	}
	writeJSON(w, m)
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
		DashboardURL:        "http://" + c.cfg.API.Addr + api.DashboardPath,
		Startup:             c.startup.list(),
		Edges:               []api.EdgeStatus{},
		Nodes:               []api.NodeStatus{},
		Controller: api.Controller{
			PID: os.Getpid(), Started: c.started.UTC().Format(time.RFC3339),
		},
	}
	for i, e := range c.cfg.Edges {
		host, onNomad := c.edgeHost(e.ID)
		if c.edges[i].proc.Load() == nil && !onNomad {
			continue // not started yet
		}
		st.Edges = append(st.Edges, api.EdgeStatus{ID: e.ID, Region: e.Region, Addr: e.Addr, HTTPSAddr: c.cfg.EdgeHTTPSAddr(i), Healthy: c.edgeUp(i), PID: c.edges[i].pid(), Host: host, UpstreamsApplied: c.upstreams.Applied(e.ID)})
	}
	if c.group != nil {
		st.Nodes = c.nodesStatus()
		st.Autoscaling = c.group.Autoscaling()
	}
	st.DB = c.db.Status(c.router.pid())
	st.DNS = c.dnsStatus()
	st.TLS = c.tlsStatus()
	st.Files = c.files.Status(c.cfg.Files)
	if c.redis.proc.Load() != nil || c.onNomad(config.RoleRedis) {
		state := "down"
		if c.redis.healthy.Load() {
			state = "up"
		}
		st.Redis = &api.RedisStatus{Addr: c.redisAddr(), State: state, PID: c.redis.pid(), Host: c.redisHost()}
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

// newConsole makes the dashboard's server (internal/console).
func (c *Controller) newConsole() error {
	cfg := console.DefaultConfig()
	cfg.Status, cfg.Events, cfg.Logger = c.Status, c.events, c.logger.With("component", "console")
	if c.cfg.DNS.Enabled {
		cfg.DNSAddr = c.cfg.DNS.MetricsAddr
	}
	var err error
	c.console, err = console.New(cfg)
	return err
}
