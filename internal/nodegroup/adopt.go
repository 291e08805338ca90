package nodegroup

// Adoption: nodes a scheduler kept running while no controller ran join
// the group without being launched again (ADR 27).

import (
	"context"
	"fmt"

	"github.com/scalepress/scalepress/internal/api"
)

// adopt records a running node at its index, pending, and brings it into
// service in a goroutine the group owns: health-checked, its docroot
// caught up with the files store, then in service. It is not launched
// (its processes run) nor warmed (it served before). A node that does not
// answer is replaced at its index, as the policy replaces a failed one.
// The channel gets nil once it (or its replacement) is in service.
func (g *Group) adopt(ctx context.Context, a Adopted) <-chan error {
	g.mu.Lock()
	n := g.addLocked(a.Index)
	n.Node = a.Node
	key := n.key
	msg := fmt.Sprintf("%s: adopting the running node at %s", a.Node.ID, a.Node.Addr)
	if a.Node.Addr == "" {
		msg = fmt.Sprintf("%s: adopting its slot, where nothing runs", a.Node.ID)
	}
	g.outbox = append(g.outbox, api.Event{Kind: "node", Node: a.Node.ID, Message: msg})
	g.unlock()
	done := make(chan error, 1)
	g.wg.Go(func() {
		err := g.adoptUp(ctx, a.Node, key)
		if err == nil || ctx.Err() != nil {
			done <- err
			return
		}
		done <- g.replaceAdopted(ctx, key, a.Index, err)
	})
	return done
}

// adoptUp is bringUp without the launch and the warm-up.
func (g *Group) adoptUp(ctx context.Context, nd Node, key string) error {
	if nd.Addr == "" {
		return g.launchFailed(key, nd, fmt.Errorf("%s: nothing runs in its slot", nd.ID))
	}
	if err := g.waitReady(ctx, nd, key); err != nil {
		return g.launchFailed(key, nd, err)
	}
	if !g.moveIf(key, api.NodePending, api.NodeWarming) {
		return g.gone(nd)
	}
	if err := g.waitFiles(ctx, nd, key); err != nil {
		return g.launchFailed(key, nd, err)
	}
	if !g.moveIf(key, api.NodeWarming, api.NodeInService) {
		return g.gone(nd)
	}
	return nil
}

// replaceAdopted launches a node at index in place of the adopted node key
// that failed (launchFailed stopped its processes) and waits for it.
func (g *Group) replaceAdopted(ctx context.Context, key string, index int, why error) error {
	g.mu.Lock()
	n := g.findLocked(key)
	if n == nil || n.state != api.NodeFailed {
		g.unlock()
		return why
	}
	g.setStateLocked(n, api.NodeTerminated, "")
	g.outbox = append(g.outbox, api.Event{Kind: "heal", Node: n.ID,
		Message: fmt.Sprintf("%s: the adopted node is not serving: launching a replacement at its index (%v)", n.ID, why)})
	done := g.launchLocked(ctx, index, "replacing an adopted node")
	g.unlock()
	return <-done
}
