package console

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestHubBounded(t *testing.T) {
	h := NewHub(2, 4)
	a, err := h.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Subscribe(); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Subscribe(); !errors.Is(err, ErrFull) {
		t.Fatalf("third subscriber of two: %v, want ErrFull", err)
	}
	h.Unsubscribe(a)
	if _, err := h.Subscribe(); err != nil {
		t.Fatalf("after one left: %v", err)
	}
	h.Close()
	if _, err := h.Subscribe(); !errors.Is(err, ErrFull) {
		t.Fatalf("after Close: %v", err)
	}
}

// TestHubDropsSlowClient: a subscriber that reads nothing is dropped once
// its buffer is full; Publish never waits for it and the others get every
// message.
func TestHubDropsSlowClient(t *testing.T) {
	h := NewHub(8, 3)
	slow, _ := h.Subscribe()
	fast, _ := h.Subscribe()
	var got []string
	for i := range 10 {
		h.Publish("update", fmt.Appendf(nil, "%d", i)) // would block forever if it waited for slow
		for len(fast.C) > 0 {
			got = append(got, string((<-fast.C).data))
		}
	}
	if d := cmp.Diff([]string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}, got); d != "" {
		t.Errorf("the reading subscriber (-want +got):\n%s", d)
	}
	select {
	case <-slow.Gone():
	default:
		t.Fatal("the slow subscriber was not dropped")
	}
	if len(slow.C) != 3 {
		t.Errorf("slow subscriber holds %d messages, want its buffer of 3", len(slow.C))
	}
	if h.Len() != 1 || h.Dropped() != 1 {
		t.Errorf("Len %d Dropped %d, want 1 and 1", h.Len(), h.Dropped())
	}
	select {
	case <-fast.Gone():
		t.Fatal("the reading subscriber was dropped")
	default:
	}
	h.Unsubscribe(slow) // a handler leaving after the drop: no panic, no change
	if h.Len() != 1 {
		t.Errorf("Len %d after unsubscribing a dropped subscriber", h.Len())
	}
}
