package controller

// Who may change what through the control API (docs/adr/0009-trust-model.md):
// every write carries a bearer token and a JSON body; reads need neither.

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/config"
	"github.com/scalepress/scalepress/internal/guard"
	"github.com/scalepress/scalepress/internal/statedir"
	"github.com/scalepress/scalepress/internal/token"
)

// caller decides whether a request may go on; it returns the caller's
// identity, or answers the request itself and returns false.
type caller func(w http.ResponseWriter, r *http.Request) (string, bool)

// write wraps a state-changing handler: JSON only (a cross-site form or a
// fetch without preflight cannot send it), then the caller check.
func (c *Controller) write(who caller, h func(w http.ResponseWriter, r *http.Request, id string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !guard.RequireType(w, r, c.logger, "application/json") {
			return
		}
		id, ok := who(w, r)
		if !ok {
			return
		}
		h(w, r, id)
	}
}

// controlID is the identity of a control token, or an error.
func (c *Controller) controlID(r *http.Request) (string, error) {
	return guard.Authenticate(c.secrets.Key(token.Control), r)
}

// operatorOnly admits DIR/secrets/api-token.
func (c *Controller) operatorOnly(w http.ResponseWriter, r *http.Request) (string, bool) {
	id, err := c.controlID(r)
	if err != nil {
		guard.Unauthorized(w, r, c.logger, r.URL.Path+": send the operator token of DIR/secrets/api-token", err)
		return "", false
	}
	if id != statedir.OperatorID {
		guard.Refuse(w, r, c.logger, http.StatusForbidden, "%s: only the operator token may do this, not %q", r.URL.Path, id)
		return "", false
	}
	return id, true
}

// purgeCaller admits WordPress (the purge secret in wp-config.php) and the operator.
func (c *Controller) purgeCaller(w http.ResponseWriter, r *http.Request) (string, bool) {
	if tok, ok := token.Bearer(r.Header); ok && subtle.ConstantTimeCompare([]byte(tok), []byte(c.secrets.PurgeSecret)) == 1 {
		return "wordpress", true
	}
	return c.operatorOnly(w, r)
}

// edgeCaller admits a configured edge with its own token.
func (c *Controller) edgeCaller(w http.ResponseWriter, r *http.Request) (string, bool) {
	id, err := c.controlID(r)
	if err != nil {
		guard.Unauthorized(w, r, c.logger, r.URL.Path+": edges send their own control token", err)
		return "", false
	}
	if !slices.ContainsFunc(c.cfg.Edges, func(e config.Edge) bool { return e.ID == id }) {
		guard.Refuse(w, r, c.logger, http.StatusForbidden, "%s: %q is not a configured edge", r.URL.Path, id)
		return "", false
	}
	return id, true
}

// handleAck records that edge id applied an upstream generation; a drained
// node is stopped only once every edge has.
func (c *Controller) handleAck(w http.ResponseWriter, r *http.Request, id string) {
	var ack api.UpstreamsAck
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ack); err != nil {
		guard.Refuse(w, r, c.logger, http.StatusBadRequest, "upstreams ack: body: %v; send {\"generation\": N}", err)
		return
	}
	if err := c.upstreams.Ack(id, ack.Generation); err != nil {
		guard.Refuse(w, r, c.logger, http.StatusBadRequest, "upstreams ack: %v", err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, "{\"generation\": %d}\n", ack.Generation)
}

// handleEdgeEvents records what edge id reports as events: the login
// throttling blocks that started there (kind "throttle") and its
// certificate events (kind "tls").
func (c *Controller) handleEdgeEvents(w http.ResponseWriter, r *http.Request, id string) {
	var ev api.EdgeEvents
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ev); err != nil {
		guard.Refuse(w, r, c.logger, http.StatusBadRequest, "edge events: body: %v", err)
		return
	}
	if len(ev.LoginBlocks) > api.MaxEdgeEvents || ev.More < 0 {
		guard.Refuse(w, r, c.logger, http.StatusBadRequest, "edge events: %d login blocks, at most %d one by one (count the rest in more)", len(ev.LoginBlocks), api.MaxEdgeEvents)
		return
	}
	if len(ev.TLS) > api.MaxEdgeEvents {
		guard.Refuse(w, r, c.logger, http.StatusBadRequest, "edge events: %d tls events, at most %d", len(ev.TLS), api.MaxEdgeEvents)
		return
	}
	for _, t := range ev.TLS {
		if t.Message == "" || len(t.Message) > api.MaxEventMessage {
			guard.Refuse(w, r, c.logger, http.StatusBadRequest, "edge events: a tls event's message must be 1 to %d bytes", api.MaxEventMessage)
			return
		}
	}
	c.tlsEvents(id, ev.TLS)
	if o := ev.Overload; o != nil {
		c.eventWith(api.EventKindOverload, "", map[string]any{"edge": id, "queue_full": o.QueueFull, "queue_timeout": o.QueueTimeout,
			"admitted": o.Admitted, "queued": o.Queued, "mean_wait_ms": o.MeanWaitMs},
			"%s: %d uncached requests refused (stale copy or 503): %d with the queue full, %d after the whole queue timeout; %d let through at once, %d after %.0f ms on average",
			id, o.QueueFull+o.QueueTimeout, o.QueueFull, o.QueueTimeout, o.Admitted, o.Queued, o.MeanWaitMs)
	}
	for _, b := range ev.LoginBlocks {
		what := "address " + b.Address
		if b.By == "user" {
			what = fmt.Sprintf("user name %q", b.User)
		}
		c.eventWith("throttle", "", map[string]any{"edge": id, "by": b.By, "address": b.Address, "user": b.User, "count": b.Count, "until": b.Until},
			"%s: login attempts for %s blocked until %s after %d failures (last from %s)", id, what, b.Until.Format(time.RFC3339), b.Count, b.Address)
	}
	if ev.More > 0 {
		c.eventWith("throttle", "", map[string]any{"edge": id, "more": ev.More}, "%s: %d more login blocks started (see the edge's log)", id, ev.More)
	}
	w.WriteHeader(http.StatusNoContent)
}
