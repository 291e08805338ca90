package balancer

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// admitConfig is admission control with limit places per node, backlog
// waiting places per node and a 3 s wait.
func admitConfig(limit, backlog int) Config {
	cfg := noSlowStart()
	cfg.NodeLimit = limit
	cfg.QueueBacklog = backlog
	cfg.QueueTimeout = 3 * time.Second
	return cfg
}

func newAdmit(t *testing.T, cfg Config, ids ...string) *Balancer {
	t.Helper()
	b, err := New(cfg, nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	b.Update(ups(ids...))
	return b
}

type acquired struct {
	n   *Node
	err error
	at  time.Duration // since the test started
}

// acquireAsync starts an Acquire for client and returns where its result
// arrives.
func acquireAsync(ctx context.Context, b *Balancer, client string, t0 time.Time) <-chan acquired {
	ch := make(chan acquired, 1)
	go func() {
		n, err := b.Acquire(ctx, client)
		ch <- acquired{n, err, time.Since(t0)}
	}()
	return ch
}

func mustAcquire(t *testing.T, b *Balancer, client string) *Node {
	t.Helper()
	n, err := b.Acquire(t.Context(), client)
	if err != nil {
		t.Fatalf("Acquire(%q): %v", client, err)
	}
	return n
}

func TestAcquireLimitQueueAndHandover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newAdmit(t, admitConfig(2, 1), "a")
		t0 := time.Now()
		held := []*Node{mustAcquire(t, b, "c1"), mustAcquire(t, b, "c2")}
		waiting := acquireAsync(t.Context(), b, "c3", t0)
		synctest.Wait()
		select {
		case r := <-waiting:
			t.Fatalf("third request not queued: %+v", r)
		default:
		}
		// The queue (1 place) is full: the client's next is refused at once.
		if _, err := b.Acquire(t.Context(), "c3"); !errors.Is(err, ErrOverloaded) {
			t.Fatalf("queue full: err = %v, want ErrOverloaded", err)
		}
		time.Sleep(500 * time.Millisecond)
		held[0].Done(OK)
		r := <-waiting
		if r.err != nil || r.n.ID() != "a" || r.at != 500*time.Millisecond {
			t.Fatalf("waiter got %+v, want node a after 500ms", r)
		}
		if got := node(t, b, "a").inflight.Load(); got != 2 {
			t.Errorf("in flight after handover = %d, want 2 (the slot moved)", got)
		}
		r.n.Done(OK)
		held[1].Done(OK)
		got := b.Admission()
		want := AdmissionStats{Admitted: 2, Dequeued: 1, RejectedFull: 1, WaitTotal: 500 * time.Millisecond}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("stats (-want +got):\n%s", d)
		}
	})
}

func TestAcquireTimesOutAtQueueTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newAdmit(t, admitConfig(1, 4), "a")
		t0 := time.Now()
		n := mustAcquire(t, b, "c1")
		r := <-acquireAsync(t.Context(), b, "c2", t0)
		if !errors.Is(r.err, ErrOverloaded) || r.at != 3*time.Second {
			t.Fatalf("got err %v after %s, want ErrOverloaded after 3s", r.err, r.at)
		}
		n.Done(OK)
		if got := b.Admission(); got.RejectedWait != 1 || got.Waiting != 0 {
			t.Errorf("stats %+v, want 1 rejected for the wait and nobody waiting", got)
		}
		// The place is free again: no leftover waiter took it.
		mustAcquire(t, b, "c3").Done(OK)
	})
}

func TestAcquireCanceledWhileWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newAdmit(t, admitConfig(1, 4), "a")
		n := mustAcquire(t, b, "c1")
		ctx, cancel := context.WithCancel(t.Context())
		ch := acquireAsync(ctx, b, "c2", time.Now())
		synctest.Wait()
		cancel()
		if r := <-ch; !errors.Is(r.err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", r.err)
		}
		n.Done(OK)
		if got := node(t, b, "a").inflight.Load(); got != 0 {
			t.Errorf("in flight = %d, want 0: the canceled waiter took no place", got)
		}
	})
}

// One client's flood takes only its share of the queue and of the places
// freed: another client's request gets in and is served next.
func TestAcquireFairBetweenClients(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newAdmit(t, admitConfig(1, 3), "a")
		t0 := time.Now()
		held := mustAcquire(t, b, "flood")
		var flood []<-chan acquired
		for range 3 {
			flood = append(flood, acquireAsync(t.Context(), b, "flood", t0))
			synctest.Wait()
		}
		// The queue is full of the flood: a fourth flood request is refused...
		if _, err := b.Acquire(t.Context(), "flood"); !errors.Is(err, ErrOverloaded) {
			t.Fatalf("flood's 5th: err = %v, want ErrOverloaded", err)
		}
		// ...but another client's takes the place of the flood's newest.
		other := acquireAsync(t.Context(), b, "other", t0)
		synctest.Wait()
		if r := <-flood[2]; !errors.Is(r.err, ErrOverloaded) {
			t.Fatalf("flood's newest waiter: err = %v, want ErrOverloaded (dropped for the other client)", r.err)
		}
		var order []string
		next := held
		for range 3 {
			next.Done(OK)
			select {
			case r := <-flood[0]:
				order, next, flood[0] = append(order, "flood"), r.n, nil
			case r := <-flood[1]:
				order, next, flood[1] = append(order, "flood"), r.n, nil
			case r := <-other:
				order, next = append(order, "other"), r.n
			}
		}
		next.Done(OK)
		// Round robin: the flood's oldest (it queued first), then the other
		// client, then the flood again.
		if d := cmp.Diff([]string{"flood", "other", "flood"}, order); d != "" {
			t.Errorf("service order (-want +got):\n%s", d)
		}
	})
}

