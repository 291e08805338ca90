package nomadlaunch

// Adoption: a new controller (restarted, or started on another host) finds
// the node job running and takes over its allocations instead of replacing
// them (ADR 27).

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	nomad "github.com/hashicorp/nomad/api"

	"github.com/scalepress/scalepress/internal/nodegroup"
)

// RollMinHealthy is how long a replaced allocation must run before a
// rolling update (a spec that changed under running nodes) replaces the
// next one.
const RollMinHealthy = 10 * time.Second

// specChange is what registering the wanted job would do to what runs.
type specChange int

const (
	specSame        specChange = iota // nothing: the job is left as it is
	specInPlace                       // a new version, no allocation restarted
	specDestructive                   // allocations replaced: a rolling update
)

// classify reads a plan of the wanted job against the running one.
func classify(p *nomad.JobPlanResponse) specChange {
	if p == nil {
		return specInPlace
	}
	if p.Annotations != nil {
		if u := p.Annotations.DesiredTGUpdates[Group]; u != nil && (u.DestructiveUpdate > 0 || u.Stop > 0) {
			return specDestructive
		}
	}
	if p.Diff != nil && p.Diff.Type != "None" {
		return specInPlace
	}
	return specSame
}

// rolling is the update strategy of a job registered over running nodes
// with a spec that replaces them: one allocation at a time, the next once
// the last has run RollMinHealthy, never all at once (the group's own
// strategy, max_parallel 0, replaces every allocation together).
func rolling() *nomad.UpdateStrategy {
	return &nomad.UpdateStrategy{
		MaxParallel: ptr(1), HealthCheck: ptr("task_states"), MinHealthyTime: ptr(RollMinHealthy),
		HealthyDeadline: ptr(5 * time.Minute), ProgressDeadline: ptr(10 * time.Minute),
		AutoRevert: ptr(false), Canary: ptr(0),
	}
}

// runningJob is the node job when it exists and is not stopped, else nil.
func (l *Launcher) runningJob(ctx context.Context) (*nomad.Job, error) {
	j, _, err := l.nc.Jobs().Info(l.cfg.Job, (&nomad.QueryOptions{}).WithContext(ctx))
	var ue nomad.UnexpectedResponseError
	if errors.As(err, &ue) && ue.StatusCode() == http.StatusNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, l.cfg.Explain(fmt.Sprintf("read job %s", l.cfg.Job), err)
	}
	if j.Stop != nil && *j.Stop {
		return nil, nil
	}
	return j, nil
}

// jobCount is the node group's count in j.
func countOf(j *nomad.Job) int {
	for _, tg := range j.TaskGroups {
		if tg.Name != nil && *tg.Name == Group && tg.Count != nil {
			return *tg.Count
		}
	}
	return 0
}

