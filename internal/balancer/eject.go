package balancer

import "time"

// eject takes n out of service after a run of failures or saturation
// signals (cause is ConnError, Status5xx or Saturated), unless that would
// leave no node in service or eject more than MaxEjectedPercent.
func (b *Balancer) eject(n *Node, cause Outcome) {
	b.mu.Lock()
	defer b.mu.Unlock()
	// The run that led here is used up either way.
	if cause == Saturated {
		n.satRun.Store(0)
	} else {
		n.errRun.Store(0)
	}
	now := b.clock()
	if n.removed || n.draining.Load() || !n.healthy || ejected(n, now) {
		return
	}
	total, inService, out := 0, 0, 0
	for _, m := range b.order {
		switch {
		case m.draining.Load():
		case ejected(m, now):
			total++
			out++
		case m.healthy:
			total++
			inService++
		default:
			total++
		}
	}
	if inService <= 1 {
		b.logger.Debug("node not ejected: last node in service", "node", n.id, "cause", cause)
		return
	}
	if out >= max(1, total*b.cfg.MaxEjectedPercent/100) {
		b.logger.Debug("node not ejected: too many ejected", "node", n.id, "cause", cause, "ejected", out, "nodes", total)
		return
	}
	d := b.cfg.SaturationEjection
	if cause != Saturated {
		if n.lastEjectEnd != 0 && now-n.lastEjectEnd < int64(b.cfg.EjectWindow) {
			n.ejections++
		} else {
			n.ejections = 0
		}
		d = ejectDuration(b.cfg.EjectBase, b.cfg.EjectMax, n.ejections)
		n.lastEjectEnd = now + int64(d)
	}
	n.ejectedUntil.Store(now + int64(d))
	n.ejectedTotal++
	n.stateSince = now
	b.logger.Warn("node ejected", "node", n.id, "addr", n.addr, "cause", cause, "for", d)
	if cause != Saturated {
		b.takenOutLocked(n)
	}
	b.publishLocked(now)
	b.wake()
}

func ejected(n *Node, now int64) bool {
	eu := n.ejectedUntil.Load()
	return eu != 0 && now < eu
}

// ejectDuration is base·2ⁿ capped at limit, without overflow.
func ejectDuration(base, limit time.Duration, n int) time.Duration {
	d := base
	for range n {
		if d >= limit-d {
			return limit
		}
		d *= 2
	}
	return min(d, limit)
}
