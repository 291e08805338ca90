package controller

// Purges: POST /v1/purge checks the request and hands it to the purge
// fan-out (internal/purge), which applies it on every edge and retries the
// edges that did not.

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/scalepress/scalepress/internal/pagecache"
	"github.com/scalepress/scalepress/internal/purge"
)

func (c *Controller) newPurges() error {
	cfg := purge.DefaultConfig()
	cfg.Edges, cfg.Token, cfg.HTTP, cfg.Logger = c.cfg.Edges, c.secrets.PurgeSecret, c.http, c.logger
	cfg.OnRetried = func(edge string, tries int) {
		c.event("purge", edge, "purge applied on %s after %d retries", edge, tries)
	}
	var err error
	c.purges, err = purge.New(cfg)
	return err
}

// handlePurge is POST /v1/purge (the caller is checked by the API).
func (c *Controller) handlePurge(w http.ResponseWriter, r *http.Request, _ string) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, pagecache.MaxPurgeBody+1))
	if err != nil {
		http.Error(w, "purge: body: "+err.Error(), http.StatusRequestEntityTooLarge)
		return
	}
	if _, err := pagecache.ParsePurgeRequest(r.Method, r.Header, body); err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, pagecache.ErrPurgeTooLarge) {
			code = http.StatusRequestEntityTooLarge
		}
		http.Error(w, err.Error(), code)
		return
	}
	res := c.purges.Purge(r.Context(), body)
	status := http.StatusOK
	if len(res.Pending) > 0 {
		status = http.StatusAccepted
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(res)
}
