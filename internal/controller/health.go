package controller

import (
	"context"
	"sync"
	"time"

	"github.com/scalepress/scalepress/internal/redisd"
)

// Health checking of the edges and redis, every healthInterval. The nodes
// are the node group's to probe (internal/nodegroup), the database members
// the galera loop's, the router and the files role their own owners'.
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
	var wg sync.WaitGroup
	for i, e := range c.cfg.Edges {
		wg.Go(func() {
			err := c.edgeHealth(e)(ctx)
			c.edges[i].healthy.Store(err == nil)
		})
	}
	wg.Go(func() { c.db.CheckRouter(ctx) })
	wg.Go(func() {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		err := redisd.Ping(pctx, c.redisAddr(), c.redisPassword())
		cancel()
		c.redis.healthy.Store(err == nil)
	})
	wg.Wait()
}
