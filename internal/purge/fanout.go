// Package purge applies a purge on every edge: WordPress (the scalepress
// mu-plugin) and `scalepress purge` send one request to the controller, which
// hands it to a Fanout. The Fanout sends it to every edge at once and reports
// which edges applied it and which did not; an edge that could not be reached
// gets the purge again, with backoff (1s doubling to a minute), until it
// applies it.
package purge

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
)

// Config is what a Fanout needs.
type Config struct {
	Edges []config.Edge
	// Token is the bearer token of the edges' purge endpoint.
	Token  string
	HTTP   *http.Client
	Logger *slog.Logger
	// OnRetried, if set, is called when an edge applied a purge it had
	// failed before, with how many times it was sent again.
	OnRetried func(edge string, tries int)
}

// DefaultConfig is a Config without edges, with the default HTTP client and
// a logger that discards.
func DefaultConfig() Config {
	return Config{HTTP: http.DefaultClient, Logger: slog.New(slog.DiscardHandler)}
}

// Validate says which field is missing.
func (c Config) Validate() error {
	switch {
	case c.HTTP == nil:
		return errors.New("purge: HTTP: no client")
	case c.Logger == nil:
		return errors.New("purge: Logger: no logger")
	}
	return nil
}

type pending struct {
	edge    string
	addr    string
	body    []byte
	tries   int
	nextTry time.Time
}

// Fanout owns purges: the fan-out to every edge and the retries of the ones
// an edge has not applied yet.
type Fanout struct {
	cfg Config

	mu      sync.Mutex
	pending []*pending
}

// New returns a Fanout; its Run retries what an edge did not apply.
func New(cfg Config) (*Fanout, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Fanout{cfg: cfg}, nil
}

// Purge sends body (a purge request, already checked) to every edge at once.
// An edge that did not apply it is in the result's Pending and gets it again
// from Run.
func (f *Fanout) Purge(ctx context.Context, body []byte) api.PurgeResult {
	var res api.PurgeResult
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, e := range f.cfg.Edges {
		wg.Go(func() {
			n, err := f.purgeEdge(ctx, e.Addr, body)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.Pending = append(res.Pending, e.ID)
				f.mu.Lock()
				f.pending = append(f.pending, &pending{edge: e.ID, addr: e.Addr, body: body, nextTry: time.Now().Add(time.Second)})
				f.mu.Unlock()
				f.cfg.Logger.Warn("purge not applied on an edge; will retry", "edge", e.ID, "err", err)
				return
			}
			res.Applied = append(res.Applied, e.ID)
			res.Purged += n
		})
	}
	wg.Wait()
	return res
}

func (f *Fanout) purgeEdge(ctx context.Context, addr string, body []byte) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+api.EdgePathPurge, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+f.cfg.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := f.cfg.HTTP.Do(req)
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
func (f *Fanout) Run(ctx context.Context) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		f.mu.Lock()
		due := []*pending{}
		for _, p := range f.pending {
			if !now.Before(p.nextTry) {
				due = append(due, p)
			}
		}
		f.mu.Unlock()
		for _, p := range due {
			_, err := f.purgeEdge(ctx, p.addr, p.body)
			f.mu.Lock()
			if err == nil {
				for i, q := range f.pending {
					if q == p {
						f.pending = append(f.pending[:i], f.pending[i+1:]...)
						break
					}
				}
				f.mu.Unlock()
				if f.cfg.OnRetried != nil {
					f.cfg.OnRetried(p.edge, p.tries+1)
				}
				continue
			}
			p.tries++
			p.nextTry = now.Add(min(time.Duration(1<<min(p.tries, 6))*time.Second, time.Minute))
			f.mu.Unlock()
		}
	}
}