// adopt takes over the running job cur: it keeps its count, registers it
// again only when the spec differs (in place, or as a rolling update), and
// holds one slot per allocation index below the count. It returns those
// nodes, with the address of each one whose allocation is live.
func (l *Launcher) adopt(ctx context.Context, cur *nomad.Job) ([]nodegroup.Adopted, error) {
	count := countOf(cur)
	// This launcher's writes are conditioned on the index it read the job
	// at. The first one (the take-over, when another owner wrote the job)
	// puts its owner into the job: the last owner's next write is refused.
	takeover := ownerOf(cur) != l.cfg.Owner
	l.mu.Lock()
	l.jobIndex, l.keepRolling = *cur.JobModifyIndex, false
	l.slots = map[int]*slot{}
	l.mu.Unlock()
	allocs, _, err := l.nc.Jobs().Allocations(l.cfg.Job, true, (&nomad.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return nil, l.cfg.Explain(fmt.Sprintf("allocations of %s", l.cfg.Job), err)
	}
	l.update(allocs)

	want := Job(l.cfg, count)
	plan, _, err := l.nc.Jobs().Plan(want, true, l.write(ctx))
	if err != nil {
		return nil, l.cfg.Explain(fmt.Sprintf("plan job %s", l.cfg.Job), err)
	}
	switch classify(plan) {
	case specSame:
		l.note("", "job %s runs with count %d: adopted as it is", l.cfg.Job, count)
	case specInPlace:
		if err := l.fence(ctx); err != nil {
			return nil, err
		}
		l.scaleMu.Lock()
		_, err := l.register(ctx, want, takeover)
		l.scaleMu.Unlock()
		if err != nil {
			return nil, err
		}
		l.note("", "job %s runs with count %d: adopted, registered again in place (no node restarted)", l.cfg.Job, count)
	case specDestructive:
		want.TaskGroups[0].Update = rolling()
		if err := l.fence(ctx); err != nil {
			return nil, err
		}
		l.scaleMu.Lock()
		resp, err := l.register(ctx, want, takeover)
		l.scaleMu.Unlock()
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		l.rolling, l.rollIndex, l.keepRolling = true, resp.JobModifyIndex, true
		l.mu.Unlock()
		l.note("", "job %s runs with count %d and another spec: adopted, and updated by a rolling update (one node at a time, each running %s before the next)", l.cfg.Job, count, RollMinHealthy)
	}

	type found struct {
		alloc    *nomad.AllocationListStub
		adoption nodegroup.Adopted
	}
	var all []found
	l.mu.Lock()
	l.count = count
	for i := range count {
		s := &slot{id: fmt.Sprintf("node-%d", i+1)}
		a := l.allocs[i]
		if a != nil {
			s.alloc = a.ID
		}
		l.slots[i] = s
		all = append(all, found{alloc: a, adoption: nodegroup.Adopted{Index: i + 1, Node: nodegroup.Node{ID: s.id}}})
	}
	l.mu.Unlock()
	out := make([]nodegroup.Adopted, 0, len(all))
	for _, f := range all {
		a, id := f.alloc, f.adoption.Node.ID
		switch {
		case a == nil:
			l.note(id, "%s: no allocation in its slot: the group replaces it", id)
		case !live(a):
			l.note(id, "%s: allocation %s %s: the group replaces it", id, short(a.ID), why(a))
		default:
			addr, err := l.address(ctx, a.ID)
			if err != nil {
				l.note(id, "%s: allocation %s: %v: the group replaces it", id, short(a.ID), err)
				break
			}
			f.adoption.Node.Addr = addr
			l.note(id, "%s: nomad allocation %s on %s at %s adopted", id, short(a.ID), a.NodeName, addr)
		}
		out = append(out, f.adoption)
	}
	return out, nil
}

// endRoll registers the job with the group's own update strategy again
// once the rolling update adopt started succeeded (scale requests are
// refused while a deployment runs). A rolling update that failed is left
// as it is: registering the job again would replace the nodes it did not
// reach all at once; the job keeps max_parallel 1 (each scale is then a
// deployment of its own) until an up with a working spec.
func (l *Launcher) endRoll(ctx context.Context) {
	l.mu.Lock()
	roll, index := l.rolling, l.rollIndex
	l.mu.Unlock()
	if !roll {
		return
	}
	d, _, err := l.nc.Jobs().LatestDeployment(l.cfg.Job, (&nomad.QueryOptions{}).WithContext(ctx))
	if err != nil || d == nil || d.JobModifyIndex < index {
		return // not this update's deployment (yet)
	}
	switch d.Status {
	case nomad.DeploymentStatusSuccessful:
	case nomad.DeploymentStatusFailed, nomad.DeploymentStatusCancelled:
		l.mu.Lock()
		l.rolling = false
		l.mu.Unlock()
		l.note("", "job %s: rolling update %s (%s); the job keeps its rolling update strategy", l.cfg.Job, d.Status, d.StatusDescription)
		return
	default:
		return
	}
	l.scaleMu.Lock()
	defer l.scaleMu.Unlock()
	l.mu.Lock()
	count := l.count
	l.mu.Unlock()
	if err := l.fence(ctx); err != nil {
		l.logger.Warn("nomad: register the job after its rolling update", "err", err)
		return
	}
	if _, err := l.register(ctx, Job(l.cfg, count), false); err != nil {
		l.logger.Warn("nomad: register the job after its rolling update", "err", err)
		return
	}
	l.mu.Lock()
	l.rolling, l.keepRolling = false, false
	l.mu.Unlock()
	l.note("", "job %s: rolling update %s (%s); updates back to the group's pace", l.cfg.Job, d.Status, d.StatusDescription)
}
