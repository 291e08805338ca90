package controller

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

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
