package filesync

import (
	"log/slog"
	"time"
)

// backlogLog is how many changes the agent must apply in one go, without
// catching up with the log, before it logs where their time went.
const backlogLog = 32

// applyStats counts where the stream applier's time goes while it works
// through a backlog: waiting for the stream, fetching blobs from the files
// role, and the rest of applying (writes, renames, the index). It is logged
// once the agent catches up after at least backlogLog changes (32: at 200 uploads a second, 160 ms behind), so that a
// slow drain says which stage held it.
type applyStats struct {
	start    time.Time
	n        int
	wait     time.Duration // blocked on the stream, or on the changes read ahead
	apply    time.Duration // in applyRemote / applyUnit, fetches included
	fetch0   int64         // Agent.fetchNanos at start
	fetches0 int64         // Agent.fetches at start
	ahead0   int64         // Agent.fetchedAhead at start
}

func (s *applyStats) reset(a *Agent) {
	*s = applyStats{fetch0: a.fetchNanos.Load(), fetches0: a.fetches.Load(), ahead0: a.fetchedAhead.Load()}
}

// caughtUp logs the backlog just applied, if it was one, and starts over.
func (s *applyStats) caughtUp(a *Agent, logger *slog.Logger) {
	if s.n >= backlogLog {
		fetch := time.Duration(a.fetchNanos.Load() - s.fetch0)
		logger.Info("applied a backlog of the change log",
			"changes", s.n, "took", time.Since(s.start).Round(time.Millisecond),
			"waiting", s.wait.Round(time.Millisecond), "applying", s.apply.Round(time.Millisecond),
			// blob GETs of the applier and of the prefetcher, their times summed
			"blob_gets", a.fetches.Load()-s.fetches0, "blob_get_time", fetch.Round(time.Millisecond),
			"fetched_ahead", a.fetchedAhead.Load()-s.ahead0)
	}
	s.reset(a)
}

// recvStats says, per remote put the agent applied in a burst, how long it
// took from the file's mtime on the writing node until this agent's
// applier took the change from the stream (the writer's whole part:
// watcher, debounce, upload, commit; the stream's delivery; and the wait
// behind the changes before it here) and from there until its content was
// in the docroot (the rest of the blob's fetch, ahead or not, and the
// apply). The mtime is the writer's clock: across machines their offset
// adds to the first figure. A burst ends at the first change taken after
// burstQuiet without one; it is logged then, if it had backlogLog puts.
type recvStats struct {
	last              time.Time // when the last change was seen
	toSeen, toApplied []time.Duration
	seenToApplied     []time.Duration
}

// applied records change c, taken from the stream at seen and applied at
// done.
func (r *recvStats) applied(c Change, seen, done time.Time, logger *slog.Logger) {
	if !r.last.IsZero() && seen.Sub(r.last) > burstQuiet {
		r.flush(logger)
	}
	r.last = seen
	if c.Op != OpPut || c.MTime <= 0 {
		return
	}
	written := time.Unix(0, c.MTime)
	if lag := seen.Sub(written); lag < 0 || lag > time.Minute {
		return // an old file (a copy that kept its mtime) or a skewed clock
	}
	r.toSeen = append(r.toSeen, seen.Sub(written))
	r.seenToApplied = append(r.seenToApplied, done.Sub(seen))
	r.toApplied = append(r.toApplied, done.Sub(written))
}

// flush logs the burst recorded, if it was one, and starts over.
func (r *recvStats) flush(logger *slog.Logger) {
	if len(r.toSeen) >= backlogLog {
		logger.Info("applied a burst of remote changes", "puts", len(r.toSeen),
			// p50/p99 per put
			"written_to_taken", pctl(r.toSeen), "taken_to_applied", pctl(r.seenToApplied),
			"written_to_applied", pctl(r.toApplied))
	}
	*r = recvStats{last: r.last}
}
