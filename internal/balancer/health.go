package balancer

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// Checker probes one node. The edge passes an HTTPChecker, whose GET of the
// node's health path proves that php-fpm answers.
type Checker interface {
	Check(ctx context.Context, addr string) error
}

var _ Checker = (*HTTPChecker)(nil)

// Run checks every non-draining node each HealthInterval, ends ejections and
// slow starts on time, and forgets nodes that Update dropped once they are
// drained or DeregistrationDelay has passed. It returns nil when ctx ends,
// after its checks have stopped.
func (b *Balancer) Run(ctx context.Context) error {
	if !b.running.CompareAndSwap(false, true) {
		return errors.New("balancer: run: already running")
	}
	defer b.running.Store(false)

	var wg sync.WaitGroup
	checks := make(map[*Node]context.CancelFunc)
	defer func() {
		for _, stop := range checks {
			stop()
		}
		wg.Wait()
	}()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := b.clock()
		want, next := b.maintain(now)
		if b.adm.waiting.Load() > 0 {
			b.dispatch() // nodes back in service take waiting requests
		}
		if b.checker != nil {
			for n, stop := range checks {
				if !want[n] {
					stop()
					delete(checks, n)
				}
			}
			for n := range want {
				if _, ok := checks[n]; !ok {
					cctx, stop := context.WithCancel(ctx)
					checks[n] = stop
					wg.Go(func() { b.checkLoop(cctx, n) })
				}
			}
		}
		timer.Reset(time.Duration(min(next-now, int64(time.Hour))))
		select {
		case <-ctx.Done():
			return nil
		case <-b.kick:
		case <-timer.C:
		}
	}
}

// maintain forgets drained nodes, republishes an expired view, and returns
// the nodes to check and the clock at which maintain is due again.
func (b *Balancer) maintain(now int64) (check map[*Node]bool, next int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	next = never
	changed := false
	for _, n := range slices.Clone(b.order) {
		if !n.draining.Load() || n.explicitDrain {
			continue
		}
		deadline := n.drainStart + int64(b.cfg.DeregistrationDelay)
		if n.drainedClosed || now >= deadline {
			b.forgetLocked(n)
			changed = true
			b.logger.Info("node forgotten", "node", n.id, "addr", n.addr, "in_flight", n.inflight.Load())
			continue
		}
		next = min(next, deadline)
	}
	v := b.view.Load()
	if changed || now >= v.expires {
		v = b.publishLocked(now)
	}
	next = min(next, v.expires)
	check = make(map[*Node]bool, len(b.order))
	for _, n := range b.order {
		if !n.draining.Load() {
			check[n] = true
		}
	}
	return check, next
}

// checkLoop checks n every HealthInterval, starting at a random point of the
// first interval so that the checks of many nodes spread out.
func (b *Balancer) checkLoop(ctx context.Context, n *Node) {
	t := time.NewTimer(rand.N(b.cfg.HealthInterval))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cctx, cancel := context.WithTimeout(ctx, b.cfg.HealthTimeout)
		err := b.checker.Check(cctx, n.addr)
		cancel()
		if ctx.Err() != nil {
			return
		}
		b.recordCheck(n, err)
		t.Reset(b.cfg.HealthInterval)
	}
}

// recordCheck applies one active check result: Fall failures in a row make
// n unhealthy, Rise successes in a row make it healthy and start slow start.
func (b *Balancer) recordCheck(n *Node, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n.removed {
		return
	}
	now := b.clock()
	if err == nil {
		n.falls, n.lastCheckErr = 0, ""
		n.rises++
		if !n.healthy && n.rises >= b.cfg.Rise {
			n.healthy = true
			n.stateSince = now
			b.startSlowStartLocked(n, now)
			b.logger.Info("node healthy", "node", n.id, "addr", n.addr, "checks", n.rises)
			b.backInLocked(n, now)
			b.publishLocked(now)
		}
		return
	}
	n.rises, n.lastCheckErr = 0, err.Error()
	n.falls++
	if n.healthy && n.falls >= b.cfg.Fall {
		n.healthy = false
		n.stateSince = now
		n.slowStartEnd.Store(0)
		b.logger.Warn("node unhealthy", "node", n.id, "addr", n.addr, "checks", n.falls, "err", err)
		b.takenOutLocked(n)
		b.publishLocked(now)
	}
}
