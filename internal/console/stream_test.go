package console

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scalepress/scalepress/internal/api"
)

// fakeLog is an event log in memory.
type fakeLog struct {
	mu      sync.Mutex
	events  []api.Event
	changed chan struct{}
}

func newFakeLog() *fakeLog { return &fakeLog{changed: make(chan struct{})} }

func (l *fakeLog) add(e api.Event) {
	l.mu.Lock()
	e.Seq = uint64(len(l.events) + 1)
	l.events = append(l.events, e)
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
}

func (l *fakeLog) Since(ctx context.Context, seq uint64, wait time.Duration) api.Events {
	for {
		l.mu.Lock()
		out := append([]api.Event{}, l.events[min(int(seq), len(l.events)):]...)
		next, ch := uint64(len(l.events)), l.changed
		l.mu.Unlock()
		if len(out) > 0 || wait <= 0 {
			return api.Events{Events: out, Next: next}
		}
		select {
		case <-ch:
		case <-time.After(wait):
			return api.Events{Events: []api.Event{}, Next: next}
		case <-ctx.Done():
			return api.Events{Events: []api.Event{}, Next: next}
		}
	}
}

type sse struct{ name, data string }

func readEvent(t *testing.T, r *bufio.Reader) sse {
	t.Helper()
	var ev sse
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended: %v", err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "" && ev.name != "":
			return ev
		case strings.HasPrefix(line, "event: "):
			ev.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			ev.data = strings.TrimPrefix(line, "data: ")
		}
	}
}

// TestStream: a dashboard gets a snapshot with the status and the latest
// events, then each new event and an update every interval; one more than
// MaxClients is refused with 429.
func TestStream(t *testing.T) {
	log := newFakeLog()
	log.add(api.Event{Kind: "config", Message: "site ready"})
	st := api.Status{SiteURL: "http://127.0.0.1:8080", Nodes: []api.NodeStatus{{ID: "node-1", State: api.NodeInService}}, Edges: []api.EdgeStatus{}}
	cfg := DefaultConfig()
	cfg.Status = func() api.Status { return st }
	cfg.Events = log
	cfg.Interval = 20 * time.Millisecond
	cfg.MaxClients = 1
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	c.Handle(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { c.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()

	resp, err := http.Get(srv.URL + api.APIPathConsoleStream)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	r := bufio.NewReader(resp.Body)
	snap := readEvent(t, r)
	var doc api.Console
	if snap.name != "snapshot" || json.Unmarshal([]byte(snap.data), &doc) != nil {
		t.Fatalf("first message %q %q", snap.name, snap.data)
	}
	if len(doc.Status.Nodes) != 1 || len(doc.Events) != 1 || doc.Events[0].Message != "site ready" {
		t.Fatalf("snapshot %+v", doc)
	}

	second, err := http.Get(srv.URL + api.APIPathConsoleStream)
	if err != nil {
		t.Fatal(err)
	}
	second.Body.Close()
	if second.StatusCode != http.StatusTooManyRequests {
		t.Errorf("a dashboard over MaxClients: %d, want 429", second.StatusCode)
	}

	log.add(api.Event{Kind: "scale", Message: "scale out to 2"})
	sawEvent, sawUpdate := false, false
	for !sawEvent || !sawUpdate {
		switch ev := readEvent(t, r); ev.name {
		case "event":
			var e api.Event
			json.Unmarshal([]byte(ev.data), &e)
			if e.Kind != "scale" || e.Seq != 2 {
				t.Fatalf("event %+v", e)
			}
			sawEvent = true
		case "update":
			var u api.ConsoleUpdate
			if err := json.Unmarshal([]byte(ev.data), &u); err != nil || u.Sample.InService != 1 {
				t.Fatalf("update %q: %v", ev.data, err)
			}
			sawUpdate = true
		}
	}
}
