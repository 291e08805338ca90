package filesync

import (
	"slices"
	"time"
)

// debouncer collects the paths the watcher reports and releases each once
// it has been quiet for quiet, so that a file is read after its writer is
// done. A busy file (still being written) waits; the others do not wait for
// it. When one path is released, the paths that have been quiet for nearly
// as long (within slack) go with it, so that a burst (a plugin unzipped, a
// directory of uploads) becomes one push rather than one per file.
type debouncer struct {
	quiet, slack time.Duration
	last         map[string]time.Time // path → its last event
}

func newDebouncer(quiet time.Duration) *debouncer {
	return &debouncer{quiet: quiet, slack: quiet / 4, last: make(map[string]time.Time)}
}

func (d *debouncer) add(p string, now time.Time) { d.last[p] = now }

// next returns when ready should be called; ok is false when nothing is
// pending.
func (d *debouncer) next() (at time.Time, ok bool) {
	for _, t := range d.last {
		if !ok || t.Before(at) {
			at, ok = t, true
		}
	}
	return at.Add(d.quiet), ok
}

// ready removes and returns, sorted, the paths released at now.
func (d *debouncer) ready(now time.Time) []string {
	if at, ok := d.next(); !ok || now.Before(at) {
		return nil
	}
	var out []string
	for p, t := range d.last {
		if now.Sub(t) >= d.quiet-d.slack {
			out = append(out, p)
			delete(d.last, p)
		}
	}
	slices.Sort(out)
	return out
}
