package dbagent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/galera"
	"github.com/scalepress/scalepress/internal/guard"
)

// Handler is the agent's API: Host allowlist, then the controller's bearer
// token, then the member and the operation.
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+api.DBAgentPathMembers+"{id}", a.withMember(a.getMember))
	mux.HandleFunc("GET "+api.DBAgentPathMembers+"{id}/last-error", a.withMember(a.lastError))
	mux.HandleFunc("POST "+api.DBAgentPathMembers+"{id}/{op}", a.withMember(a.post))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		guard.Refuse(w, r, a.logger, http.StatusNotFound, "%s %s: no such route", r.Method, r.URL.Path)
	})
	return guard.Hosts(guard.AllowedHosts(a.cfg.Addr), a.logger, a.authenticate(a.fenced(mux)))
}

func (a *Agent) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := guard.Authenticate(a.cfg.Key, r)
		if err != nil {
			guard.Unauthorized(w, r, a.logger, "db-agent API", err)
			return
		}
		if id != api.DBAgentCaller {
			guard.Refuse(w, r, a.logger, http.StatusForbidden, "%s %s: %q may not call the db-agent; only the controller may", r.Method, r.URL.Path, id)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (a *Agent) withMember(h func(http.ResponseWriter, *http.Request, *member)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		m, ok := a.members[id]
		if !ok {
			guard.Refuse(w, r, a.logger, http.StatusNotFound, "%s %s: no member %q on this agent", r.Method, r.URL.Path, id)
			return
		}
		h(w, r, m)
	}
}

func (a *Agent) proc(m *member) galera.Proc {
	a.mu.Lock()
	defer a.mu.Unlock()
	return m.proc
}

func (a *Agent) state(ctx context.Context, m *member) (api.DBAgentMember, error) {
	st := api.DBAgentMember{ID: m.cfg.ID, Addr: m.cfg.Addr}
	if p := a.proc(m); running(p) {
		st.Running, st.PID = true, p.Pid()
	}
	d, err := a.host.Inspect(ctx, m.cfg)
	if err != nil {
		return st, err
	}
	st.Disk = api.DBDisk{Initialized: d.Initialized, HasData: d.HasData, ViewID: d.ViewID}
	if g := d.Grastate; g != nil {
		st.Disk.Grastate = &api.DBGrastate{Version: g.Version, UUID: g.UUID, Seqno: g.Seqno, SafeToBootstrap: g.SafeToBootstrap}
	}
	return st, nil
}

