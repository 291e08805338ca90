package controller

// The in-service set the edges balance over: the node group publishes it,
// the edges poll it (GET /v1/upstreams) and acknowledge each generation they
// applied (POST /v1/upstreams/ack), and a drain waits for every edge's
// acknowledgement.

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/nodegroup"
)

type upstreams struct {
	mu      sync.Mutex
	gen     uint64
	nodes   []api.Upstream
	applied map[string]uint64 // by edge id: the generation it applied last
	changed chan struct{}     // closed and replaced on every report
}

func newUpstreams() *upstreams {
	return &upstreams{applied: map[string]uint64{}, changed: make(chan struct{})}
}

// Publish is the node group's hook: a new generation when the set changed.
func (u *upstreams) Publish(set []nodegroup.Node) uint64 {
	ups := make([]api.Upstream, 0, len(set))
	for _, n := range set {
		ups = append(ups, api.Upstream{ID: n.ID, Addr: n.Addr})
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if !slices.Equal(ups, u.nodes) || u.gen == 0 {
		u.nodes = ups
		u.gen++
	}
	return u.gen
}

// Get is what the edges poll.
func (u *upstreams) Get() api.Upstreams {
	u.mu.Lock()
	defer u.mu.Unlock()
	return api.Upstreams{Generation: u.gen, Nodes: append([]api.Upstream{}, u.nodes...)}
}

// Generation is the latest published generation.
func (u *upstreams) Generation() uint64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.gen
}

// Applied is the generation edge acknowledged last.
func (u *upstreams) Applied(edge string) uint64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.applied[edge]
}

// Ack records that edge applied generation gen (POST /v1/upstreams/ack,
// the caller checked to be a configured edge); a generation never
// published is refused, naming the latest.
func (u *upstreams) Ack(edge string, gen uint64) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if gen > u.gen {
		return fmt.Errorf("generation %d was never published (latest %d)", gen, u.gen)
	}
	u.applied[edge] = max(u.applied[edge], gen)
	close(u.changed)
	u.changed = make(chan struct{})
	return nil
}

// WaitApplied returns once every edge in edges acknowledged gen, or ctx
// ends.
func (u *upstreams) WaitApplied(ctx context.Context, edges []string, gen uint64) {
	for {
		u.mu.Lock()
		ok := true
		for _, e := range edges {
			if u.applied[e] < gen {
				ok = false
			}
		}
		ch := u.changed
		u.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
	}
}
