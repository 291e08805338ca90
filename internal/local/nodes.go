package local

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/scalepress/scalepress/internal/logtail"
	"github.com/scalepress/scalepress/internal/nodegroup"
	"github.com/scalepress/scalepress/internal/supervise"
)

// Nodes runs the node group's nodes as child processes. A node is a few
// processes started in order (php-fpm, the filesync agent, the node agent)
// and stopped in the reverse order, so that the agent drains before PHP
// stops. A node whose process gives up (or one that may not restart, the
// agent) is not alive and is replaced by a new node, never restarted whole
// in place.
type Nodes struct {
	l *Launcher
	// roles prepares the node (its docroot, its state directories) and
	// returns the processes to start, in order.
	roles func(ctx context.Context, n nodegroup.Node) ([]Role, error)

	mu    sync.Mutex
	procs map[string][]*supervise.Process // by node id, in start order, until Stop
}

var _ nodegroup.Launcher = (*Nodes)(nil)

// Nodes returns the node launcher; roles prepares a node and returns its
// processes in start order.
func (l *Launcher) Nodes(roles func(ctx context.Context, n nodegroup.Node) ([]Role, error)) *Nodes {
	return &Nodes{l: l, roles: roles, procs: map[string][]*supervise.Process{}}
}

// Launch implements nodegroup.Launcher. If a process fails to start, the
// ones started before it are stopped.
func (ns *Nodes) Launch(ctx context.Context, n nodegroup.Node) (nodegroup.Node, error) {
	roles, err := ns.roles(ctx, n)
	if err != nil {
		return n, err
	}
	var started []*supervise.Process
	for _, r := range roles {
		p, err := ns.l.Start(ctx, r)
		if err != nil {
			stopAll(context.WithoutCancel(ctx), started)
			return n, err
		}
		started = append(started, p)
	}
	ns.mu.Lock()
	ns.procs[n.ID] = started
	ns.mu.Unlock()
	return n, nil
}

// Stop implements nodegroup.Launcher: SIGTERM to the agent first (it drains
// what is left), then the rest, in the reverse order of their start.
func (ns *Nodes) Stop(ctx context.Context, id string) error {
	ns.mu.Lock()
	procs := ns.procs[id]
	delete(ns.procs, id)
	ns.mu.Unlock()
	if err := stopAll(ctx, procs); err != nil {
		return fmt.Errorf("stop %s: %w", id, err)
	}
	return nil
}

func stopAll(ctx context.Context, procs []*supervise.Process) error {
	var first error
	for _, p := range slices.Backward(procs) {
		if err := p.Stop(ctx); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// List implements nodegroup.Launcher: each of a node's processes, the last
// started (the agent) first, each followed by its descendants (php-fpm's
// workers) from /proc.
func (ns *Nodes) List() []nodegroup.Instance {
	ns.mu.Lock()
	procs := make(map[string][]*supervise.Process, len(ns.procs))
	for id, ps := range ns.procs {
		procs[id] = ps
	}
	ns.mu.Unlock()
	var tree map[int][]int
	out := make([]nodegroup.Instance, 0, len(procs))
	for id, ps := range procs {
		in := nodegroup.Instance{Node: nodegroup.Node{ID: id}}
		for _, p := range slices.Backward(ps) { // the agent first, as status has always listed it
			ok, pid := alive(p), p.Pid()
			in.Procs = append(in.Procs, nodegroup.Process{Name: p.Name(), PID: pid, Alive: ok, Restarts: p.Restarts()})
			if !ok && in.Exit == "" {
				in.Exit = fmt.Sprintf("%s: %s (log: %s)", p.Name(), logtail.LastError(ns.l.Log(p.Name())), ns.l.Log(p.Name()))
			}
			if ok && pid > 0 {
				if tree == nil {
					tree = processTree()
				}
				for _, c := range descendants(tree, pid) {
					in.Procs = append(in.Procs, nodegroup.Process{Name: p.Name() + "-child", PID: c, Alive: true})
				}
			}
		}
		out = append(out, in)
	}
	return out
}

// StopOrder names the nodes' processes for an ordered stop of everything:
// every node's last-started process (its agent, which drains) first, then
// the ones started before it, a step each.
func (ns *Nodes) StopOrder() [][]string {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	var out [][]string
	for _, ps := range ns.procs {
		for i, p := range slices.Backward(ps) {
			step := len(ps) - 1 - i
			for len(out) <= step {
				out = append(out, nil)
			}
			out[step] = append(out[step], p.Name())
		}
	}
	return out
}
