package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/redisd"
	"github.com/scalepress/scalepress/internal/supervise"
)

// Health checking: every healthInterval each component is probed. Nodes
// report utilisation and whether PHP answers; the group loop replaces a node
// that keeps failing (nodeFailAfter), the edges' own checks take a sick node
// out of rotation sooner.
const healthInterval = time.Second

func (c *Controller) healthLoop(ctx context.Context) {
	t := time.NewTicker(healthInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.checkAll(ctx)
	}
}

func (c *Controller) checkAll(ctx context.Context) {
	c.mu.Lock()
	nodes := append([]*nodeState(nil), c.nodes...)
	edges := append([]*edgeState(nil), c.edges...)
	redis := c.redis
	c.mu.Unlock()

	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Go(func() { c.checkNode(ctx, n) })
	}
	for _, e := range edges {
		wg.Go(func() {
			err := c.httpCheck("http://"+e.cfg.Addr+"/_scalepress/edge/health", "", 200)(ctx)
			c.mu.Lock()
			e.healthy = err == nil && e.proc.State() == supervise.Running
			c.mu.Unlock()
		})
	}
	wg.Go(func() { c.checkDB(ctx) })
	if redis != nil {
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			err := redisd.Ping(pctx, c.cfg.Redis.Addr)
			cancel()
			c.mu.Lock()
			redis.healthy = err == nil
			c.mu.Unlock()
		})
	}
	wg.Wait()
}

func (c *Controller) checkNode(ctx context.Context, n *nodeState) {
	if n.state == api.NodeTerminated || n.state == api.NodeFailed {
		return
	}
	st, err := c.nodeStatus(ctx, n.addr)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil || !st.PHPOK {
		n.fails++
		return
	}
	n.fails = 0
	n.util, n.queue = st.Utilization, st.Waiting
	n.filesSeq = st.FilesSeq
}

// agentStatus is the part of a node's /_scalepress/status the controller uses.
type agentStatus struct {
	InFlight    int64   `json:"in_flight"`
	Utilization float64 `json:"utilization"`
	Waiting     int     `json:"waiting"`
	PHPOK       bool    `json:"php_ok"`
	FilesSeq    uint64  `json:"files_seq"`
}

func (c *Controller) nodeStatus(ctx context.Context, addr string) (agentStatus, error) {
	var st agentStatus
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/_scalepress/status", nil)
	if err != nil {
		return st, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("status %d", resp.StatusCode)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// cronLoop runs wp-cron.php on exactly one in-service node every interval,
// never two runs at once.
func (c *Controller) cronLoop(ctx context.Context) {
	t := time.NewTicker(c.cfg.WordPress.CronInterval)
	defer t.Stop()
	site, _ := url.Parse(c.cfg.SiteURL())
	cronClient := &http.Client{Timeout: 5 * time.Minute}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		node := c.cronNode()
		if node == "" {
			c.logger.Warn("wp-cron skipped: no node in service")
			continue
		}
		// Without doing_wp_cron, wp-cron.php takes its own lock, as for an
		// external job; with it, WordPress expects a lock spawn_cron set.
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/wp-cron.php", node), nil)
		if err != nil {
			continue
		}
		req.Host = site.Host
		t0 := time.Now()
		resp, err := cronClient.Do(req)
		if err != nil {
			c.logger.Warn("wp-cron failed", "node", node, "err", err)
			continue
		}
		resp.Body.Close()
		c.logger.Debug("wp-cron ran", "node", node, "status", resp.StatusCode, "took", time.Since(t0))
	}
}

// cronNode is the first in-service node by id.
func (c *Controller) cronNode() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.nodes {
		if n.state == api.NodeInService {
			return n.addr
		}
	}
	return ""
}