func (a *Agent) getMember(w http.ResponseWriter, r *http.Request, m *member) {
	st, err := a.state(r.Context(), m)
	if err != nil {
		a.fail(w, r, m, "read", err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (a *Agent) lastError(w http.ResponseWriter, r *http.Request, m *member) {
	writeJSON(w, http.StatusOK, api.DBAgentLastError{LastError: a.host.LastError(r.Context(), m.cfg), Log: a.host.LogName(m.cfg)})
}

// needs says whether an operation needs the member stopped (it writes the
// datadir or its config), running (it talks to mariadbd), or either.
type needs int

const (
	stopped needs = iota
	alive
	either
)

var ops = map[string]needs{
	api.DBOpPrepare:     stopped,
	api.DBOpInit:        stopped,
	api.DBOpRecover:     stopped,
	api.DBOpClearSST:    stopped,
	api.DBOpSafe:        stopped,
	api.DBOpStart:       stopped,
	api.DBOpStop:        either,
	api.DBOpSSTDone:     either,
	api.DBOpPing:        alive,
	api.DBOpEnsureSite:  alive,
	api.DBOpPCBootstrap: alive,
}

func (a *Agent) post(w http.ResponseWriter, r *http.Request, m *member) {
	op := r.PathValue("op")
	need, ok := ops[op]
	if !ok {
		guard.Refuse(w, r, a.logger, http.StatusNotFound, "POST %s: no operation %q", r.URL.Path, op)
		return
	}
	if !guard.RequireType(w, r, a.logger, "application/json") {
		return
	}
	var (
		start api.DBAgentStart
		stop  api.DBAgentStop
		safe  api.DBAgentSafe
		grant api.DBAgentGrant
		none  struct{}
		body  any = &none
	)
	switch op {
	case api.DBOpStart:
		body = &start
	case api.DBOpStop:
		body = &stop
	case api.DBOpSafe:
		body = &safe
	case api.DBOpEnsureSite:
		body = &grant
	}
	if status, err := a.decode(w, r, body); err != nil {
		guard.Refuse(w, r, a.logger, status, "POST %s: %v", r.URL.Path, err)
		return
	}
	// Checked before the member is locked and again under the lock.
	var mode galera.StartMode
	var pos *galera.Position
	switch op {
	case api.DBOpStart:
		mode = galera.StartMode(start.Mode)
		if start.Position != "" {
			p, err := galera.ParsePosition(start.Position)
			if err != nil {
				guard.Refuse(w, r, a.logger, http.StatusBadRequest, "POST %s: position: %v", r.URL.Path, err)
				return
			}
			pos = &p
		}
		if _, err := galera.StartArgs(mode, pos); err != nil {
			guard.Refuse(w, r, a.logger, http.StatusBadRequest, "POST %s: %v", r.URL.Path, err)
			return
		}
	case api.DBOpStop:
		if stop.PID < 0 || stop.TimeoutMS < 0 {
			guard.Refuse(w, r, a.logger, http.StatusBadRequest, "POST %s: pid and timeout_ms must not be negative", r.URL.Path)
			return
		}
	case api.DBOpEnsureSite:
		if err := siteGrant(grant).Validate(); err != nil {
			guard.Refuse(w, r, a.logger, http.StatusBadRequest, "POST %s: %v", r.URL.Path, err)
			return
		}
	}

	m.busy.Lock()
	defer m.busy.Unlock()
	p := a.proc(m)
	switch {
	case need == stopped && running(p):
		guard.Refuse(w, r, a.logger, http.StatusConflict, "POST %s: %s is running (pid %d): stop it first", r.URL.Path, m.cfg.ID, p.Pid())
		return
	case need == alive && !running(p):
		guard.Refuse(w, r, a.logger, http.StatusConflict, "POST %s: %s is not running", r.URL.Path, m.cfg.ID)
		return
	}
	ctx := r.Context()
	var err error
	switch op {
	case api.DBOpPrepare:
		err = a.host.Prepare(ctx, m.cfg)
	case api.DBOpInit:
		err = a.host.Init(ctx, m.cfg)
	case api.DBOpRecover:
		var got galera.Position
		if got, err = a.host.Recover(ctx, m.cfg); err == nil {
			a.logger.Info("recovered position", "member", m.cfg.ID, "position", got.String())
			writeJSON(w, http.StatusOK, api.DBAgentPosition{Position: got.String()})
			return
		}
	case api.DBOpClearSST:
		err = a.host.ClearForSST(ctx, m.cfg)
	case api.DBOpSSTDone:
		err = a.host.SSTDone(ctx, m.cfg)
	case api.DBOpSafe:
		err = a.host.SetSafeToBootstrap(ctx, m.cfg, safe.Safe)
	case api.DBOpStart:
		var np galera.Proc
		if np, err = a.host.Start(ctx, m.cfg, mode, pos); err == nil {
			a.mu.Lock()
			m.proc = np
			a.mu.Unlock()
			a.logger.Info("member started", "member", m.cfg.ID, "pid", np.Pid(), "mode", mode, "client", r.RemoteAddr)
			writeJSON(w, http.StatusOK, api.DBAgentMember{ID: m.cfg.ID, Addr: m.cfg.Addr, Running: true, PID: np.Pid()})
			return
		}
	case api.DBOpStop:
		if !running(p) {
			break
		}
		if stop.PID != 0 && stop.PID != p.Pid() {
			guard.Refuse(w, r, a.logger, http.StatusConflict, "POST %s: run %d is not the running one (%d)", r.URL.Path, stop.PID, p.Pid())
			return
		}
		timeout := min(time.Duration(stop.TimeoutMS)*time.Millisecond, a.cfg.MaxStop)
		if stop.TimeoutMS == 0 {
			timeout = a.cfg.MaxStop
		}
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		p.Stop(sctx) // past the timeout it is killed; either way it is over below
		cancel()
		<-p.Done()
		a.logger.Info("member stopped", "member", m.cfg.ID, "pid", p.Pid(), "client", r.RemoteAddr)
	case api.DBOpPing:
		err = a.host.Ping(ctx, m.cfg)
	case api.DBOpEnsureSite:
		err = a.host.EnsureSite(ctx, m.cfg, siteGrant(grant))
	case api.DBOpPCBootstrap:
		err = a.host.PCBootstrap(ctx, m.cfg)
	}
	if err != nil {
		a.fail(w, r, m, op, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func siteGrant(g api.DBAgentGrant) galera.Grant {
	return galera.Grant{Database: g.Database, User: g.User, Password: g.Password, MonitorUser: g.MonitorUser, MonitorPassword: g.MonitorPassword}
}

// decode reads one JSON value, strictly, bounded by MaxBody.
func (a *Agent) decode(w http.ResponseWriter, r *http.Request, v any) (int, error) {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, a.cfg.MaxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return http.StatusRequestEntityTooLarge, fmt.Errorf("body larger than %d bytes", a.cfg.MaxBody)
		}
		return http.StatusBadRequest, fmt.Errorf("body: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return http.StatusBadRequest, fmt.Errorf("body: one JSON object expected")
	}
	return 0, nil
}

// fail answers 500 with the operation's error on one line (the operation
// ran and failed: not the caller's fault).
func (a *Agent) fail(w http.ResponseWriter, r *http.Request, m *member, op string, err error) {
	a.logger.Warn("operation failed", "member", m.cfg.ID, "op", op, "err", err, "client", r.RemoteAddr)
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusInternalServerError)
	fmt.Fprintf(w, "%s %s: %s\n", op, m.cfg.ID, oneLine(err.Error()))
}

func oneLine(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			return s[:i]
		}
	}
	return s
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
