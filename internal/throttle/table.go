package throttle

import (
	"container/list"
	"time"
)

// counter is one key's failed attempts in its window, and its block.
type counter struct {
	key          string
	count        int
	start        time.Time // of the window
	blockedUntil time.Time // zero: not blocked
	seen         time.Time // last touched (trusted pairs: the last success)
}

func (c *counter) blocked(now time.Time) bool { return now.Before(c.blockedUntil) }

// evictScan is how many entries from the least recently used end eviction
// looks at for one that is not blocked, so that a spray of new keys
// forgets the blocked ones last.
const evictScan = 8

// table is a fixed-size map of counters with least-recently-used eviction:
// memory stays bounded whatever the number of addresses or user names an
// attacker sprays. Not safe for concurrent use (the Limiter locks).
type table struct {
	max       int
	m         map[string]*list.Element
	lru       list.List // front: most recently used; values are *counter
	evictions int64
}

func newTable(max int) *table {
	return &table{max: max, m: make(map[string]*list.Element, min(max, 4096))}
}

// get returns key's counter, nil when it is not tracked.
func (t *table) get(key string) *counter {
	el, ok := t.m[key]
	if !ok {
		return nil
	}
	t.lru.MoveToFront(el)
	return el.Value.(*counter)
}

// getOrAdd returns key's counter, adding an empty one (and evicting another
// when the table is full).
func (t *table) getOrAdd(key string, now time.Time) *counter {
	if c := t.get(key); c != nil {
		return c
	}
	if t.lru.Len() >= t.max {
		t.evict(now)
	}
	c := &counter{key: key, start: now, seen: now}
	t.m[key] = t.lru.PushFront(c)
	return c
}

// evict drops the least recently used counter that is not blocked among
// the evictScan oldest, else the oldest.
func (t *table) evict(now time.Time) {
	victim := t.lru.Back()
	for el, i := victim, 0; el != nil && i < evictScan; el, i = el.Prev(), i+1 {
		if !el.Value.(*counter).blocked(now) {
			victim = el
			break
		}
	}
	if victim == nil {
		return
	}
	delete(t.m, victim.Value.(*counter).key)
	t.lru.Remove(victim)
	t.evictions++
}

func (t *table) len() int { return t.lru.Len() }

// blockedNow counts the counters blocked at now (a scan: for metrics).
func (t *table) blockedNow(now time.Time) int {
	n := 0
	for el := t.lru.Front(); el != nil; el = el.Next() {
		if el.Value.(*counter).blocked(now) {
			n++
		}
	}
	return n
}
