package controller

// The node group: launching, warming, draining and replacing nodes, and the
// reconcile loop that converges the group on the desired count.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/config"
	"github.com/scalepress/scalepress/internal/supervise"
)

const (
	// groupInterval is how often the group is reconciled.
	groupInterval = time.Second
	// nodeFailAfter consecutive failed checks (one a second) mark a running
	// node failed. Longer than the edge's fall (3 × 2 s): the edge stops
	// sending to a sick node first; the controller replaces it only if it
	// stays sick (15 s; the edge needs up to ~8 s).
	nodeFailAfter = 15
	// edgeAckTimeout bounds the wait for every edge to apply a new node set.
	edgeAckTimeout = 5 * time.Second
	// keepTerminated is how many terminated nodes status keeps showing.
	keepTerminated = 8
)

func (c *Controller) event(kind, node, format string, args ...any) {
	c.eventWith(kind, node, nil, format, args...)
}

func (c *Controller) eventWith(kind, node string, inputs map[string]any, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if c.events != nil {
		c.events.Add(api.Event{Kind: kind, Node: node, Message: msg, Inputs: inputs})
	}
	c.logger.Info(msg, "kind", kind, "node", node)
}

// setStateLocked moves a node to state and republishes the in-service set.
func (c *Controller) setStateLocked(n *nodeState, state, reason string) {
	if n.state == state {
		return
	}
	prev := n.state
	n.state, n.since, n.reason = state, time.Now(), reason
	c.publishUpstreamsLocked()
	msg := fmt.Sprintf("%s: %s → %s", n.id, prev, state)
	if reason != "" {
		msg += " (" + reason + ")"
	}
	if c.events != nil {
		c.events.Add(api.Event{Kind: "node", Node: n.id, Message: msg})
	}
}

// active reports whether a node counts toward the group's size.
func active(n *nodeState) bool {
	switch n.state {
	case api.NodePending, api.NodeWarming, api.NodeInService:
		return true
	}
	return false
}

// freeIndexLocked is the lowest node index no live node uses.
func (c *Controller) freeIndexLocked() int {
	used := map[int]bool{}
	for _, n := range c.nodes {
		if n.state != api.NodeTerminated {
			used[n.n] = true
		}
	}
	for i := 1; ; i++ {
		if !used[i] {
			return i
		}
	}
}

// launchNode starts one node process; it is pending until healthy, then
// warming while its opcache is primed, then in service. ready is closed when
// it is in service or has failed.
func (c *Controller) launchNode(ctx context.Context, children int, reason string) (*nodeState, <-chan error, error) {
	c.mu.Lock()
	i := c.freeIndexLocked()
	id := config.NodeID(i)
	ns := &nodeState{n: i, id: id, addr: c.cfg.NodeAddr(i), docroot: c.layout.Docroot(id), state: api.NodePending, since: time.Now(), children: children}
	c.nodes = slices.DeleteFunc(c.nodes, func(o *nodeState) bool { return o.n == i }) // a terminated one with this index
	c.nodes = append(c.nodes, ns)
	sort.Slice(c.nodes, func(a, b int) bool { return c.nodes[a].n < c.nodes[b].n })
	c.mu.Unlock()
	c.event("node", id, "%s: launching at %s (%s)", id, ns.addr, reason)

	fail := func(err error) (*nodeState, <-chan error, error) {
		c.mu.Lock()
		c.setStateLocked(ns, api.NodeFailed, err.Error())
		c.mu.Unlock()
		return ns, nil, err
	}
	if err := c.prepareDocroot(ns.docroot); err != nil {
		return fail(fmt.Errorf("%s: %w", id, err))
	}
	spec := api.NodeSpec{
		ID: id, Addr: ns.addr, Docroot: ns.docroot, RunDir: c.layout.NodeRun(id),
		LogDir: c.layout.Logs(), PIDDir: c.layout.PIDs(),
		PHPChildren: children, PHPMaxRequests: c.cfg.Nodes.PHPMaxRequests,
		TrustedProxies: c.edgeIPs(),
	}
	if c.asRoot {
		spec.PHPUser, spec.PHPGroup = c.phpUser.Name, groupName(c.phpUser.GID)
	}
	if err := c.nodeFilesSpec(&spec); err != nil {
		return fail(err)
	}
	s, err := c.roleSpec(id, "node", spec)
	if err != nil {
		return fail(err)
	}
	// A node that dies is replaced by a new one, not restarted in place.
	s.Restart = supervise.RestartPolicy{Never: true}
	// The agent still starts php-fpm, whose master needs root to run its
	// workers as the PHP user.
	s.Credential = nil
	p, err := c.sup.Start(s)
	if err != nil {
		return fail(err)
	}
	c.mu.Lock()
	ns.proc = p
	c.mu.Unlock()

	done := make(chan error, 1)
	c.groupWG.Go(func() {
		err := waitFor(ctx, id, 60*time.Second, p, c.layout.Log(id), c.httpCheck("http://"+ns.addr+"/_scalepress/health", "", 200))
		if err != nil {
			c.mu.Lock()
			c.setStateLocked(ns, api.NodeFailed, err.Error())
			c.mu.Unlock()
			stopCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			p.Stop(stopCtx)
			cancel()
			done <- err
			return
		}
		c.mu.Lock()
		c.setStateLocked(ns, api.NodeWarming, "")
		c.mu.Unlock()
		c.warm(ctx, ns)
		if err := c.waitNodeFiles(ctx, ns); err != nil {
			c.mu.Lock()
			c.setStateLocked(ns, api.NodeFailed, err.Error())
			c.mu.Unlock()
			stopCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			p.Stop(stopCtx)
			cancel()
			done <- err
			return
		}
		c.mu.Lock()
		if ns.state == api.NodeWarming {
			c.setStateLocked(ns, api.NodeInService, "")
		}
		c.mu.Unlock()
		done <- nil
	})
	return ns, done, nil
}

