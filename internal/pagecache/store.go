package pagecache

import (
	"context"
	"hash/maphash"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// numShards splits the store so that requests for different URLs rarely
// meet on a lock. A hit takes its shard's read lock only.
const numShards = 32

// Eviction is S3-FIFO (Yang et al., SOSP '23), per shard, over bytes:
//   - a new object enters the small FIFO (about 10% of the shard's bytes);
//     leaving it, an object that was hit moves to the main FIFO, one that
//     was not is evicted and remembered in the ghost queue (hashes only);
//   - an object whose key is in the ghost queue enters main directly;
//   - leaving main, an object that was hit is reinserted with one hit less.
//
// Why not LRU: an LRU hit moves the object in a list, which needs the
// shard's write lock on every hit; here a hit is a read lock and an atomic
// increment that stops at 3, so hits on one shard run in parallel. And
// S3-FIFO keeps one-hit wonders (crawlers walking every archive page, random
// query strings) out of main, which LRU lets flush the hot pages.
// Objects past their keep time are evicted first, whatever their hits.
//
// The byte budget is global: a store reserves its bytes with a CAS on the
// total and evicts from its own shard (then the others) until it fits, so
// the total never exceeds MaxBytes, and one large object does not need a
// shard-sized budget of its own.
const (
	queueNone uint8 = iota
	queueSmall
	queueMain
)

type shard struct {
	mu         sync.RWMutex
	urls       map[string]*urlEntry
	flights    map[string]*flight
	hitForPass map[string]int64 // flight key -> until (unix ns)
	small      fifo
	main       fifo
	ghost      ghostQueue
	bytes      int64
	smallBytes int64

	hits atomic.Int64 // per shard: the hottest counter stays off one cache line
	_    [64]byte
}

// urlEntry holds the variants of one URL key, stored under one vary spec.
type urlEntry struct {
	key      string
	spec     *varySpec
	variants []*object
	dead     bool // removed from the shard's map
}

func (ue *urlEntry) find(variant []byte) *object {
	for _, o := range ue.variants {
		if o.variant == string(variant) {
			return o
		}
	}
	return nil
}

// fifo is an intrusive doubly linked queue: push at head, evict at tail.
type fifo struct{ head, tail *object }

func (q *fifo) push(o *object) {
	o.prev, o.next = nil, q.head
	if q.head != nil {
		q.head.prev = o
	}
	q.head = o
	if q.tail == nil {
		q.tail = o
	}
}

func (q *fifo) unlink(o *object) {
	if o.prev != nil {
		o.prev.next = o.next
	} else {
		q.head = o.next
	}
	if o.next != nil {
		o.next.prev = o.prev
	} else {
		q.tail = o.prev
	}
	o.prev, o.next = nil, nil
}

// ghostQueue remembers the hashes of objects recently evicted from small.
type ghostQueue struct {
	ring []uint64
	pos  int
	set  map[uint64]struct{}
}

func (g *ghostQueue) add(h uint64) {
	if len(g.ring) == 0 {
		return
	}
	if old := g.ring[g.pos]; old != 0 {
		delete(g.set, old)
	}
	g.ring[g.pos] = h
	g.set[h] = struct{}{}
	g.pos = (g.pos + 1) % len(g.ring)
}

func (g *ghostQueue) has(h uint64) bool {
	_, ok := g.set[h]
	return ok
}

// Cache is the edge's page and static-asset cache. See the package
// documentation for the request flow.
type Cache struct {
	cfg          Config
	now          func() time.Time
	seed         maphash.Seed
	tagHeader    string // canonical
	ignoreExact  []string
	ignorePrefix []string
	shards       [numShards]shard
	tags         *tagIndex

	bytes   atomic.Int64
	objects atomic.Int64
	seq     atomic.Uint64 // store order
	purges  atomic.Uint64 // bumped by every purge: fills racing one store soft-purged
	softAll atomic.Pointer[softAllMark]

	misses, bypasses, stale, refreshes, stores, evictions, purged atomic.Int64

	// life ends background refreshes on Close; bg waits for them.
	life   context.Context
	cancel context.CancelFunc
	bgMu   sync.Mutex
	closed bool // guarded by bgMu: no bg.Add once Close waits
	bg     sync.WaitGroup
}

// softAllMark: objects stored up to seq were soft-purged at at.
type softAllMark struct {
	seq uint64
	at  int64
}

// New returns an empty cache.
func New(cfg Config) (*Cache, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Cache{cfg: cfg, now: cfg.Now, seed: maphash.MakeSeed(), tags: newTagIndex()}
	if c.now == nil {
		c.now = time.Now
	}
	if cfg.TagHeader != "" {
		c.tagHeader = http.CanonicalHeaderKey(cfg.TagHeader)
	}
	for _, p := range cfg.IgnoreParams {
		if pre, ok := strings.CutSuffix(p, "*"); ok {
			c.ignorePrefix = append(c.ignorePrefix, pre)
		} else {
			c.ignoreExact = append(c.ignoreExact, p)
		}
	}
	// Ghost capacity: about the number of objects a shard holds, assuming
	// 16 KiB objects.
	ghost := int(min(max(cfg.MaxBytes/numShards/(16<<10), 64), 4096))
	for i := range c.shards {
		s := &c.shards[i]
		s.urls = make(map[string]*urlEntry)
		s.flights = make(map[string]*flight)
		s.hitForPass = make(map[string]int64)
		s.ghost = ghostQueue{ring: make([]uint64, ghost), set: make(map[uint64]struct{}, ghost)}
	}
	c.life, c.cancel = context.WithCancel(context.Background())
	return c, nil
}

// Close stops background refreshes and waits for them to end. The cache
// still serves hits afterwards, but no longer refreshes in the background.
func (c *Cache) Close() {
	c.bgMu.Lock()
	c.closed = true
	c.bgMu.Unlock()
	c.cancel()
	c.bg.Wait()
}

// startBackground registers a background goroutine, unless closed.
func (c *Cache) startBackground() bool {
	c.bgMu.Lock()
	defer c.bgMu.Unlock()
	if c.closed {
		return false
	}
	c.bg.Add(1)
	return true
}

func (c *Cache) shardOf(hash uint64) *shard { return &c.shards[hash%numShards] }

func (c *Cache) nowNano() int64 { return c.now().UnixNano() }

// insert stores o, replacing the object of the same variant, and all
// variants of its URL if their vary spec differs. It reports false when o
// cannot fit in MaxBytes at all.
func (c *Cache) insert(o *object) bool {
	if o.size > c.cfg.MaxBytes/2 {
		return false
	}
	sh := c.shardOf(maphash.String(c.seed, o.urlKey))
	if !c.reserve(sh, o.size) {
		return false
	}
	o.seq = c.seq.Add(1)
	sh.mu.Lock()
	ue := sh.urls[o.urlKey]
	if ue == nil {
		ue = &urlEntry{key: o.urlKey, spec: o.spec}
		sh.urls[o.urlKey] = ue
	} else {
		o.urlKey = ue.key // share the key string
		if !ue.spec.equal(o.spec) {
			for len(ue.variants) > 0 {
				c.removeLocked(sh, ue.variants[len(ue.variants)-1], true)
			}
			ue.spec = o.spec
		} else if old := ue.findString(o.variant); old != nil {
			c.removeLocked(sh, old, true)
		}
		o.spec = ue.spec
	}
	ue.variants = append(ue.variants, o)
	o.ue = ue
	if sh.ghost.has(o.hash) {
		o.queue = queueMain
		sh.main.push(o)
	} else {
		o.queue = queueSmall
		sh.small.push(o)
		sh.smallBytes += o.size
	}
	sh.bytes += o.size
	c.tags.add(o)
	sh.mu.Unlock()
	c.objects.Add(1)
	c.stores.Add(1)
	return true
}

func (ue *urlEntry) findString(variant string) *object {
	for _, o := range ue.variants {
		if o.variant == variant {
			return o
		}
	}
	return nil
}

// reserve adds n to the byte total, evicting until it fits.
func (c *Cache) reserve(sh *shard, n int64) bool {
	for {
		cur := c.bytes.Load()
		if cur+n <= c.cfg.MaxBytes {
			if c.bytes.CompareAndSwap(cur, cur+n) {
				return true
			}
			continue
		}
		if !c.evictOne(sh) && !c.evictElsewhere(sh) {
			return false
		}
	}
}

func (c *Cache) evictElsewhere(skip *shard) bool {
	for i := range c.shards {
		if sh := &c.shards[i]; sh != skip && c.evictOne(sh) {
			return true
		}
	}
	return false
}

// evictOne evicts one object of sh, per S3-FIFO.
func (c *Cache) evictOne(sh *shard) bool {
	now := c.nowNano()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for {
		if o := sh.small.tail; o != nil && (sh.smallBytes*10 >= sh.bytes || sh.main.tail == nil) {
			sh.small.unlink(o)
			sh.smallBytes -= o.size
			if o.freq.Load() > 0 && now < o.keepUntil {
				o.freq.Store(0)
				o.queue = queueMain
				sh.main.push(o)
				continue
			}
			sh.ghost.add(o.hash)
			o.queue = queueNone
			c.removeLocked(sh, o, false)
			c.evictions.Add(1)
			return true
		}
		if o := sh.main.tail; o != nil {
			sh.main.unlink(o)
			if f := o.freq.Load(); f > 0 && now < o.keepUntil {
				o.freq.Store(min(f, 3) - 1)
				sh.main.push(o)
				continue
			}
			o.queue = queueNone
			c.removeLocked(sh, o, false)
			c.evictions.Add(1)
			return true
		}
		return false
	}
}

// removeLocked drops o from the shard (whose lock is held), its queue and
// the tag index. keepEntry keeps an emptied urlEntry in the map (a store
// is about to add to it).
func (c *Cache) removeLocked(sh *shard, o *object, keepEntry bool) {
	ue := o.ue
	if ue == nil {
		return // already removed
	}
	switch o.queue {
	case queueSmall:
		sh.small.unlink(o)
		sh.smallBytes -= o.size
	case queueMain:
		sh.main.unlink(o)
	}
	o.queue = queueNone
	for i, v := range ue.variants {
		if v == o {
			last := len(ue.variants) - 1
			ue.variants[i] = ue.variants[last]
			ue.variants[last] = nil
			ue.variants = ue.variants[:last]
			break
		}
	}
	if len(ue.variants) == 0 && !keepEntry {
		delete(sh.urls, ue.key)
		ue.dead = true
	}
	o.ue = nil
	sh.bytes -= o.size
	c.bytes.Add(-o.size)
	c.objects.Add(-1)
	c.tags.remove(o)
}

// remove drops o if it is still stored.
func (c *Cache) remove(o *object) bool {
	sh := c.shardOf(maphash.String(c.seed, o.urlKey))
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if o.ue == nil {
		return false
	}
	c.removeLocked(sh, o, false)
	return true
}

// lookup finds the variant of d's URL that the request selects, and counts
// a touch for eviction.
func (c *Cache) lookup(h http.Header, d *Decision) (*object, *varySpec) {
	sh := c.shardOf(d.hash)
	sh.mu.RLock()
	o, spec := sh.find(h, d)
	sh.mu.RUnlock()
	return o, spec
}

// find is lookup with sh's lock held.
func (sh *shard) find(h http.Header, d *Decision) (*object, *varySpec) {
	ue := d.ue
	if ue == nil || ue.dead {
		ue = sh.urls[d.key]
	}
	if ue == nil {
		return nil, nil
	}
	var arr [256]byte
	o := ue.find(appendVariant(arr[:0], h, d.tls, ue.spec))
	if o != nil {
		o.touch()
	}
	return o, ue.spec
}
