package pagecache

import (
	"hash/maphash"
	"net/url"
)

// PurgeURL purges every variant (scheme, Vary values, encodings) of one
// URL: host as in a Host header, uri its path and query
// ("/2024/05/hello/?p=1"); the query is normalised like a request's, so
// marketing parameters and their order do not matter. soft marks the
// entries stale (the next request refreshes once, coalesced, while the
// others keep getting the stale copy for up to SoftPurgeGrace); hard
// removes them. It returns the number of entries affected.
func (c *Cache) PurgeURL(host, uri string, soft bool) int {
	c.purges.Add(1)
	u, err := url.ParseRequestURI(uri)
	if err != nil {
		return 0
	}
	var arr [512]byte
	key, reason := c.appendURLKey(arr[:0], host, u.EscapedPath(), u.RawQuery)
	if reason != "" {
		return 0 // never cached
	}
	sh := c.shardOf(maphash.Bytes(c.seed, key))
	now := c.nowNano()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	ue := sh.urls[string(key)]
	if ue == nil {
		return 0
	}
	n := len(ue.variants)
	if soft {
		for _, o := range ue.variants {
			o.purgedAt.CompareAndSwap(0, now)
		}
	} else {
		for len(ue.variants) > 0 {
			c.removeLocked(sh, ue.variants[len(ue.variants)-1], false)
		}
	}
	c.purged.Add(int64(n))
	return n
}

// PurgeTag purges the entries whose tag header named tag, soft or hard as
// PurgeURL; its cost is proportional to those entries, not to the cache.
func (c *Cache) PurgeTag(tag string, soft bool) int {
	c.purges.Add(1)
	objs := c.tags.objects(tag)
	n := 0
	if soft {
		now := c.nowNano()
		for _, o := range objs {
			o.purgedAt.CompareAndSwap(0, now)
		}
		n = len(objs)
	} else {
		for _, o := range objs {
			if c.remove(o) {
				n++
			}
		}
	}
	c.purged.Add(int64(n))
	return n
}

// PurgeAll purges every entry. A soft purge is O(1): it marks everything
// stored so far as soft-purged now. A hard purge empties the store.
func (c *Cache) PurgeAll(soft bool) int {
	c.purges.Add(1)
	if soft {
		n := c.objects.Load()
		c.softAll.Store(&softAllMark{seq: c.seq.Load(), at: c.nowNano()})
		c.purged.Add(n)
		return int(n)
	}
	for i := range c.shards {
		c.shards[i].mu.Lock()
	}
	n := int64(0)
	for i := range c.shards {
		sh := &c.shards[i]
		for _, ue := range sh.urls {
			for _, o := range ue.variants {
				o.ue, o.prev, o.next, o.queue = nil, nil, nil, queueNone
				n++
			}
			ue.dead = true
		}
		sh.urls = make(map[string]*urlEntry)
		sh.small, sh.main = fifo{}, fifo{}
		c.bytes.Add(-sh.bytes)
		sh.bytes, sh.smallBytes = 0, 0
	}
	c.objects.Add(-n)
	c.tags.clear()
	for i := range c.shards {
		c.shards[i].mu.Unlock()
	}
	c.purged.Add(n)
	return int(n)
}

// Purge applies a parsed purge request and returns the number of entries
// affected (an entry named by several URLs or tags counts for each).
func (c *Cache) Purge(p PurgeRequest) int {
	if p.All {
		return c.PurgeAll(p.Soft)
	}
	n := 0
	for _, raw := range p.URLs {
		u, err := url.Parse(raw)
		if err != nil {
			continue // ParsePurgeRequest rejects these
		}
		n += c.PurgeURL(u.Host, u.RequestURI(), p.Soft)
	}
	for _, t := range p.Tags {
		n += c.PurgeTag(t, p.Soft)
	}
	return n
}
