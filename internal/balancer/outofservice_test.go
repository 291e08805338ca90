package balancer

import (
	"testing"
	"testing/synctest"
	"time"
)

// TestOutOfServiceEjection: an ejection for errors cancels the node's
// OutOfService context, one for saturation and a drain do not, and the end
// of the ejection gives a new, live one.
func TestOutOfServiceEjection(t *testing.T) {
	tests := []struct {
		name   string
		cfg    func(*Config)
		act    func(t *testing.T, b *Balancer)
		cancel bool
	}{
		{name: "connection errors", cancel: true, act: func(t *testing.T, b *Balancer) {
			for range 5 {
				report(t, b, "a", ConnError)
			}
		}},
		{name: "node 5xx", cancel: true, act: func(t *testing.T, b *Balancer) {
			for range 5 {
				report(t, b, "a", Status5xx)
			}
		}},
		{name: "four errors", act: func(t *testing.T, b *Balancer) {
			for range 4 {
				report(t, b, "a", ConnError)
			}
		}},
		{name: "saturation", cfg: satEject(1), act: func(t *testing.T, b *Balancer) { report(t, b, "a", Saturated) }},
		{name: "drain", act: func(t *testing.T, b *Balancer) {
			if err := b.Drain("a"); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "dropped by Update", act: func(t *testing.T, b *Balancer) { b.Update(ups("b", "c")) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := noSlowStart()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			b, clk := newTest(t, cfg, "a", "b", "c")
			a := node(t, b, "a")
			ctx := a.OutOfService()
			var watched, stopped countDown
			var dw1, dw2, dw3 DownWatch
			if !a.WatchDown(&dw1, &watched) || !a.WatchDown(&dw2, &stopped) || !a.WatchDown(&dw3, &watched) {
				t.Fatal("WatchDown refused a node in service")
			}
			dw2.Stop()
			tt.act(t, b)
			if got := ctx.Err() != nil; got != tt.cancel {
				t.Fatalf("OutOfService cancelled: %v, want %v", got, tt.cancel)
			}
			if want := map[bool]int{true: 2}[tt.cancel]; watched.n != want || stopped.n != 0 {
				t.Fatalf("NodeDown told %d watches and %d stopped ones, want %d and 0", watched.n, stopped.n, want)
			}
			dw1.Stop() // after NodeDown: nothing left to unlink
			if !tt.cancel {
				return
			}
			if a.WatchDown(new(DownWatch), &watched) {
				t.Error("WatchDown registered on a node out of service")
			}
			clk.Advance(5 * time.Second)
			pickCounts(t, b, 10) // republishes the view: the ejection ends
			if got := a.OutOfService(); got == ctx || got.Err() != nil {
				t.Errorf("back in service: OutOfService is the old one (%v) or cancelled (%v)", got == ctx, got.Err())
			}
		})
	}
}

// TestOutOfServiceHealthChecks: Fall failed active checks cancel the
// node's OutOfService context, Rise good ones give a new one.
func TestOutOfServiceHealthChecks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		chk := newFakeChecker()
		b, stop := runBalancer(t, noSlowStart(), chk, "a", "b")
		defer stop()
		a := node(t, b, "a")
		ctx := a.OutOfService()
		chk.set("a:80", true)
		time.Sleep(3900 * time.Millisecond) // at most 2 failed checks
		synctest.Wait()
		if ctx.Err() != nil {
			t.Fatal("cancelled before Fall failed checks")
		}
		time.Sleep(2600 * time.Millisecond) // t = 6.5s: at least 3
		synctest.Wait()
		if ctx.Err() == nil {
			t.Fatal("not cancelled after 3 failed checks")
		}
		if b := node(t, b, "b").OutOfService(); b.Err() != nil {
			t.Error("b's context cancelled too")
		}
		chk.set("a:80", false)
		time.Sleep(4 * time.Second) // two good checks
		synctest.Wait()
		if got := a.OutOfService(); got == ctx || got.Err() != nil {
			t.Errorf("healthy again: OutOfService is the old one (%v) or cancelled (%v)", got == ctx, got.Err())
		}
	})
}

// countDown counts NodeDown calls.
type countDown struct{ n int }

func (c *countDown) NodeDown() { c.n++ }
