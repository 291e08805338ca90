package balancer

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"sort"
	"sync"
	"testing"
	"time"
)

// fakeClock is the injected clock of the tests that do not need goroutines;
// the ones that do use testing/synctest.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func ups(ids ...string) []Upstream {
	out := make([]Upstream, len(ids))
	for i, id := range ids {
		out[i] = Upstream{ID: id, Addr: id + ":80"}
	}
	return out
}

// newTest returns a balancer on a fake clock holding ids.
func newTest(t testing.TB, cfg Config, ids ...string) (*Balancer, *fakeClock) {
	t.Helper()
	clk := newFakeClock()
	b, err := newBalancer(cfg, nil, testLogger(t), clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	b.Update(ups(ids...))
	return b, clk
}

// noSlowStart is DefaultConfig without slow start, for tests about
// something else.
func noSlowStart() Config {
	cfg := DefaultConfig()
	cfg.SlowStart = 0
	return cfg
}

func node(t testing.TB, b *Balancer, id string) *Node {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	n, ok := b.nodes[id]
	if !ok {
		t.Fatalf("no node %s", id)
	}
	return n
}

// report runs one request on id with outcome o, as the edge would after a
// Pick that returned id.
func report(t testing.TB, b *Balancer, id string, o Outcome) {
	n := node(t, b, id)
	n.inflight.Add(1)
	n.Done(o)
}

// pickCounts picks (and finishes at once) rounds times and counts the picks
// per node ID; ErrNoUpstream counts under "".
func pickCounts(t testing.TB, b *Balancer, rounds int, exclude ...string) map[string]int {
	t.Helper()
	counts := make(map[string]int)
	for range rounds {
		n, err := b.Pick(exclude...)
		if errors.Is(err, ErrNoUpstream) {
			counts[""]++
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		counts[n.ID()]++
		n.Done(OK)
	}
	return counts
}

func keys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func state(t testing.TB, b *Balancer, id string) NodeStatus {
	t.Helper()
	for _, ns := range b.Snapshot().Nodes {
		if ns.ID == id {
			return ns
		}
	}
	t.Fatalf("no node %s in snapshot", id)
	return NodeStatus{}
}

// fakeChecker fails the addresses in its set.
type fakeChecker struct {
	mu     sync.Mutex
	failed map[string]bool
	checks map[string]int
}

func newFakeChecker() *fakeChecker {
	return &fakeChecker{failed: map[string]bool{}, checks: map[string]int{}}
}

func (c *fakeChecker) Check(ctx context.Context, addr string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checks[addr]++
	if c.failed[addr] {
		return errors.New("connection refused")
	}
	return nil
}

func (c *fakeChecker) set(addr string, failed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failed[addr] = failed
}

var _ Checker = (*fakeChecker)(nil)
