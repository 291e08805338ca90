package balancer

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func states(b *Balancer) map[string]string {
	out := map[string]string{}
	for _, ns := range b.Snapshot().Nodes {
		out[ns.ID] = ns.State
	}
	return out
}

func TestUpdateDrainsMissingNodes(t *testing.T) {
	b, clk := newTest(t, DefaultConfig(), "a", "b")
	clk.Advance(time.Minute) // past slow start
	held, err := b.Pick("b")
	if err != nil || held.ID() != "a" {
		t.Fatalf("Pick(exclude b) = %v, %v", held, err)
	}
	b.Update(ups("b", "c"))
	if diff := cmp.Diff(map[string]string{"a": StateDraining, "b": StateInService, "c": StateWarming}, states(b)); diff != "" {
		t.Fatalf("after Update (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"b", "c"}, keys(pickCounts(t, b, 500))); diff != "" {
		t.Errorf("picks while a drains (-want +got):\n%s", diff)
	}
	drained := b.Drained("a")
	if isClosed(drained) {
		t.Fatal("Drained(a) closed with a request in flight")
	}
	held.Done(OK)
	if !isClosed(drained) {
		t.Fatal("Drained(a) open after the last request")
	}
	if got := states(b)["a"]; got != StateDrained {
		t.Errorf("a = %s, want %s", got, StateDrained)
	}

	// The controller lists a again: back in service, in slow start.
	clk.Advance(time.Second)
	b.Update(ups("a", "b", "c"))
	if got := states(b)["a"]; got != StateWarming {
		t.Errorf("a listed again = %s, want %s", got, StateWarming)
	}
	if isClosed(b.Drained("a")) {
		t.Error("Drained(a) closed after a came back")
	}
}

func TestDrainIsSticky(t *testing.T) {
	b, _ := newTest(t, noSlowStart(), "a", "b")
	if err := b.Drain("a"); err != nil {
		t.Fatal(err)
	}
	b.Update(ups("a", "b"))
	if got := states(b)["a"]; got != StateDrained {
		t.Fatalf("explicitly drained a after Update listing it = %s, want %s", got, StateDrained)
	}
	if err := b.Remove("a"); err != nil {
		t.Fatal(err)
	}
	b.Update(ups("a", "b"))
	if got := states(b)["a"]; got != StateInService {
		t.Errorf("a listed after Remove = %s, want %s", got, StateInService)
	}
}

func TestDrainErrors(t *testing.T) {
	b, _ := newTest(t, noSlowStart(), "a")
	if err := b.Drain("x"); !errors.Is(err, ErrUnknownNode) {
		t.Errorf("Drain(x) = %v, want ErrUnknownNode", err)
	}
	if err := b.Remove("x"); !errors.Is(err, ErrUnknownNode) {
		t.Errorf("Remove(x) = %v, want ErrUnknownNode", err)
	}
	if !isClosed(b.Drained("x")) {
		t.Error("Drained(x) of an unknown node is open")
	}
	if err := b.WaitDrained(context.Background(), "x"); err != nil {
		t.Errorf("WaitDrained(x) = %v", err)
	}
	if err := b.Drain("a"); err != nil {
		t.Fatal(err)
	}
	if err := b.Drain("a"); err != nil {
		t.Errorf("second Drain(a) = %v", err)
	}
}

func TestWaitDrained(t *testing.T) {
	b, _ := newTest(t, noSlowStart(), "a")
	n, err := b.Pick()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Drain("a"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Pick(); !errors.Is(err, ErrNoUpstream) {
		t.Fatalf("Pick() with the only node draining = %v, want ErrNoUpstream", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.WaitDrained(ctx, "a"); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitDrained with a request in flight = %v, want context.Canceled", err)
	}
	done := make(chan error)
	go func() { done <- b.WaitDrained(context.Background(), "a") }()
	n.Done(OK)
	if err := <-done; err != nil {
		t.Fatalf("WaitDrained = %v", err)
	}
}

func TestRemoveWithRequestInFlight(t *testing.T) {
	b, _ := newTest(t, noSlowStart(), "a", "b")
	n, err := b.Pick("b")
	if err != nil {
		t.Fatal(err)
	}
	drained := b.Drained("a")
	if err := b.Remove("a"); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"b": StateInService}, states(b)); diff != "" {
		t.Fatalf("after Remove (-want +got):\n%s", diff)
	}
	if isClosed(drained) {
		t.Fatal("drained closed before the request ended")
	}
	n.Done(ConnError) // no ejection of a node that is gone, no panic
	if !isClosed(drained) {
		t.Fatal("drained open after the request ended")
	}
}

func TestUpdateAddressChange(t *testing.T) {
	b, _ := newTest(t, noSlowStart(), "a")
	old, err := b.Pick()
	if err != nil {
		t.Fatal(err)
	}
	b.Update([]Upstream{{ID: "a", Addr: "10.0.0.9:80"}})
	n, err := b.Pick()
	if err != nil {
		t.Fatal(err)
	}
	if n.Addr() != "10.0.0.9:80" {
		t.Errorf("Pick().Addr() = %s after the address changed", n.Addr())
	}
	old.Done(OK)
	n.Done(OK)
	if got := state(t, b, "a").InFlight; got != 0 {
		t.Errorf("a in flight = %d, want 0", got)
	}
}

func TestUpdateIgnoresBadEntries(t *testing.T) {
	b, _ := newTest(t, noSlowStart())
	b.Update([]Upstream{{ID: "a", Addr: "x:1"}, {ID: "", Addr: "y:1"}, {ID: "a", Addr: "z:1"}})
	got := b.Snapshot().Nodes
	if len(got) != 1 || got[0].Addr != "x:1" {
		t.Errorf("Snapshot().Nodes = %+v, want only a at x:1", got)
	}
}
