package nomadlaunch

// The owner fence in Nomad itself (ADR 31): every write of the node job is
// a register conditioned on the job modify index at which this launcher
// last saw the job with its own owner (Nomad's EnforceIndex). A new owner's
// first write of the job puts its owner into the job (OwnerMeta), which
// gives the job a new modify index: the last owner's next write carries
// the old one, Nomad refuses it, and the last owner stands down having
// changed nothing. Unlike Config.Fence (read the home variable, then act),
// nothing can come between the check and the write: Nomad makes both in
// one step.

import (
	"context"
	"errors"
	"fmt"
	"strings"

	nomad "github.com/hashicorp/nomad/api"
)

// enforceIndexRefused is how Nomad's job register begins its error when
// the job modify index the request carries is not the job's
// (nomad/job_endpoint.go, RegisterEnforceIndexErrPrefix).
const enforceIndexRefused = "Enforcing job modify index"

// errJobMoved means the job changed between this launcher's read of it and
// its conditional write, and the change was not a take-over (or this
// launcher is the one taking over): read the job again and decide again.
var errJobMoved = errors.New("the job changed since it was read")

// isIndexRefused says whether err is Nomad refusing a register because its
// job modify index is not the one the request carried.
func isIndexRefused(err error) bool {
	return err != nil && strings.Contains(err.Error(), enforceIndexRefused)
}

// refusal is what a launcher makes of a conditional write Nomad refused,
// from the job as it is now.
type refusal int

const (
	refusedMoved    refusal = iota // the job changed under this owner (an operator, this launcher's own older view): read again
	refusedTaken                   // another owner wrote the job: stand down
	refusedGone                    // the job was purged: no take-over, an error
	refusedTakeover                // this launcher is taking over and another write came first: read again
)

// judge decides a refused write: cur is the job read after the refusal
// (nil when purged), owner this launcher's, takeover whether the write was
// this launcher's take-over (its first write of a job another owner wrote).
func judge(cur *nomad.Job, owner string, takeover bool) refusal {
	switch {
	case cur == nil:
		return refusedGone
	case takeover:
		return refusedTakeover
	case ownerOf(cur) != owner:
		return refusedTaken
	}
	return refusedMoved
}

// jobRetries bounds the conditional writes of one change that Nomad
// refuses because the job moved (not a take-over).
const jobRetries = 3

// register writes job conditioned on l.jobIndex and records the index it
// got. When Nomad refuses it (the job changed since), the job is read
// again: written by another owner → ErrTakenOver (and Config.TakenOver is
// told); changed under this owner → job is written again on the new index
// (it is this launcher's view; the count it holds wins, as a scale did),
// up to jobRetries; a take-over refused → errJobMoved, for the caller to
// read the job and plan again. The caller holds scaleMu.
func (l *Launcher) register(ctx context.Context, job *nomad.Job, takeover bool) (*nomad.JobRegisterResponse, error) {
	for attempt := 1; ; attempt++ {
		l.mu.Lock()
		index := l.jobIndex
		l.mu.Unlock()
		resp, _, err := l.nc.Jobs().EnforceRegister(job, index, l.write(ctx))
		if err == nil {
			l.mu.Lock()
			l.jobIndex = resp.JobModifyIndex
			l.mu.Unlock()
			return resp, nil
		}
		if !isIndexRefused(err) {
			return nil, l.cfg.Explain(fmt.Sprintf("register job %s", l.cfg.Job), err)
		}
		cur, rerr := l.readJob(ctx)
		if rerr != nil {
			return nil, fmt.Errorf("nomad: job %s changed since this controller read it, and reading it again: %w", l.cfg.Job, rerr)
		}
		switch judge(cur, l.cfg.Owner, takeover) {
		case refusedGone:
			return nil, fmt.Errorf("nomad: job %s: purged since this controller registered it: left as it is", l.cfg.Job)
		case refusedTaken:
			why := fmt.Sprintf("Nomad refused a change of job %s: controller run %s registered it since (job modify index %d, this one's was %d)", l.cfg.Job, ownerOf(cur), *cur.JobModifyIndex, index)
			if l.cfg.TakenOver != nil {
				l.cfg.TakenOver(why)
			}
			return nil, fmt.Errorf("nomad: job %s left as it is: %w (%s)", l.cfg.Job, ErrTakenOver, why)
		case refusedTakeover:
			return nil, fmt.Errorf("nomad: job %s: %w (index %d, now %d)", l.cfg.Job, errJobMoved, index, *cur.JobModifyIndex)
		}
		if attempt == jobRetries {
			return nil, fmt.Errorf("nomad: job %s: %w %d times in a row: left as it is", l.cfg.Job, errJobMoved, attempt)
		}
		l.logger.Info("nomad: the job changed under this controller (not a take-over): writing it again on its new index", "job", l.cfg.Job, "index", index, "now", *cur.JobModifyIndex)
		l.mu.Lock()
		l.jobIndex = *cur.JobModifyIndex
		l.mu.Unlock()
	}
}

// readJob is the job as Nomad has it, stopped or not; nil when there is
// none.
func (l *Launcher) readJob(ctx context.Context) (*nomad.Job, error) {
	j, _, err := l.nc.Jobs().Info(l.cfg.Job, (&nomad.QueryOptions{}).WithContext(ctx))
	if isStatus(err, 404) {
		return nil, nil
	}
	if err != nil {
		return nil, l.cfg.Explain(fmt.Sprintf("read job %s", l.cfg.Job), err)
	}
	return j, nil
}

// wanted is the job with count nodes as this launcher registers it: with
// the rolling update strategy while the job keeps one (a rolling update
// under way, or one that failed), so that a count change never replaces
// the nodes the update did not reach all at once.
func (l *Launcher) wanted(count int) *nomad.Job {
	j := Job(l.cfg, count)
	l.mu.Lock()
	roll := l.keepRolling
	l.mu.Unlock()
	if roll {
		j.TaskGroups[0].Update = rolling()
	}
	return j
}
