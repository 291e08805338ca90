package filesync

import (
	"log/slog"
	"slices"
	"time"
)

// burstQuiet is how long the pusher must have had nothing to push before
// it logs the burst it pushed (pushStats): long enough that a burst of
// uploads (one every few ms) is one line, short enough that the pause
// before a second run (bench/propagation's sparse run, started when the
// burst's last file arrived) ends the first: at 200 ms the pipelined
// pusher's burst and sparse run were one line, logged after the bench
// had read the logs.
const burstQuiet = 100 * time.Millisecond

// pushStamp is when one pushed change passed each stage on the writer's
// side: written (the file's mtime), queued (after the watcher's event and
// the debounce: the change was read and journalled), uploaded (the files
// role answered its blob PUT: the blob is durable in its store; zero for a
// change without a blob). The fourth stamp, acknowledged (its record
// durable in the log), is when the push returned.
type pushStamp struct {
	written, queued, uploaded time.Time
}

// pushStats says where a burst of local changes spent its time on the
// writer's side, per change: written → queued, queued → blob durable,
// blob durable (or queued) → acknowledged, and written → acknowledged,
// each at p50 and p99, and the push requests' own time. It is logged once
// the pusher has had nothing to push for burstQuiet after at least
// backlogLog changes, so that a slow burst says which stage held it.
type pushStats struct {
	first                         time.Time
	queued, upload, commit, total []time.Duration
	requests                      []time.Duration
}

// pushed records a push of len(stamps) changes whose request took req and
// returned at acked.
func (s *pushStats) pushed(stamps []pushStamp, req time.Duration, acked time.Time) {
	if len(stamps) == 0 {
		return
	}
	s.requests = append(s.requests, req)
	for _, st := range stamps {
		if st.queued.IsZero() {
			continue // queued by an earlier run
		}
		if s.first.IsZero() || st.queued.Before(s.first) {
			s.first = st.queued
		}
		sent := st.queued
		if !st.uploaded.IsZero() {
			s.upload = append(s.upload, st.uploaded.Sub(st.queued))
			sent = st.uploaded
		}
		s.commit = append(s.commit, acked.Sub(sent))
		if w := st.queued.Sub(st.written); !st.written.IsZero() && w >= 0 && w < time.Minute {
			s.queued = append(s.queued, w)
			s.total = append(s.total, acked.Sub(st.written))
		}
	}
}

// idle logs the burst pushed since the last idle, if it was one, and
// starts over.
func (s *pushStats) idle(logger *slog.Logger) {
	if len(s.commit) >= backlogLog {
		logger.Info("pushed a burst of local changes", s.attrs()...)
	}
	*s = pushStats{}
}

// attrs are the figures idle logs.
func (s *pushStats) attrs() []any {
	return []any{"changes", len(s.commit), "pushes", len(s.requests),
		"took", time.Since(s.first).Round(time.Millisecond),
		// p50/p99 per change of each stage
		"written_to_queued", pctl(s.queued), "queued_to_blob_durable", pctl(s.upload),
		"to_acknowledged", pctl(s.commit), "written_to_acknowledged", pctl(s.total),
		"push_request", pctl(s.requests)}
}

// pending reports whether pushes were recorded since the last idle.
func (s *pushStats) pending() bool { return len(s.requests) > 0 }

// pctl formats the p50 and p99 of ds as "p50/p99".
func pctl(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(p float64) time.Duration {
		return s[min(len(s)-1, int(float64(len(s))*p))].Round(100 * time.Microsecond)
	}
	return at(0.50).String() + "/" + at(0.99).String()
}
