package nodegroup

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestConcurrentReadsDuringChurn reads the group (status, metrics, cron,
// `scale`) while its loops probe, fail, replace, scale and drain nodes: under
// -race this is the test that node state has one owner and one lock.
func TestConcurrentReadsDuringChurn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.Scaling.Enabled, cfg.Scaling.Count, cfg.FailAfter = true, 3, 2
		h := newHarness(t, cfg, nil)
		h.start(t)
		defer h.stop(t)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					case <-time.After(100 * time.Millisecond):
					}
					h.g.Nodes()
					h.g.Autoscaling()
					h.g.InService()
					s := h.g.Scaling()
					s.Max = 5
					if err := h.g.SetScaling(s); err != nil {
						t.Error(err)
					}
				}
			})
		}
		h.l.kill("node-1")
		h.p.set(func(p *fakeProber) { p.sick["node-2"] = true })
		time.Sleep(5 * time.Second)
		h.p.set(func(p *fakeProber) { p.reports["node-3"] = Report{PHPOK: true, Utilization: 0.95} })
		time.Sleep(5 * time.Second)
		h.p.set(func(p *fakeProber) { p.reports["node-3"] = Report{PHPOK: true, Utilization: 0.01} })
		time.Sleep(30 * time.Second)
		close(stop)
		wg.Wait()
		if a := h.g.Autoscaling(); a.Max != 5 {
			t.Errorf("max %d after SetScaling, want 5", a.Max)
		}
	})
}

// TestSetScalingKeepsHistory: `scalepress scale` changes the limits of the
// autoscaler the group has, not a new one: a peak seen before the change
// still holds off a scale-in.
func TestSetScalingKeepsHistory(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.Scaling.Enabled, cfg.Scaling.Count = true, 2
		cfg.Scaling.ScaleInWindow = 20 * time.Second
		h := newHarness(t, cfg, nil)
		h.start(t)
		defer h.stop(t)
		// In the band for a while (asks for 2), then idle (asks for 1).
		time.Sleep(15 * time.Second)
		h.p.set(func(p *fakeProber) {
			p.reports["node-1"] = Report{PHPOK: true, Utilization: 0.01}
			p.reports["node-2"] = Report{PHPOK: true, Utilization: 0.01}
		})
		time.Sleep(3 * time.Second)
		s := h.g.Scaling()
		s.Max = 4
		if err := h.g.SetScaling(s); err != nil {
			t.Fatal(err)
		}
		// A fresh scaler would now wait a whole window (20 s) before a
		// scale-in; the kept one scales in once the peak of 2 is older
		// than the window, about 15 s + 20 s after the start.
		took := waitFor(t, h, "scale-in to 1", 30*time.Second, func() bool { return h.g.Autoscaling().Desired == 1 })
		if took > 19*time.Second {
			t.Errorf("scale-in %s after SetScaling: the scaler's history was lost", took)
		}
	})
}
