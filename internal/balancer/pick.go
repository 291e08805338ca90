package balancer

import (
	"math/rand/v2"
	"runtime"
	"slices"
)

// minWeight is a node's share at the start of slow start.
const minWeight = 0.1

// Pick chooses a node for one request and counts it in flight; the caller
// must call Done on it exactly once. Nodes whose ID is in exclude (the ones a
// retried request already tried) are not considered.
//
// Among the nodes in service — or all non-draining nodes when none is in
// service (fail open) — minus the excluded ones, Pick takes the less loaded
// of two drawn at random. It returns ErrNoUpstream when there is no
// candidate. It takes no lock and does not allocate.
func (b *Balancer) Pick(exclude ...string) (*Node, error) {
	for {
		v := b.view.Load()
		var now int64
		if v.expires != never {
			now = b.clock()
			if now >= v.expires {
				v = b.refresh(v, now)
			}
		}
		n := v.choose(int64(b.cfg.SlowStart), now, exclude)
		if n == nil {
			return nil, ErrNoUpstream
		}
		n.inflight.Add(1)
		// Drain stores draining, then loads inflight; here it is the other
		// way round. So either Drain sees this request and waits for it, or
		// this sees the drain and tries again with the newer view.
		if n.draining.Load() {
			n.release()
			runtime.Gosched() // let the drain publish its view
			continue
		}
		n.picks.Add(1)
		return n, nil
	}
}

func (v *view) choose(slowStart, now int64, exclude []string) *Node {
	cands := v.ready
	if len(cands) == 0 {
		cands = v.all
	}
	if len(exclude) > 0 {
		var buf [16]*Node
		kept := buf[:0]
		for _, n := range cands {
			if !slices.Contains(exclude, n.id) {
				kept = append(kept, n)
			}
		}
		cands = kept
	}
	switch len(cands) {
	case 0:
		return nil
	case 1:
		return cands[0]
	}
	// math/rand/v2's top-level functions read the runtime's per-thread
	// ChaCha8 state: no lock, no shared cache line, a few ns.
	r := rand.Uint64()
	i, j := twoOf(r, len(cands))
	a, c := cands[i], cands[j]
	if v.warming {
		// A node with weight w takes part with probability w: at equal
		// load it gets w of a fair share, at most 2w when it is the less
		// loaded one. When both sit out, they are compared as usual.
		r2 := rand.Uint64()
		inA := a.weight(slowStart, now) > unit(r2)
		inC := c.weight(slowStart, now) > unit(r2>>32)
		if inA != inC {
			if inA {
				return a
			}
			return c
		}
	}
	la := a.inflight.Load() + a.queue.Load()
	lc := c.inflight.Load() + c.queue.Load()
	switch {
	case la < lc:
		return a
	case lc < la:
		return c
	case r>>63 != 0: // twoOf uses the low 48 bits only
		return a
	default:
		return c
	}
}

// twoOf draws two distinct indices below n ≥ 2 from the low 48 bits of r,
// 24 bits each: the bias, n/2²⁴, is negligible for any real group.
func twoOf(r uint64, n int) (i, j int) {
	const mask = 1<<24 - 1
	i = int((r & mask) * uint64(n) >> 24)
	j = int((r >> 24 & mask) * uint64(n-1) >> 24)
	if j >= i {
		j++
	}
	return i, j
}

// unit maps the low 32 bits of r to [0, 1).
func unit(r uint64) float64 { return float64(uint32(r)) / (1 << 32) }
