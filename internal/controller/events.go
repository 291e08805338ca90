package controller

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/scalepress/scalepress/internal/api"
)

// event records an event and logs it.
func (c *Controller) event(kind, node, format string, args ...any) {
	c.eventWith(kind, node, nil, format, args...)
}

func (c *Controller) eventWith(kind, node string, inputs map[string]any, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if c.events != nil {
		c.events.Add(api.Event{Kind: kind, Node: node, Message: msg, Inputs: inputs})
	}
	c.logger.Info(msg, "kind", kind, "node", node)
}

// eventLog keeps the last events in memory and appends every event to
// DIR/events.log (JSON lines), so the history survives a controller restart.
type eventLog struct {
	path string

	mu      sync.Mutex
	events  []api.Event // the last maxEvents
	seq     uint64
	changed chan struct{} // closed and replaced on every Add
	file    *os.File
	byKind  map[string]uint64 // events added by this controller, by kind
}

const maxEvents = 2000

func openEventLog(path string) (*eventLog, error) {
	l := &eventLog{path: path, changed: make(chan struct{})}
	if f, err := os.Open(path); err == nil {
		s := bufio.NewScanner(f)
		s.Buffer(make([]byte, 64<<10), 1<<20)
		for s.Scan() {
			var e api.Event
			if json.Unmarshal(s.Bytes(), &e) == nil {
				l.events = append(l.events, e)
				if len(l.events) > maxEvents {
					l.events = l.events[len(l.events)-maxEvents:]
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
func (l *eventLog) Add(e api.Event) api.Event {
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
	if len(l.events) > maxEvents {
		l.events = l.events[len(l.events)-maxEvents:]
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
func (l *eventLog) Since(ctx context.Context, seq uint64, wait time.Duration) api.Events {
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

func (l *eventLog) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.file != nil {
		l.file.Close()
		l.file = nil
	}
}

func (l *eventLog) countByKind() map[string]uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]uint64, len(l.byKind))
	for k, v := range l.byKind {
		out[k] = v
	}
	return out
}
