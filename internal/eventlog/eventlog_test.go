package eventlog

import (
	"context"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/scalepress/scalepress/internal/api"
)

func TestEventLogPersistsAndWaits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.log")
	synctest.Test(t, func(t *testing.T) {
		l, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		l.Add(api.Event{Kind: "scale", Message: "1 → 2"})
		l.Add(api.Event{Kind: "node", Message: "node-2 in service"})
		page := l.Since(context.Background(), 1, 0)
		if len(page.Events) != 1 || page.Events[0].Seq != 2 || page.Next != 2 {
			t.Fatalf("Since(1) = %+v", page)
		}
		done := make(chan api.Events)
		go func() { done <- l.Since(context.Background(), 2, 5*time.Second) }()
		synctest.Wait() // the long poll waits
		l.Add(api.Event{Kind: "heal", Message: "replaced"})
		if got := <-done; len(got.Events) != 1 || got.Events[0].Kind != "heal" {
			t.Errorf("long poll got %+v", got)
		}
		t0 := time.Now()
		if got := l.Since(context.Background(), 3, 5*time.Second); len(got.Events) != 0 || time.Since(t0) != 5*time.Second {
			t.Errorf("long poll without an event: %+v after %s", got, time.Since(t0))
		}
		l.Close()
	})

	// A restarted controller continues the sequence.
	l2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if e := l2.Add(api.Event{Kind: "config", Message: "again"}); e.Seq != 4 {
		t.Errorf("seq after reopen = %d, want 4", e.Seq)
	}
	if got := l2.CountByKind(); got["config"] != 1 || got["scale"] != 0 {
		t.Errorf("counts of this controller: %v", got)
	}
}
