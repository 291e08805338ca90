package filesync

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestUploaderFinished: a push takes the longest head of the queue whose
// puts' blobs are all uploaded, so that a record is never pushed before
// its blob is durable, nor before an earlier change (log order), and a
// unit only whole.
func TestUploaderFinished(t *testing.T) {
	put := func(id uint64) queued { return queued{ID: id, Change: Change{Op: OpPut, Path: "p"}} }
	del := func(id uint64) queued { return queued{ID: id, Change: Change{Op: OpDelete, Path: "d"}} }
	unit := func(q queued) queued { q.Unit, q.UnitID, q.UnitSize = "wp-content/plugins/x", 1, 3; return q }
	errNet := errors.New("connection refused")
	at := time.Unix(100, 0)
	done := func(err error) *upload { return &upload{done: true, err: err, at: at} }
	tests := []struct {
		name  string
		batch []queued
		ups   map[uint64]*upload
		want  int // length of the head pushed
	}{
		{"all up", []queued{put(1), put(2), put(3)}, map[uint64]*upload{1: done(nil), 2: done(nil), 3: done(nil)}, 3},
		{"a later blob up before an earlier one waits for it", []queued{put(1), put(2), put(3)}, map[uint64]*upload{1: done(nil), 2: {}, 3: done(nil)}, 1},
		{"head still uploading", []queued{put(1), put(2)}, map[uint64]*upload{1: {}, 2: done(nil)}, 0},
		{"head not started", []queued{put(1), put(2)}, map[uint64]*upload{2: done(nil)}, 0},
		{"a delete needs no upload", []queued{put(1), del(2), put(3), del(4)}, map[uint64]*upload{1: done(nil), 3: done(nil)}, 4},
		{"a delete waits behind an upload", []queued{del(1), put(2), del(3)}, map[uint64]*upload{2: {}}, 1},
		{"stale and refused go (dropped by commit)", []queued{put(1), put(2), put(3)}, map[uint64]*upload{1: done(nil), 2: done(errStale), 3: done(&RejectError{Rule: RuleTooLarge})}, 3},
		{"a failure to retry ends the head", []queued{put(1), put(2), put(3)}, map[uint64]*upload{1: done(nil), 2: done(errNet), 3: done(nil)}, 1},
		{"a failure to retry at the head goes to commit, which returns it", []queued{put(1), put(2)}, map[uint64]*upload{1: done(errNet), 2: done(nil)}, 2},
		{"a unit not all up waits", []queued{unit(put(1)), unit(put(2)), unit(del(3))}, map[uint64]*upload{1: done(nil), 2: {}}, 0},
		{"a unit all up", []queued{unit(put(1)), unit(put(2)), unit(del(3))}, map[uint64]*upload{1: done(nil), 2: done(nil)}, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := &uploader{m: tc.ups}
			errs, ats := u.finished(tc.batch)
			if len(errs) != tc.want || len(ats) != tc.want {
				t.Fatalf("finished = %d changes (%d times), want %d", len(errs), len(ats), tc.want)
			}
			for i, q := range tc.batch[:tc.want] {
				var wantErr error
				var wantAt time.Time
				if up, ok := tc.ups[q.ID]; ok {
					wantErr, wantAt = up.err, up.at
				}
				if errs[i] != wantErr || !ats[i].Equal(wantAt) {
					t.Errorf("change %d: err %v at %v, want %v at %v", q.ID, errs[i], ats[i], wantErr, wantAt)
				}
			}
		})
	}
}

// TestUploaderForget: a change that left the uploader before its upload
// started is not uploaded (the queue no longer holds it), and one added
// again after a failed push is uploaded again.
func TestUploaderForget(t *testing.T) {
	a := &Agent{cfg: AgentConfig{Uploaders: 1}}
	u := &uploader{a: a, ctx: t.Context(), ready: make(chan struct{}, 1), m: make(map[uint64]*upload), stopped: true}
	q := queued{ID: 7, Change: Change{Op: OpPut, Path: "p"}}
	u.add([]queued{q}) // stopped: lined up, not started
	if diff := cmp.Diff([]uint64{7}, todoIDs(u)); diff != "" {
		t.Fatalf("lined up (-want +got):\n%s", diff)
	}
	u.forget([]queued{q})
	if _, ok := u.m[7]; ok || !u.todo[0].forgotten {
		t.Fatal("forget left change 7's upload in place")
	}
	u.add([]queued{q})
	if up := u.m[7]; up == nil || up.forgotten || up.done {
		t.Fatalf("change 7 added again: %+v, want a fresh upload", up)
	}
}

func todoIDs(u *uploader) []uint64 {
	var ids []uint64
	for id, up := range u.m {
		for _, td := range u.todo {
			if td == up {
				ids = append(ids, id)
			}
		}
	}
	return ids
}

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

// TestPushPipelinesUploads: while a push commits, the blob of a change
// queued after it is uploaded already, but its record waits for the push
// before it (log order) and is acknowledged only after that one.
func TestPushPipelinesUploads(t *testing.T) {
	c := newCluster(t)
	store := c.srv.srv.store
	var armed atomic.Bool
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	let := func() { once.Do(func() { close(release) }) }
	store.testHookCommit = func() {
		if armed.CompareAndSwap(true, false) {
			entered <- struct{}{}
			<-release
		}
	}
	a := newTestAgent(t, c.srv.url, c.base, "node-a")
	a.a.cfg.Pipeline = true
	a.bootstrap()
	a.start()
	t.Cleanup(let) // before the agent stops (cleanups run last first)
	armed.Store(true)
	a.write("one.txt", "one")
	<-entered // one.txt's push is committing, held
	a.write("two.txt", "two")
	waitFor(t, 10*time.Second, "two.txt's blob uploaded while one.txt's push commits", func() bool {
		ok, err := store.blobs.Has(t.Context(), hashBytes([]byte("two")))
		return err == nil && ok
	})
	if _, ok := store.Lookup("two.txt"); ok {
		t.Fatal("two.txt was committed before the push ahead of it")
	}
	let()
	waitFor(t, 10*time.Second, "both files in the store", func() bool {
		_, one := store.Lookup("one.txt")
		_, two := store.Lookup("two.txt")
		return one && two
	})
	s1, _ := store.PathSeq("one.txt")
	s2, _ := store.PathSeq("two.txt")
	if s1 >= s2 {
		t.Errorf("one.txt at seq %d, two.txt at %d: want one.txt first", s1, s2)
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
