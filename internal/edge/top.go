package edge

import (
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
)

// topPaths keeps an approximate count of the paths proxied to PHP nodes, so
// that the controller can warm a new node's opcache with what visitors ask
// for. It samples one request in topSample and keeps at most topMax paths,
// halving every count when full (old favourites fade).
type topPaths struct {
	mu     sync.Mutex
	counts map[string]int
}

const (
	topSample = 4
	topMax    = 512
)

func (t *topPaths) observe(method, path string) {
	if method != "GET" || rand.IntN(topSample) != 0 || len(path) > 256 || strings.HasPrefix(path, "/wp-admin") {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.counts == nil {
		t.counts = make(map[string]int)
	}
	if _, ok := t.counts[path]; !ok && len(t.counts) >= topMax {
		for k, v := range t.counts {
			if v/2 == 0 {
				delete(t.counts, k)
			} else {
				t.counts[k] = v / 2
			}
		}
		if len(t.counts) >= topMax {
			return
		}
	}
	t.counts[path]++
}

// top returns the n most requested paths, most first.
func (t *topPaths) top(n int) []string {
	t.mu.Lock()
	type kv struct {
		k string
		v int
	}
	all := make([]kv, 0, len(t.counts))
	for k, v := range t.counts {
		all = append(all, kv{k, v})
	}
	t.mu.Unlock()
	sort.Slice(all, func(i, j int) bool { return all[i].v > all[j].v || all[i].v == all[j].v && all[i].k < all[j].k })
	out := make([]string, 0, n)
	for i := 0; i < len(all) && i < n; i++ {
		out = append(out, all[i].k)
	}
	return out
}
