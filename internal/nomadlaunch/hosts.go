package nomadlaunch

import (
	"context"
	"path"
	"slices"
	"strings"
	"time"

	nomad "github.com/hashicorp/nomad/api"

	"github.com/scalepress/scalepress/internal/nodegroup"
)

var _ nodegroup.Spreader = (*Launcher)(nil)

// Hosts implements nodegroup.Spreader: the Nomad clients that may run a
// node now, as the last look at Nomad's node list found them (nil until
// the first). Busy is set while the rolling update adopt started runs.
func (l *Launcher) Hosts() ([]nodegroup.NodeHost, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	busy := ""
	if l.rolling {
		busy = "a rolling update of the node job runs"
	}
	return slices.Clone(l.hosts), busy
}

// followHosts keeps Hosts' list with blocking queries on Nomad's node
// list until ctx ends. A client's full record (its node meta, when it
// became ready) is read again only when it changed.
func (l *Launcher) followHosts(ctx context.Context) {
	var index uint64
	full := map[string]*nomad.Node{} // by id, as of its ModifyIndex
	warned := ""
	for ctx.Err() == nil {
		q := (&nomad.QueryOptions{WaitIndex: index, WaitTime: l.cfg.Poll}).WithContext(ctx)
		stubs, meta, err := l.nc.Nodes().List(q)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if msg := err.Error(); msg != warned {
				warned = msg // once per cause: a token without node:read would say so every second
				l.logger.Warn("nomad: list clients (no rebalance without them)", "err", err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		warned = ""
		if meta.LastIndex < index {
			index = 0
		} else {
			index = meta.LastIndex
		}
		var hosts []nodegroup.NodeHost
		seen := map[string]bool{}
		for _, s := range stubs {
			if !l.mayRun(s) {
				continue
			}
			seen[s.ID] = true
			n := full[s.ID]
			if n == nil || n.ModifyIndex != s.ModifyIndex {
				got, _, err := l.nc.Nodes().Info(s.ID, (&nomad.QueryOptions{}).WithContext(ctx))
				if err != nil {
					l.logger.Warn("nomad: read client", "node", s.Name, "err", err)
					continue
				}
				n, full[s.ID] = got, got
			}
			if !metaMatches(n.Meta, l.cfg.NodeMeta) {
				continue
			}
			h := nodegroup.NodeHost{Name: s.Name}
			if n.StatusUpdatedAt > 0 {
				h.ReadySince = time.Unix(n.StatusUpdatedAt, 0)
			}
			hosts = append(hosts, h)
		}
		for id := range full {
			if !seen[id] {
				delete(full, id)
			}
		}
		l.mu.Lock()
		l.hosts = hosts
		l.mu.Unlock()
	}
}

// mayRun reports whether a client may run a node now: ready, eligible,
// not draining, in the default node pool and one of the job's
// datacenters, with raw_exec healthy. Its node meta is checked apart (the
// list does not carry it).
func (l *Launcher) mayRun(s *nomad.NodeListStub) bool {
	if s.Status != nomad.NodeStatusReady || s.SchedulingEligibility != nomad.NodeSchedulingEligible || s.Drain {
		return false
	}
	if s.NodePool != "" && s.NodePool != "default" {
		return false
	}
	if d := s.Drivers["raw_exec"]; d == nil || !d.Detected || !d.Healthy {
		return false
	}
	return slices.ContainsFunc(l.cfg.Datacenters, func(pattern string) bool { return dcMatch(pattern, s.Datacenter) })
}

// dcMatch is Nomad's datacenter match: "*" stands for any run of
// characters.
func dcMatch(pattern, dc string) bool {
	if !strings.ContainsAny(pattern, "*") {
		return pattern == dc
	}
	ok, err := path.Match(pattern, dc)
	return err == nil && ok
}

// metaMatches reports whether meta has every key of want with its value
// (the job's ${meta.KEY} = VALUE constraints).
func metaMatches(meta, want map[string]string) bool {
	for k, v := range want {
		if meta[k] != v {
			return false
		}
	}
	return true
}
