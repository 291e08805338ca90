package geodns

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/scalepress/scalepress/internal/api"
)

// Prober checks one edge; a nil error means healthy. Probe must return
// when ctx is done.
type Prober interface {
	Probe(ctx context.Context, addr string) error
}

var _ Prober = (*HTTPProber)(nil)

// HTTPProber GETs http://<addr><path> and wants a 2xx status.
type HTTPProber struct {
	client *http.Client
	path   string
}

// NewHTTPProber returns a prober of path (the edge's api.EdgePathHealth by
// default). It ignores proxy settings of the environment: edges are probed
// directly.
func NewHTTPProber(path string) *HTTPProber {
	if path == "" {
		path = api.EdgePathHealth
	}
	transport := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 1,
		IdleConnTimeout:     30 * time.Second,
	}
	return &HTTPProber{
		client: &http.Client{
			Transport: transport,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		path: path,
	}
}

// Probe implements Prober.
func (p *HTTPProber) Probe(ctx context.Context, addr string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+p.path, nil)
	if err != nil {
		return fmt.Errorf("geodns: probe %s: %w", addr, err)
	}
	req.Header.Set("User-Agent", "scalepress-geodns")
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("geodns: probe %s: %w", addr, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("geodns: probe %s: status %d", addr, resp.StatusCode)
	}
	return nil
}

// observe folds one probe result into an edge's state: a healthy edge
// turns unhealthy after fall failures in a row, an unhealthy one healthy
// after rise successes in a row. streak counts results in a row that
// disagree with the state.
func observe(up bool, streak int, ok bool, rise, fall int) (bool, int) {
	if ok == up {
		return up, 0
	}
	streak++
	switch {
	case up && streak >= fall:
		return false, 0
	case !up && streak >= rise:
		return true, 0
	}
	return up, streak
}

// checker probes every edge that has a health address each interval and
// publishes the health of all edges when some edge changes. Edges start
// healthy, so a fresh server answers at once.
type checker struct {
	prober   Prober
	clock    Clock
	interval time.Duration
	timeout  time.Duration
	rise     int
	fall     int
	edges    []edgeInfo
	names    []string // region name per edge, for logs
	logger   *slog.Logger
	publish  func(up []bool)
	// roundDone, if set (tests), is called after each round.
	roundDone func()

	// Owned by the run goroutine.
	up      []bool
	streak  []int
	results []error
}

func newChecker(cfg HealthConfig, edges []edgeInfo, names []string, prober Prober, clock Clock, logger *slog.Logger, publish func([]bool)) *checker {
	up := make([]bool, len(edges))
	for i := range up {
		up[i] = true
	}
	return &checker{
		prober: prober, clock: clock,
		interval: cfg.Interval, timeout: cfg.Timeout, rise: cfg.Rise, fall: cfg.Fall,
		edges: edges, names: names, logger: logger, publish: publish,
		up: up, streak: make([]int, len(edges)), results: make([]error, len(edges)),
	}
}

// run probes at once and then every interval until ctx is done.
func (c *checker) run(ctx context.Context) {
	probed := false
	for _, e := range c.edges {
		probed = probed || e.healthAddr != ""
	}
	if !probed {
		return
	}
	t := c.clock.NewTicker(c.interval)
	defer t.Stop()
	c.round(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
			c.round(ctx)
		}
	}
}

// round probes all edges in parallel and applies the results.
func (c *checker) round(ctx context.Context) {
	var wg sync.WaitGroup
	for i, e := range c.edges {
		if e.healthAddr == "" {
			continue
		}
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(ctx, c.timeout)
			defer cancel()
			c.results[i] = c.prober.Probe(pctx, e.healthAddr)
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return // shutting down: the failures say nothing about the edges
	}
	changed := false
	for i, e := range c.edges {
		if e.healthAddr == "" {
			continue
		}
		was := c.up[i]
		c.up[i], c.streak[i] = observe(was, c.streak[i], c.results[i] == nil, c.rise, c.fall)
		if c.up[i] != was {
			changed = true
			if c.up[i] {
				c.logger.Info("edge healthy", "region", c.names[i], "edge", e.addr, "health_addr", e.healthAddr)
			} else {
				c.logger.Warn("edge unhealthy", "region", c.names[i], "edge", e.addr, "health_addr", e.healthAddr, "err", c.results[i])
			}
		}
	}
	if changed {
		c.publish(slices.Clone(c.up))
	}
	if c.roundDone != nil {
		c.roundDone()
	}
}