// warm primes a new node's opcache with the site's most requested URLs
// before it takes traffic: the first PHP request on a cold opcache costs
// 0.4–0.7 s here, a warm one ~0.1 s.
func (c *Controller) warm(ctx context.Context, ns *nodeState) {
	site, _ := url.Parse(c.cfg.SiteURL())
	paths := c.topPaths(ctx)
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	t0 := time.Now()
	for _, p := range paths {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+ns.addr+p, nil)
		if err != nil {
			continue
		}
		req.Host = site.Host
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	c.logger.Info("node warmed", "node", ns.id, "urls", len(paths), "took", time.Since(t0).Round(time.Millisecond))
}

// topPaths are the URLs to warm a node with: what the first edge reports as
// most requested, else the home page and the login page.
func (c *Controller) topPaths(ctx context.Context) []string {
	paths := []string{"/", "/wp-login.php"}
	if len(c.cfg.Edges) == 0 {
		return paths
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.cfg.Edges[0].Addr+"/_scalepress/edge/top?n=10", nil)
	if err != nil {
		return paths
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return paths
	}
	defer resp.Body.Close()
	var top []string
	if resp.StatusCode == 200 && json.NewDecoder(resp.Body).Decode(&top) == nil {
		for _, p := range top {
			if !slices.Contains(paths, p) {
				paths = append(paths, p)
			}
		}
	}
	return paths
}

// drainNode takes a node out of the in-service set, waits until every edge
// applied that and its in-flight requests finished (bounded by the
// deregistration delay), then stops it.
func (c *Controller) drainNode(ns *nodeState, reason string) {
	c.mu.Lock()
	c.setStateLocked(ns, api.NodeDraining, reason)
	gen := c.upGen
	c.mu.Unlock()
	c.groupWG.Go(func() {
		t0 := time.Now()
		c.waitEdgesApplied(gen, edgeAckTimeout)
		deadline := time.Now().Add(c.cfg.Nodes.DeregistrationDelay)
		for time.Now().Before(deadline) {
			if inflight, err := c.nodeInFlight(ns.addr); err != nil || inflight == 0 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if ns.proc != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			ns.proc.Stop(ctx) // SIGTERM: the agent drains what is left, then stops php-fpm
			cancel()
		}
		c.mu.Lock()
		c.setStateLocked(ns, api.NodeTerminated, "")
		c.pruneTerminatedLocked()
		c.mu.Unlock()
		c.event("node", ns.id, "%s: drained and stopped in %s", ns.id, time.Since(t0).Round(time.Millisecond))
	})
}

// waitEdgesApplied waits until every edge reported applying generation gen.
func (c *Controller) waitEdgesApplied(gen uint64, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		ok := true
		for _, e := range c.cfg.Edges {
			if c.edgeGen[e.ID] < gen {
				ok = false
			}
		}
		c.mu.Unlock()
		if ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *Controller) nodeInFlight(addr string) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/_scalepress/status", nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var st struct {
		InFlight int64 `json:"in_flight"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return 0, err
	}
	return st.InFlight, nil
}

func (c *Controller) pruneTerminatedLocked() {
	var term []*nodeState
	for _, n := range c.nodes {
		if n.state == api.NodeTerminated {
			term = append(term, n)
		}
	}
	if len(term) <= keepTerminated {
		return
	}
	sort.Slice(term, func(i, j int) bool { return term[i].since.Before(term[j].since) })
	drop := term[:len(term)-keepTerminated]
	c.nodes = slices.DeleteFunc(c.nodes, func(n *nodeState) bool { return slices.Contains(drop, n) })
}
