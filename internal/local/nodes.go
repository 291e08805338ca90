package local

import (
	"context"
	"fmt"
	"sync"

	"github.com/scalepress/scalepress/internal/logtail"
	"github.com/scalepress/scalepress/internal/nodegroup"
	"github.com/scalepress/scalepress/internal/supervise"
)

// Nodes runs the node group's nodes as child processes: one node agent per
// node (it starts php-fpm and the filesync agent itself), never restarted
// in place (a node that dies is replaced by a new one).
type Nodes struct {
	l *Launcher
	// spec prepares the node (its docroot, its state directories) and
	// returns the node agent's spec.
	spec func(ctx context.Context, n nodegroup.Node) (any, error)

	mu    sync.Mutex
	procs map[string]*supervise.Process // by node id, until Stop
}

var _ nodegroup.Launcher = (*Nodes)(nil)

// Nodes returns the node launcher; spec prepares a node and returns its spec.
func (l *Launcher) Nodes(spec func(ctx context.Context, n nodegroup.Node) (any, error)) *Nodes {
	return &Nodes{l: l, spec: spec, procs: map[string]*supervise.Process{}}
}

// Launch implements nodegroup.Launcher.
func (ns *Nodes) Launch(ctx context.Context, n nodegroup.Node) (nodegroup.Node, error) {
	spec, err := ns.spec(ctx, n)
	if err != nil {
		return n, err
	}
	p, err := ns.l.Start(ctx, Role{Name: n.ID, Role: "node", Spec: spec, Restart: &supervise.RestartPolicy{Never: true}})
	if err != nil {
		return n, err
	}
	ns.mu.Lock()
	ns.procs[n.ID] = p
	ns.mu.Unlock()
	return n, nil
}

// Stop implements nodegroup.Launcher: SIGTERM, the agent drains what is
// left and stops php-fpm.
func (ns *Nodes) Stop(ctx context.Context, id string) error {
	ns.mu.Lock()
	p := ns.procs[id]
	delete(ns.procs, id)
	ns.mu.Unlock()
	if p == nil {
		return nil
	}
	if err := p.Stop(ctx); err != nil {
		return fmt.Errorf("stop %s: %w", id, err)
	}
	return nil
}

// List implements nodegroup.Launcher: each node's agent, then its
// descendants (php-fpm master and workers, the filesync agent) from /proc.
func (ns *Nodes) List() []nodegroup.Instance {
	ns.mu.Lock()
	procs := make(map[string]*supervise.Process, len(ns.procs))
	for id, p := range ns.procs {
		procs[id] = p
	}
	ns.mu.Unlock()
	var tree map[int][]int
	out := make([]nodegroup.Instance, 0, len(procs))
	for id, p := range procs {
		in := nodegroup.Instance{Node: nodegroup.Node{ID: id}}
		alive, pid := !exited(p), p.Pid()
		in.Procs = append(in.Procs, nodegroup.Process{Name: id, PID: pid, Alive: alive, Restarts: p.Restarts()})
		if alive && pid > 0 {
			if tree == nil {
				tree = processTree()
			}
			for _, c := range descendants(tree, pid) {
				in.Procs = append(in.Procs, nodegroup.Process{Name: id + "-child", PID: c, Alive: true})
			}
		} else {
			in.Exit = fmt.Sprintf("%s (log: %s)", logtail.LastError(ns.l.Log(id)), ns.l.Log(id))
		}
		out = append(out, in)
	}
	return out
}

// Names are the process names of the nodes, for an ordered stop of everything.
func (ns *Nodes) Names() []string {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	var out []string
	for id := range ns.procs {
		out = append(out, id)
	}
	return out
}
