// Package nodegroup runs the PHP node group: it launches nodes, warms them,
// puts them in service, drains them, and replaces the ones that fail, so that
// the group converges on the size the autoscaler asks for.
//
// Like internal/galera it is a pure policy and a driver:
//
//   - policy.go decides, from what is known of every node (its state, whether
//     its processes are alive, how many health reports in a row failed), which
//     nodes failed, which failed nodes to replace now (autoscale.Healer: at
//     most MaxReplacements per ReplacementWindow), the desired size
//     (autoscale.Scaler) and which nodes to launch or drain. It does no I/O,
//     never reads the clock and never sees a process.
//   - group.go and lifecycle.go drive it: they own the nodes' state (under the
//     group's own mutex, which is never held while waiting), probe the nodes,
//     and act through three consumer-side interfaces: a Launcher (start, stop,
//     list the processes of a node: local child processes today, a Nomad job
//     later), a Prober (the node agent's health and status document) and
//     Hooks (publish the in-service set to the edges, wait for the edges to
//     apply it, record events).
//
// A node's life: pending (launched, not answering yet) → warming (answers;
// its opcache is primed with the edge's most requested paths, then its
// docroot catches up with the files store) → in-service (in the set the
// edges balance over) → draining (out of the set; stopped once every edge
// applied that and its requests finished, bounded by DeregistrationDelay) →
// terminated. A node whose processes exit, that is not ready in time, or
// that fails FailAfter health reports in a row while in service is failed,
// stopped, and replaced by a new node. See docs/adr/0010-node-group-launcher.md.
package nodegroup
