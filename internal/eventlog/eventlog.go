// Package eventlog is the controller's event history: the last events in
// memory, for `scalepress events` and its long poll, and every event appended
// to a file of JSON lines, so that the history and its sequence numbers
// survive a restart. It also counts the events added since it was opened, by
// kind, for the controller's metrics.
package eventlog

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"sync"
	"time"

	"github.com/scalepress/scalepress/internal/api"
)

// MaxEvents is how many events a Log keeps in memory.
const MaxEvents = 2000

// Log keeps the last events in memory and appends every event to its file.
type Log struct {
	path string

	mu      sync.Mutex
	events  []api.Event // the last MaxEvents
	seq     uint64
	changed chan struct{} // closed and replaced on every Add
	file    *os.File
	byKind  map[string]uint64 // events added since Open, by kind
}

// Open reads the events already in the file at path, so that the sequence
// continues, and opens it for appending.
func Open(path string) (*Log, error) {
	l := &Log{path: path, changed: make(chan struct{})}
	if f, err := os.Open(path); err == nil {
		s := bufio.NewScanner(f)
		s.Buffer(make([]byte, 64<<10), 1<<20)
		for s.Scan() {
			var e api.Event
			if json.Unmarshal(s.Bytes(), &e) == nil {
				l.events = append(l.events, e)
				if len(l.events) > MaxEvents {
					l.events = l.events[len(l.events)-MaxEvents:]
				}
				l.seq = max(l.seq, e.Seq)
			}
		}
		f.Close()
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	l.file = f
	return l, nil
}

// Add records e, giving it the next sequence number and the time.
func (l *Log) Add(e api.Event) api.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	e.Seq = l.seq
	if l.byKind == nil {
		l.byKind = map[string]uint64{}
	}
	l.byKind[e.Kind]++
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	l.events = append(l.events, e)
	if len(l.events) > MaxEvents {
		l.events = l.events[len(l.events)-MaxEvents:]
	}
	if b, err := json.Marshal(e); err == nil && l.file != nil {
		l.file.Write(append(b, '\n'))
	}
	close(l.changed)
	l.changed = make(chan struct{})
	return e
}

// Since returns the events after seq; if there are none and wait > 0 it
// waits up to wait for one.
func (l *Log) Since(ctx context.Context, seq uint64, wait time.Duration) api.Events {
	deadline := time.After(wait)
	for {
		l.mu.Lock()
		var out []api.Event
		for _, e := range l.events {
			if e.Seq > seq {
				out = append(out, e)
			}
		}
		next, ch := l.seq, l.changed
		l.mu.Unlock()
		if len(out) > 0 || wait <= 0 {
			return api.Events{Events: append([]api.Event{}, out...), Next: next}
		}
		select {
		case <-ch:
		case <-deadline:
			return api.Events{Events: []api.Event{}, Next: next}
		case <-ctx.Done():
			return api.Events{Events: []api.Event{}, Next: next}
		}
	}
}

// Close closes the file; Add after Close keeps events in memory only.
func (l *Log) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.file != nil {
		l.file.Close()
		l.file = nil
	}
}

// CountByKind returns how many events of each kind were added since Open.
func (l *Log) CountByKind() map[string]uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]uint64, len(l.byKind))
	for k, v := range l.byKind {
		out[k] = v
	}
	return out
}
