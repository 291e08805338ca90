package multihost

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// What a write pause after a cut is made of: every write the writer sent
// (when, how long, what error) and the surviving members' Galera log lines
// stamped when they appeared (mariadbd stamps its log to the second only).
// TestGaleraAcrossHosts logs the timeline around the cut and names its
// parts in the failure message.

// attempt is one INSERT the writer sent.
type attempt struct {
	id         int
	start, end time.Time
	err        error
}

// logLine is a line of a member's log and when the follower read it.
type logLine struct {
	member string
	at     time.Time
	text   string
}

// galeraEvents are the substrings of the log lines that make a membership
// change: the cut member suspected, the view rounds, the new primary
// component and the members' state.
var galeraEvents = []string{
	"suspect", "inactive", "declaring", "forgetting", "view(", "view_id(",
	"New COMPONENT", "Quorum results", "PRIMARY", "non-prim", "Primary",
	"members =", "remote endpoint", "connection to peer", "Flow-control",
	"Shifting", "Synchronized", "Lowest cert", "evs::", "gcomm", "timed out",
}

// logFollower reads the logs of members as they grow, every 20 ms, and keeps
// the Galera event lines with the time it read them.
type logFollower struct {
	mu    sync.Mutex
	lines []logLine
}

// follow reads path from offset off until ctx ends. The caller owns the
// goroutine (it runs follow under its WaitGroup).
func (f *logFollower) follow(ctx context.Context, member, path string, off int64) {
	file, err := os.Open(path)
	if err != nil {
		return
	}
	defer file.Close()
	if _, err := file.Seek(off, io.SeekStart); err != nil {
		return
	}
	r := bufio.NewReader(file)
	var partial string
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		for {
			s, err := r.ReadString('\n')
			partial += s
			if err != nil {
				break
			}
			line := strings.TrimRight(partial, "\n")
			partial = ""
			if slices.ContainsFunc(galeraEvents, func(e string) bool { return strings.Contains(line, e) }) {
				f.mu.Lock()
				f.lines = append(f.lines, logLine{member: member, at: time.Now(), text: line})
				f.mu.Unlock()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// first is the time of the first line since since that contains any of subs.
func (f *logFollower) first(since time.Time, subs ...string) (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, l := range f.lines {
		if l.at.Before(since) {
			continue
		}
		for _, s := range subs {
			if strings.Contains(l.text, s) {
				return l.at, true
			}
		}
	}
	return time.Time{}, false
}

// pauseReport is the timeline of a cut: writes from a second before it until
// the first acknowledged after the longest pause that took long or failed,
// and the survivors' Galera lines over the same span.
func pauseReport(w *writer, f *logFollower, cutAt time.Time, until time.Time) string {
	var b strings.Builder
	rel := func(at time.Time) string { return fmt.Sprintf("%+7.3fs", at.Sub(cutAt).Seconds()) }
	type row struct {
		at   time.Time
		text string
	}
	var rows []row
	w.mu.Lock()
	for _, a := range w.attempts {
		if a.end.Before(cutAt.Add(-time.Second)) || a.start.After(until) {
			continue
		}
		d := a.end.Sub(a.start)
		if a.err == nil && d < 200*time.Millisecond {
			continue
		}
		res := "ok"
		if a.err != nil {
			res = a.err.Error()
		}
		rows = append(rows, row{a.start, fmt.Sprintf("write %d sent, returned at %s after %v: %s", a.id, rel(a.end), d.Round(time.Millisecond), res)})
	}
	w.mu.Unlock()
	f.mu.Lock()
	for _, l := range f.lines {
		if l.at.Before(cutAt.Add(-time.Second)) || l.at.After(until) {
			continue
		}
		rows = append(rows, row{l.at, l.member + ": " + l.text})
	}
	f.mu.Unlock()
	slices.SortStableFunc(rows, func(a, b row) int { return a.at.Compare(b.at) })
	for _, r := range rows {
		fmt.Fprintf(&b, "\n  %s %s", rel(r.at), r.text)
	}
	return b.String()
}

// pauseParts names when the survivors' log showed the parts of a pause,
// relative to the cut: the cut member suspected, a non-primary or
// transitional view, the new primary component; "-" when not seen.
func pauseParts(f *logFollower, cutAt time.Time) string {
	part := func(subs ...string) string {
		if at, ok := f.first(cutAt, subs...); ok {
			return fmt.Sprintf("+%.2fs", at.Sub(cutAt).Seconds())
		}
		return "-"
	}
	return fmt.Sprintf("suspected %s, view round %s, new primary %s",
		part("suspect"), part("view(view_id(", "declaring"), part("New COMPONENT: primary = yes"))
}

// evsTimers picks the options that time a member's eviction out of
// wsrep_provider_options ("a = b; c = d; ...").
func evsTimers(opts string) string {
	var out []string
	for _, o := range strings.Split(opts, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(o), "=")
		k = strings.TrimSpace(k)
		if !ok || !slices.Contains([]string{
			"evs.suspect_timeout", "evs.inactive_check_period", "evs.inactive_timeout",
			"evs.keepalive_period", "evs.join_retrans_period", "evs.install_timeout",
			"gmcast.peer_timeout",
		}, k) {
			continue
		}
		out = append(out, k+"="+strings.TrimSpace(v))
	}
	return strings.Join(out, " ")
}
