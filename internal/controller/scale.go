package controller

// `scalepress scale`: a run-time change of the scaling limits, validated by
// internal/config like the file's, applied to the node group (whose
// autoscaler keeps its history) and kept in the state file.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/config"
	"github.com/scalepress/scalepress/internal/statedir"
)

// applyScale is a with req's changes, validated; maxAllowed (the config's
// autoscaling.max: the node addresses reserved at start) bounds max.
func applyScale(a config.Autoscale, req api.ScaleRequest, maxAllowed int) (config.Autoscale, error) {
	if req.Min != nil {
		a.Min = *req.Min
	}
	if req.Max != nil {
		a.Max = *req.Max
	}
	if req.Target != nil {
		a.Target = *req.Target
	}
	if req.ScaleInWindow != nil {
		d, err := time.ParseDuration(*req.ScaleInWindow)
		if err != nil {
			return a, fmt.Errorf("scale: autoscaling.scale_in_window: %v", err)
		}
		a.ScaleInWindow = d
	}
	if err := a.Validate(); err != nil {
		return a, fmt.Errorf("scale: %w", err)
	}
	if a.Max > maxAllowed {
		return a, fmt.Errorf("scale: autoscaling.max: at most %d (autoscaling.max in the config reserves the node addresses)", maxAllowed)
	}
	return a, nil
}

func (c *Controller) handleScale(w http.ResponseWriter, r *http.Request, _ string) {
	var req api.ScaleRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		http.Error(w, "scale: bad request body: "+err.Error(), http.StatusBadRequest)
		return
	}
	cur := c.group.Scaling()
	a := c.cfg.Autoscale
	a.Min, a.Max, a.Target, a.ScaleInWindow = cur.Min, cur.Max, cur.Target, cur.ScaleInWindow
	next, err := applyScale(a, req, c.cfg.Autoscale.Max)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if err := c.group.SetScaling(scaling(cur.Enabled, cur.Count, next)); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	c.eventWith("config", "", map[string]any{"min": next.Min, "max": next.Max, "target": next.Target, "scale_in_window": next.ScaleInWindow.String()},
		"scaling policy set: min %d, max %d, target %.2f, scale-in window %s", next.Min, next.Max, next.Target, next.ScaleInWindow)
	if st, err := statedir.ReadState(c.layout.StateFile()); err == nil {
		win := next.ScaleInWindow.String()
		st.Policy = &api.ScaleRequest{Min: &next.Min, Max: &next.Max, Target: &next.Target, ScaleInWindow: &win}
		if err := statedir.WriteState(c.layout.StateFile(), st); err != nil {
			c.logger.Warn("scaling policy not saved", "err", err)
		} else {
			c.saveHomeLater(r.Context())
		}
	}
	writeJSON(w, c.group.Autoscaling())
}