// However many requests race, no node ever has more than NodeLimit in
// flight, every request is answered within QueueTimeout, and none is lost.
func TestAcquireNeverOverLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const limit = 3
		b := newAdmit(t, admitConfig(limit, 2), "a", "b")
		var maxSeen atomic.Int64
		var ok, refused atomic.Int64
		var wg sync.WaitGroup
		for i := range 200 {
			wg.Go(func() {
				time.Sleep(time.Duration(i%20) * 7 * time.Millisecond)
				start := time.Now()
				n, err := b.Acquire(t.Context(), string(rune('A'+i%5)))
				if took := time.Since(start); took > 3*time.Second {
					t.Errorf("Acquire took %s, more than QueueTimeout", took)
				}
				if err != nil {
					if !errors.Is(err, ErrOverloaded) {
						t.Errorf("err = %v, want ErrOverloaded", err)
					}
					refused.Add(1)
					return
				}
				if f := n.inflight.Load(); f > maxSeen.Load() {
					maxSeen.Store(f)
				}
				time.Sleep(20 * time.Millisecond)
				n.Done(OK)
				ok.Add(1)
			})
		}
		wg.Wait()
		if maxSeen.Load() > limit {
			t.Errorf("a node had %d in flight, limit %d", maxSeen.Load(), limit)
		}
		if ok.Load()+refused.Load() != 200 || ok.Load() == 0 || refused.Load() == 0 {
			t.Errorf("ok %d + refused %d, want 200 in all with some of each", ok.Load(), refused.Load())
		}
		for _, id := range []string{"a", "b"} {
			if f := node(t, b, id).inflight.Load(); f != 0 {
				t.Errorf("node %s: %d left in flight", id, f)
			}
		}
	})
}

func TestAcquireNewNodeTakesWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newAdmit(t, admitConfig(1, 4), "a")
		mustAcquire(t, b, "c1")
		ch := acquireAsync(t.Context(), b, "c2", time.Now())
		synctest.Wait()
		b.Update(ups("a", "b"))
		if r := <-ch; r.err != nil || r.n.ID() != "b" {
			t.Fatalf("waiter got %+v, want node b once it joined", r)
		}
	})
}

func TestAcquireExcludedAndNoUpstream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newAdmit(t, admitConfig(1, 4), "a")
		if _, err := b.Acquire(t.Context(), "c", "a"); !errors.Is(err, ErrNoUpstream) {
			t.Errorf("only node excluded: err = %v, want ErrNoUpstream", err)
		}
		b.Update(nil)
		if _, err := b.Acquire(t.Context(), "c"); !errors.Is(err, ErrNoUpstream) {
			t.Errorf("no node: err = %v, want ErrNoUpstream", err)
		}
	})
}

func TestAcquireOffIsPick(t *testing.T) {
	b := newAdmit(t, noSlowStart(), "a")
	var held []*Node
	for range 50 {
		held = append(held, mustAcquire(t, b, "c"))
	}
	for _, n := range held {
		n.Done(OK)
	}
}

// No place is ever lost: with room in the queue and work far below what
// the nodes do within QueueTimeout, every request gets a node, however
// arrivals and releases interleave.
func TestAcquireNoLostWakeup(t *testing.T) {
	for seed := range 20 {
		synctest.Test(t, func(t *testing.T) {
			b := newAdmit(t, admitConfig(2, 200), "a", "b")
			var wg sync.WaitGroup
			var failed atomic.Int64
			for i := range 400 {
				wg.Go(func() {
					time.Sleep(time.Duration((i*7+seed*13)%50) * time.Millisecond)
					n, err := b.Acquire(t.Context(), string(rune('A'+(i+seed)%7)))
					if err != nil {
						failed.Add(1)
						return
					}
					if (i+seed)%3 == 0 {
						time.Sleep(time.Millisecond)
					}
					runtime.Gosched()
					n.Done(OK)
				})
			}
			wg.Wait()
			if f := failed.Load(); f > 0 {
				t.Errorf("seed %d: %d of 400 requests refused, none should be (stats %+v)", seed, f, b.Admission())
			}
		})
	}
}

// TestPickBodyIsNotMetered: requests with bodies (which may still be
// arriving, holding no PHP worker) neither wait nor count toward the node
// limit until released; in flight all the same, so a drain waits for them.
func TestPickBodyIsNotMetered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newAdmit(t, admitConfig(1, 1), "a")
		var releases []func()
		var bodies []*Node
		for range 4 { // more than the limit: slow uploads
			n, release, err := b.PickBody()
			if err != nil {
				t.Fatal(err)
			}
			bodies, releases = append(bodies, n), append(releases, release)
		}
		// A page view is admitted at once despite the four uploads.
		page := mustAcquire(t, b, "visitor")
		if got := node(t, b, "a").inflight.Load(); got != 5 {
			t.Errorf("in flight = %d, want 5 (uploads count for drains)", got)
		}
		page.Done(OK)
		// Released (the node answered), an upload counts: the limit is
		// reached and the next page view queues.
		releases[0]()
		releases[0]() // idempotent
		waiting := acquireAsync(t.Context(), b, "visitor", time.Now())
		synctest.Wait()
		select {
		case r := <-waiting:
			t.Fatalf("page view admitted over the limit: %+v", r)
		default:
		}
		bodies[0].Done(OK)
		if r := <-waiting; r.err != nil {
			t.Fatalf("page view after the upload ended: %v", r.err)
		} else {
			r.n.Done(OK)
		}
		for i := 1; i < 4; i++ {
			releases[i]()
			bodies[i].Done(OK)
		}
	})
}
