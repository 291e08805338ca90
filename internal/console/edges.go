package console

import (
	"context"
	"sync"

	"github.com/scalepress/scalepress/internal/api"
)

// edgeDoc is the part of an edge's status (EdgePathStatus) the console
// reads: its page cache counters (pagecache.Stats, encoded without tags).
type edgeDoc struct {
	Cache *struct {
		Hits, Misses, Bypasses, Stale, Purges, Objects, Bytes int64
	} `json:"cache"`
}

// edges reads every started edge's cache counters, at once.
func (c *Console) edges(ctx context.Context, st api.Status) []api.EdgeCache {
	out := make([]api.EdgeCache, len(st.Edges))
	var wg sync.WaitGroup
	for i, e := range st.Edges {
		out[i] = api.EdgeCache{ID: e.ID, Region: e.Region, Healthy: e.Healthy}
		wg.Go(func() {
			cl := api.Client{Base: "http://" + e.Addr, HTTP: c.cfg.HTTP}
			var d edgeDoc
			if err := cl.Get(ctx, api.EdgePathStatus, &d); err != nil {
				out[i].Error = err.Error()
				return
			}
			if s := d.Cache; s != nil {
				ec := &out[i]
				ec.Hits, ec.Misses, ec.Bypasses, ec.Stale, ec.Purged, ec.Objects, ec.Bytes = s.Hits, s.Misses, s.Bypasses, s.Stale, s.Purges, s.Objects, s.Bytes
				if n := s.Hits + s.Misses + s.Stale; n > 0 {
					ec.HitRatio = float64(s.Hits) / float64(n)
				}
			}
		})
	}
	wg.Wait()
	return out
}
