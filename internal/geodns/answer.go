package geodns

import (
	"net/netip"

	"github.com/miekg/dns"
)

// edgeInfo is one edge of the flattened edge list (all regions in order).
type edgeInfo struct {
	region     int
	addr       netip.Addr
	healthAddr string
	weight     int32
}

// weighted is an edge with its weight, as shuffled per query.
type weighted struct {
	edge   int32
	weight int32
}

// Address families, indexing answerState.serve.
const (
	famV4 = 0
	famV6 = 1
)

func family(a netip.Addr) int {
	if a.Is4() {
		return famV4
	}
	return famV6
}

// edgeSet is what clients placed in one region get for one address family,
// given the current health.
type edgeSet struct {
	// region is the region whose edges answer, or -1 when several do (no
	// nearby region healthy: all healthy ones, or all when failing open).
	region   int
	fallback bool // not the client's own region
	failOpen bool // nothing healthy: all edges regardless of health
	edges    []weighted
}

// answerState is one immutable snapshot of health and the answers that
// follow from it; New and the health checker publish a new one on change.
type answerState struct {
	edgeUp   []bool
	regionUp []bool
	// serve[family][region] answers clients placed in region.
	serve [2][]*edgeSet
}

// buildState works out who answers the clients of each region, per address
// family: the nearest of the region itself, its fallback list in order and
// the default region that has a healthy edge of the family; else all
// healthy edges of the family together; else — nothing healthy — all edges
// of the family, failing open since an answer that may work beats none. A
// region without edges of a family answers NODATA for it: it does not
// offer that family, whatever the health.
func buildState(regions []Region, fallbacks [][]int, def int, edges []edgeInfo, edgeUp []bool) *answerState {
	st := &answerState{edgeUp: edgeUp, regionUp: make([]bool, len(regions))}
	for i, e := range edges {
		if edgeUp[i] {
			st.regionUp[e.region] = true
		}
	}
	for fam := range 2 {
		has := make([]bool, len(regions))
		own := make([]*edgeSet, len(regions)) // nil: no healthy edge of fam
		anyUp := &edgeSet{region: -1, fallback: true}
		all := &edgeSet{region: -1, fallback: true, failOpen: true}
		for i, e := range edges {
			if family(e.addr) != fam {
				continue
			}
			w := weighted{edge: int32(i), weight: e.weight}
			has[e.region] = true
			all.edges = append(all.edges, w)
			if edgeUp[i] {
				if own[e.region] == nil {
					own[e.region] = &edgeSet{region: e.region}
				}
				own[e.region].edges = append(own[e.region].edges, w)
				anyUp.edges = append(anyUp.edges, w)
			}
		}
		st.serve[fam] = make([]*edgeSet, len(regions))
		for r := range regions {
			var set *edgeSet
			switch {
			case !has[r]:
				set = &edgeSet{region: r}
			case own[r] != nil:
				set = own[r]
			default:
				for i := 0; i <= len(fallbacks[r]); i++ {
					c := def // after the fallback list
					if i < len(fallbacks[r]) {
						c = fallbacks[r][i]
					}
					if own[c] != nil {
						set = &edgeSet{region: c, fallback: true, edges: own[c].edges}
						break
					}
				}
			}
			if set == nil && len(anyUp.edges) > 0 {
				set = anyUp
			}
			if set == nil {
				set = all
			}
			st.serve[fam][r] = set
		}
	}
	return st
}

// pickWeighted appends to dst the records of n edges of set (all when n is
// 0 or larger than the set) in weighted random order: each position takes
// a remaining edge with probability proportional to its weight. scratch is
// reused between queries; intn(k) returns a uniform value in [0, k).
func pickWeighted(dst []dns.RR, rrs []dns.RR, set []weighted, n int, scratch *[]weighted, intn func(int) int) []dns.RR {
	k := len(set)
	if n > 0 && n < k {
		k = n
	}
	if len(set) == 1 {
		return append(dst, rrs[set[0].edge])
	}
	s := append((*scratch)[:0], set...)
	*scratch = s
	total := 0
	for _, w := range s {
		total += int(w.weight)
	}
	for i := 0; i < k; i++ {
		r := intn(total)
		j := i
		for ; j < len(s)-1; j++ {
			if r < int(s[j].weight) {
				break
			}
			r -= int(s[j].weight)
		}
		s[i], s[j] = s[j], s[i]
		total -= int(s[i].weight)
		dst = append(dst, rrs[s[i].edge])
	}
	return dst
}
