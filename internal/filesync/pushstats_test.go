package filesync

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestPushStats: each pushed change's stages, and a burst logged only
// from backlogLog changes.
func TestPushStats(t *testing.T) {
	base := time.Unix(1000, 0)
	ms := func(n int) time.Time { return base.Add(time.Duration(n) * time.Millisecond) }
	var s pushStats
	s.pushed([]pushStamp{
		{written: ms(0), queued: ms(20), uploaded: ms(50)},
		{written: ms(5), queued: ms(25)}, // a delete: no blob
		{queued: ms(30), uploaded: ms(40)},
		{written: ms(0)}, // queued by an earlier run: not counted
	}, 15*time.Millisecond, ms(70))
	got := map[string]any{"queued": s.queued, "upload": s.upload, "commit": s.commit, "total": s.total, "requests": s.requests}
	d := func(ns ...int) []time.Duration {
		var out []time.Duration
		for _, n := range ns {
			out = append(out, time.Duration(n)*time.Millisecond)
		}
		return out
	}
	want := map[string]any{
		"queued": d(20, 20), "upload": d(30, 10), "commit": d(20, 45, 30),
		"total": d(70, 65), "requests": d(15),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stages (-want +got):\n%s", diff)
	}
	if got := pctl(d(1, 2, 3, 4, 100)); got != "3ms/100ms" {
		t.Errorf("pctl = %q, want 3ms/100ms", got)
	}
	if !s.pending() {
		t.Error("no burst pending after a push")
	}
	s.idle(testLogger(t)) // 3 changes: not logged, reset
	if s.pending() {
		t.Error("a burst still pending after idle")
	}
}

// TestRecvStats: a remote burst's puts are counted until a change taken
// after burstQuiet without one, which starts the next burst; deletes end
// nothing and count nothing.
func TestRecvStats(t *testing.T) {
	base := time.Unix(1000, 0)
	ms := func(n int) time.Time { return base.Add(time.Duration(n) * time.Millisecond) }
	put := func(written int) Change { return Change{Op: OpPut, Path: "p", MTime: ms(written).UnixNano()} }
	var r recvStats
	r.applied(put(0), ms(50), ms(60), testLogger(t))
	r.applied(Change{Op: OpDelete, Path: "d"}, ms(70), ms(71), testLogger(t))
	r.applied(put(10), ms(80), ms(100), testLogger(t))
	want := []time.Duration{50 * time.Millisecond, 70 * time.Millisecond}
	if diff := cmp.Diff(want, r.toSeen); diff != "" {
		t.Errorf("written to taken (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]time.Duration{10 * time.Millisecond, 20 * time.Millisecond}, r.seenToApplied); diff != "" {
		t.Errorf("taken to applied (-want +got):\n%s", diff)
	}
	r.applied(put(150), ms(80).Add(burstQuiet+time.Millisecond), ms(300), testLogger(t))
	if len(r.toSeen) != 1 {
		t.Errorf("after a quiet gap the burst holds %d puts, want 1 (a new burst)", len(r.toSeen))
	}
}
