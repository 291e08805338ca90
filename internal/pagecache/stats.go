package pagecache

// Stats are the cache's counters since New.
type Stats struct {
	Hits      int64 // responses served from a stored object (X-Cache: HIT)
	Misses    int64 // responses of a fill that reached the origin (X-Cache: MISS)
	Bypasses  int64 // requests Classify bypassed
	Stale     int64 // stored copies served for a failed origin (X-Cache: STALE)
	Refreshes int64 // background refreshes started (stale-while-revalidate, soft purge)
	Stores    int64 // objects stored (including revalidated copies)
	Evictions int64 // objects evicted for room
	Purges    int64 // entries affected by purges
	Bytes     int64 // bytes held now (approximate, <= MaxBytes)
	Objects   int64 // objects held now
}

// Stats returns the counters.
func (c *Cache) Stats() Stats {
	s := Stats{
		Misses:    c.misses.Load(),
		Bypasses:  c.bypasses.Load(),
		Stale:     c.stale.Load(),
		Refreshes: c.refreshes.Load(),
		Stores:    c.stores.Load(),
		Evictions: c.evictions.Load(),
		Purges:    c.purged.Load(),
		Bytes:     c.bytes.Load(),
		Objects:   c.objects.Load(),
	}
	for i := range c.shards {
		s.Hits += c.shards[i].hits.Load()
	}
	return s
}
