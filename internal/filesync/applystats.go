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
