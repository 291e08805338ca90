package controller

// Purges: WordPress (the scalepress mu-plugin) and `scalepress purge` send
// one request to the controller, which applies it on every edge and
// acknowledges only when every edge did; an edge that could not be reached
// gets the purge again, with backoff, until it applies it.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/config"
	"github.com/scalepress/scalepress/internal/pagecache"
)

type pendingPurge struct {
	edge    string
	addr    string
	body    []byte
	tries   int
	nextTry time.Time
}

// purger owns purges: the fan-out to every edge and the retries of the ones
// an edge has not applied yet.
type purger struct {
	edges  []config.Edge
	secret string // the edges' purge endpoint's bearer token
	http   *http.Client
	event  func(kind, node, format string, args ...any)
	logger *slog.Logger

	mu      sync.Mutex
	pending []*pendingPurge
}

func newPurger(edges []config.Edge, secret string, client *http.Client, event func(kind, node, format string, args ...any), logger *slog.Logger) *purger {
	return &purger{edges: edges, secret: secret, http: client, event: event, logger: logger}
}

// handle is POST /v1/purge (the caller is checked by the API).
func (c *purger) handle(w http.ResponseWriter, r *http.Request, _ string) {
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
	res := c.fanOutPurge(r.Context(), body)
	status := http.StatusOK
	if len(res.Pending) > 0 {
		status = http.StatusAccepted
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(res)
}

// fanOutPurge sends the purge to every edge at once.
func (c *purger) fanOutPurge(ctx context.Context, body []byte) api.PurgeResult {
	var res api.PurgeResult
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, e := range c.edges {
		wg.Go(func() {
			n, err := c.purgeEdge(ctx, e.Addr, body)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.Pending = append(res.Pending, e.ID)
				c.mu.Lock()
				c.pending = append(c.pending, &pendingPurge{edge: e.ID, addr: e.Addr, body: body, nextTry: time.Now().Add(time.Second)})
				c.mu.Unlock()
				c.logger.Warn("purge not applied on an edge; will retry", "edge", e.ID, "err", err)
				return
			}
			res.Applied = append(res.Applied, e.ID)
			res.Purged += n
		})
	}
	wg.Wait()
	return res
}

func (c *purger) purgeEdge(ctx context.Context, addr string, body []byte) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+api.EdgePathPurge, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.secret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("edge answered %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	var out api.EdgePurgeResult
	json.Unmarshal(b, &out)
	return out.Purged, nil
}

// Run re-sends purges that an edge has not applied yet, until ctx ends.
func (c *purger) Run(ctx context.Context) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		c.mu.Lock()
		due := []*pendingPurge{}
		for _, p := range c.pending {
			if !now.Before(p.nextTry) {
				due = append(due, p)
			}
		}
		c.mu.Unlock()
		for _, p := range due {
			_, err := c.purgeEdge(ctx, p.addr, p.body)
			c.mu.Lock()
			if err == nil {
				for i, q := range c.pending {
					if q == p {
						c.pending = append(c.pending[:i], c.pending[i+1:]...)
						break
					}
				}
				c.mu.Unlock()
				c.event("purge", p.edge, "purge applied on %s after %d retries", p.edge, p.tries+1)
				continue
			}
			p.tries++
			p.nextTry = now.Add(min(time.Duration(1<<min(p.tries, 6))*time.Second, time.Minute))
			c.mu.Unlock()
		}
	}
}
