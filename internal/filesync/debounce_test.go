package filesync

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDebouncer(t *testing.T) {
	const q = 20 * time.Millisecond
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	type step struct {
		at    int      // ms since t0
		add   []string // events at that time
		ready []string // what ready returns at that time (after the adds)
		next  int      // when next() says to look again; -1 for nothing pending
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"one write waits for quiet", []step{
			{at: 0, add: []string{"a"}, next: 20},
			{at: 19, next: 20},
			{at: 20, ready: []string{"a"}, next: -1},
		}},
		{"a burst goes out together", []step{
			{at: 0, add: []string{"c"}, next: 20},
			{at: 5, add: []string{"a", "b"}, next: 20},
			{at: 19, next: 20},
			{at: 20, ready: []string{"a", "b", "c"}, next: -1},
		}},
		{"paths written apart go apart", []step{
			{at: 0, add: []string{"a"}, next: 20},
			{at: 10, add: []string{"b"}, next: 20},
			{at: 20, ready: []string{"a"}, next: 30},
			{at: 30, ready: []string{"b"}, next: -1},
		}},
		{"a busy path does not hold back quiet ones", []step{
			{at: 0, add: []string{"quiet", "busy"}, next: 20},
			{at: 10, add: []string{"busy"}, next: 20},
			{at: 20, ready: []string{"quiet"}, next: 30},
			{at: 25, add: []string{"busy"}, next: 45},
			{at: 40, add: []string{"busy"}, next: 60},
			{at: 60, ready: []string{"busy"}, next: -1},
		}},
		{"zero quiet releases at once", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDebouncer(q)
			for _, s := range tt.steps {
				now := ms(s.at)
				for _, p := range s.add {
					d.add(p, now)
				}
				if got := d.ready(now); !cmp.Equal(s.ready, got) {
					t.Fatalf("at %dms: ready = %v, want %v", s.at, got, s.ready)
				}
				at, ok := d.next()
				got := -1
				if ok {
					got = int(at.Sub(t0) / time.Millisecond)
				}
				if got != s.next {
					t.Fatalf("at %dms: next = %dms, want %dms", s.at, got, s.next)
				}
			}
		})
	}
	d := newDebouncer(0)
	d.add("x", t0)
	if got := d.ready(t0); !cmp.Equal([]string{"x"}, got) {
		t.Errorf("zero debounce: ready = %v", got)
	}
}
