package nodegroup

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scalepress/scalepress/internal/api"
)

// spreadLauncher stands for Nomad with several clients: a slotLauncher
// whose launches are placed on the eligible host that runs the fewest
// live nodes (its spread); among equals, the hosts the slot was
// rescheduled from go last (Nomad's reschedule penalty: the last five),
// then tie chooses. The test cuts and heals
// hosts and sets Hosts' busy.
type spreadLauncher struct {
	*slotLauncher
	hmu   sync.Mutex
	hosts []NodeHost
	busy  string
	prev  map[string][]string // hosts each slot was rescheduled from
	lost  map[string]bool     // cut: its replacement is no reschedule
	// tie chooses among equally used hosts; nil: the last name.
	tie func(hosts []string) string
	// onFail, when set, is called with the id of each node failed.
	onFail func(id string)
	// flapping, when closed, ends a test's flapping of a host.
	flapping, flapped chan struct{}
}

var _ Spreader = (*spreadLauncher)(nil)

func newSpreadLauncher(hosts ...string) *spreadLauncher {
	l := &spreadLauncher{slotLauncher: newSlotLauncher(), prev: map[string][]string{}, lost: map[string]bool{}}
	for _, h := range hosts {
		l.hosts = append(l.hosts, NodeHost{Name: h})
	}
	return l
}

func (l *spreadLauncher) Hosts() ([]NodeHost, string) {
	l.hmu.Lock()
	defer l.hmu.Unlock()
	return slices.Clone(l.hosts), l.busy
}

func (l *spreadLauncher) Launch(ctx context.Context, n Node) (Node, error) {
	l.hmu.Lock() // one placement at a time, as Nomad's plan applier
	defer l.hmu.Unlock()
	var names []string
	for _, h := range l.hosts {
		names = append(names, h.Name)
	}
	l.fakeLauncher.mu.Lock()
	count := map[string]int{}
	for _, in := range l.nodes {
		switch {
		case in.ID == n.ID && l.lost[n.ID]:
			delete(l.lost, n.ID)
		case in.ID == n.ID:
			l.prev[n.ID] = append(l.prev[n.ID], in.Host)
			if k := len(l.prev[n.ID]); k > 5 {
				l.prev[n.ID] = l.prev[n.ID][k-5:]
			}
		case in.Alive():
			count[in.Host]++
		}
	}
	penalty := l.prev[n.ID]
	l.fakeLauncher.mu.Unlock()
	least := -1
	var tied []string
	for _, h := range names {
		switch {
		case least < 0 || count[h] < least:
			least, tied = count[h], []string{h}
		case count[h] == least:
			tied = append(tied, h)
		}
	}
	if free := slices.DeleteFunc(slices.Clone(tied), func(h string) bool { return slices.Contains(penalty, h) }); len(free) > 0 {
		tied = free
	}
	slices.Sort(tied)
	best := ""
	switch {
	case len(tied) == 0:
	case l.tie != nil:
		best = l.tie(tied)
	default:
		best = tied[len(tied)-1]
	}
	got, err := l.slotLauncher.Launch(ctx, n)
	if err != nil {
		return got, err
	}
	l.fakeLauncher.mu.Lock()
	l.nodes[n.ID].Host = best
	l.fakeLauncher.mu.Unlock()
	return got, nil
}

func (l *spreadLauncher) Fail(ctx context.Context, id string) error {
	if l.onFail != nil {
		l.onFail(id)
	}
	return l.slotLauncher.Fail(ctx, id)
}

// cut takes host out of the eligible hosts and kills its nodes.
func (l *spreadLauncher) cut(host string) {
	l.hmu.Lock()
	l.hosts = slices.DeleteFunc(l.hosts, func(h NodeHost) bool { return h.Name == host })
	l.hmu.Unlock()
	for _, in := range l.List() {
		if in.Host == host && in.Alive() {
			l.hmu.Lock()
			l.lost[in.ID] = true
			l.hmu.Unlock()
			l.kill(in.ID)
		}
	}
}

// heal makes host eligible again, ready since now.
func (l *spreadLauncher) heal(host string) {
	l.hmu.Lock()
	defer l.hmu.Unlock()
	l.hosts = append(l.hosts, NodeHost{Name: host, ReadySince: time.Now()})
}

// layout is host → live nodes.
func (l *spreadLauncher) layout() map[string]int {
	out := map[string]int{}
	l.hmu.Lock()
	for _, h := range l.hosts {
		out[h.Name] = 0
	}
	l.hmu.Unlock()
	for _, in := range l.List() {
		if in.Alive() {
			out[in.Host]++
		}
	}
	return out
}

// watch samples the group every tick until stop: the fewest nodes in
// service and the most draining at once.
type watch struct {
	minInService, maxDraining int
}

func watchGroup(h *harness, stopCh chan struct{}) <-chan watch {
	out := make(chan watch, 1)
	stop := stopCh
	go func() {
		w := watch{minInService: 1 << 30}
		for {
			in, dr := 0, 0
			for _, n := range h.g.Nodes() {
				switch n.State {
				case api.NodeInService:
					in++
				case api.NodeDraining:
					dr++
				}
			}
			w.minInService, w.maxDraining = min(w.minInService, in), max(w.maxDraining, dr)
			select {
			case <-stop:
				out <- w
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return out
}

func rebalanceHarness(t *testing.T, count int, tweak func(*Config), hosts ...string) (*harness, *spreadLauncher) {
	t.Helper()
	cfg := testConfig()
	cfg.Scaling.Count = count
	cfg.FailAfter = 3
	if tweak != nil {
		tweak(&cfg)
	}
	sl := newSpreadLauncher(hosts...)
	h := newHarnessWith(t, cfg, nil, sl.slotLauncher)
	// The group must see the spreadLauncher (its Hosts, its placement).
	g, err := New(cfg, sl, h.p, h.g.hooks, h.g.logger)
	if err != nil {
		t.Fatal(err)
	}
	h.g = g
	h.edges.ack(1 << 30) // every generation applied
	return h, sl
}

// TestRebalanceAfterHeal: a host is cut, its node is replaced on another
// host; once it has been back for RebalanceAfter, one node moves onto it
// (a spare first: never fewer in service than desired; one node draining
// at a time), and the layout is even again.
func TestRebalanceAfterHeal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, sl := rebalanceHarness(t, 3, nil, "h1", "h2", "h3")
		h.start(t)
		defer h.stop(t)
		if diff := cmp.Diff(map[string]int{"h1": 1, "h2": 1, "h3": 1}, sl.layout()); diff != "" {
			t.Fatalf("initial layout (-want +got):\n%s", diff)
		}
		cutAndReplace(t, h, sl, "h3")
		if diff := cmp.Diff(map[string]int{"h1": 1, "h2": 2}, sl.layout()); diff != "" {
			t.Fatalf("layout after the cut (-want +got):\n%s", diff)
		}
		launches := h.l.launches()
		sl.heal("h3")
		stop := make(chan struct{})
		closeStop := sync.OnceFunc(func() { close(stop) })
		defer closeStop()
		seen := watchGroup(h, stop)
		// Settling: nothing moves for RebalanceAfter.
		time.Sleep(h.g.cfg.RebalanceAfter - 2*time.Second)
		synctest.Wait()
		if got := h.l.launches(); got != launches {
			t.Fatalf("%d launches within %s of the heal, want none: %v", got-launches, h.g.cfg.RebalanceAfter, h.states())
		}
		took := waitFor(t, h, "the layout even", 2*time.Minute, func() bool {
			return maps.Equal(sl.layout(), map[string]int{"h1": 1, "h2": 1, "h3": 1}) && len(h.g.InService()) == 3 && !h.g.rebalancing()
		})
		closeStop()
		w := <-seen
		t.Logf("even %s after the settle time", took)
		if w.minInService < 3 {
			t.Errorf("%d nodes in service at one point, want never fewer than 3", w.minInService)
		}
		if w.maxDraining > 1 {
			t.Errorf("%d nodes draining at once, want one at a time", w.maxDraining)
		}
		if got := h.g.Moves(); got != 1 {
			t.Errorf("Moves() = %d, want 1", got)
		}
		if got := h.events.find("rebalance", "moved from h2 to h3"); len(got) != 1 {
			t.Errorf("rebalance events naming the move: %v", got)
		}
		if got := h.events.find("rebalance", "rebalance done: h1:1 h2:1 h3:1"); len(got) != 1 {
			t.Errorf("rebalance done events: %v", got)
		}
		_, mismatches := sl.report()
		if len(mismatches) != 0 {
			t.Errorf("the scheduler and the group chose differently: %v", mismatches)
		}
		// Spare node-4 launched and drained; node-3 launched three times
		// (first, replacement, move).
		if diff := cmp.Diff([]string{"node-4"}, h.l.stops()); diff != "" {
			t.Errorf("stopped (-want +got):\n%s", diff)
		}
		// Even now: nothing more moves.
		n := h.l.launches()
		time.Sleep(3 * h.g.cfg.RebalanceAfter)
		synctest.Wait()
		if got := h.l.launches(); got != n {
			t.Errorf("%d launches once even, want none", got-n)
		}
	})
}

// TestRebalanceWaits: nothing moves while the layout is even, while the
// group heals or scales, while a rolling update runs, while a host flaps,
// or with RebalanceAfter 0; the move follows once the cause is gone.
func TestRebalanceWaits(t *testing.T) {
	for _, tt := range []struct {
		name string
		// hold is applied after the cut's replacement; release ends it
		// (nil: never, nothing may move).
		hold, release func(t *testing.T, h *harness, sl *spreadLauncher)
		tweak         func(*Config)
	}{
		{
			// h3 stays cut: h1:2 h2:1 is one apart.
			name: "even layout",
			hold: func(t *testing.T, h *harness, sl *spreadLauncher) {},
		},
		{
			name:  "settling: RebalanceAfter 0 is off",
			tweak: func(c *Config) { c.RebalanceAfter = 0 },
			hold:  func(t *testing.T, h *harness, sl *spreadLauncher) { sl.heal("h3") },
		},
		{
			name: "a rolling update runs",
			hold: func(t *testing.T, h *harness, sl *spreadLauncher) {
				sl.setBusy("a rolling update of the node job runs")
				sl.heal("h3")
			},
			release: func(t *testing.T, h *harness, sl *spreadLauncher) { sl.setBusy("") },
		},
		{
			name: "a node heals",
			// h1's node fails and its replacement is slow to come up (on
			// h1 again: h3 is still cut when it is placed).
			tweak: func(c *Config) { c.ReadyTimeout = 10 * time.Minute },
			hold: func(t *testing.T, h *harness, sl *spreadLauncher) {
				var id string
				for _, in := range sl.List() {
					if in.Host == "h1" {
						id = in.ID
					}
				}
				h.p.set(func(p *fakeProber) { p.notUp[id] = true })
				n := h.l.launches()
				sl.kill(id)
				waitFor(t, h, id+" relaunched", time.Minute, func() bool { return h.l.launches() == n+1 })
				sl.heal("h3")
			},
			release: func(t *testing.T, h *harness, sl *spreadLauncher) {
				h.p.set(func(p *fakeProber) { clear(p.notUp) })
			},
		},
		{
			// The load scales the group out; its new nodes are slow to
			// come up.
			name: "the group scales",
			tweak: func(c *Config) {
				c.Scaling.Enabled, c.Scaling.Min = true, 3
				c.ReadyTimeout = 10 * time.Minute
			},
			hold: func(t *testing.T, h *harness, sl *spreadLauncher) {
				h.p.set(func(p *fakeProber) {
					for i := range 10 {
						id := fmt.Sprintf("node-%d", i+1)
						p.reports[id] = Report{PHPOK: true, FilesReady: true, Utilization: 0.95}
						if i >= 3 {
							p.notUp[id] = true
						}
					}
				})
				n := h.l.launches()
				waitFor(t, h, "a scale-out", time.Minute, func() bool { return h.l.launches() > n })
				sl.heal("h3")
			},
		},
		{
			// Up for half the settle time, down for 2 s, again and again.
			name: "a flapping host",
			hold: func(t *testing.T, h *harness, sl *spreadLauncher) {
				sl.flapping = make(chan struct{})
				sl.flapped = make(chan struct{})
				go func() {
					defer close(sl.flapped)
					for {
						sl.heal("h3")
						select {
						case <-sl.flapping:
							return
						case <-time.After(h.g.cfg.RebalanceAfter / 2):
						}
						sl.cut("h3")
						time.Sleep(2 * time.Second)
					}
				}()
			},
			release: func(t *testing.T, h *harness, sl *spreadLauncher) {
				close(sl.flapping)
				<-sl.flapped
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h, sl := rebalanceHarness(t, 3, tt.tweak, "h1", "h2", "h3")
				h.start(t)
				defer h.stop(t)
				cutAndReplace(t, h, sl, "h3")
				tt.hold(t, h, sl)
				n := len(h.events.find("rebalance", ""))
				time.Sleep(2 * time.Minute)
				synctest.Wait()
				if got := h.events.find("rebalance", ""); len(got) != n {
					t.Fatalf("rebalance while held: %v; nodes %v", got[n:], h.states())
				}
				if h.g.Moves() != 0 {
					t.Fatalf("moved %d nodes while held", h.g.Moves())
				}
				if tt.release == nil {
					return
				}
				tt.release(t, h, sl)
				defer func() {
					if t.Failed() {
						t.Logf("events: %q; layout %v", h.events.find("", ""), sl.layout())
					}
				}()
				waitFor(t, h, "the move once released", 3*time.Minute, func() bool { return h.g.Moves() >= 1 && !h.g.rebalancing() })
				if diff := cmp.Diff(map[string]int{"h1": 1, "h2": 1, "h3": 1}, sl.layout()); diff != "" {
					t.Errorf("layout (-want +got):\n%s", diff)
				}
			})
		})
	}
}

// TestRebalanceHoldsScaling: while a rebalance runs, its spare is one node
// above the desired size and the policy neither drains it nor scales.
func TestRebalanceHoldsScaling(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, sl := rebalanceHarness(t, 3, nil, "h1", "h2", "h3")
		h.start(t)
		defer h.stop(t)
		cutAndReplace(t, h, sl, "h3")
		// The spare warms slowly: the rebalance holds with four nodes.
		h.p.set(func(p *fakeProber) { p.notUp["node-4"] = true })
		sl.heal("h3")
		waitFor(t, h, "the spare launched", time.Minute, func() bool { return h.l.launches() == 5 })
		time.Sleep(20 * time.Second)
		synctest.Wait()
		if got := h.l.stops(); len(got) != 0 {
			t.Fatalf("stopped %v while the spare starts", got)
		}
		if d := h.g.Autoscaling().Desired; d != 3 {
			t.Errorf("desired %d during the rebalance, want 3", d)
		}
		h.p.set(func(p *fakeProber) { p.notUp["node-4"] = false })
		waitFor(t, h, "even", 2*time.Minute, func() bool { return h.g.Moves() == 1 && !h.g.rebalancing() })
		if diff := cmp.Diff([]string{"node-4"}, h.l.stops()); diff != "" {
			t.Errorf("stopped (-want +got):\n%s", diff)
		}
	})
}

// cutAndReplace cuts host and waits until the group replaced its node.
func cutAndReplace(t *testing.T, h *harness, sl *spreadLauncher, host string) {
	t.Helper()
	n := h.l.launches()
	sl.cut(host)
	waitFor(t, h, "the lost node replaced", 30*time.Second, func() bool { return h.l.launches() == n+1 && len(h.g.InService()) == 3 })
}

func (l *spreadLauncher) setBusy(why string) {
	l.hmu.Lock()
	defer l.hmu.Unlock()
	l.busy = why
}

func TestLayoutUneven(t *testing.T) {
	for _, tt := range []struct {
		name        string
		layout      Layout
		from, to    string
		uneven      bool
		stringified string
	}{
		{"even", Layout{"h1": 1, "h2": 1, "h3": 1}, "h1", "h1", false, "h1:1 h2:1 h3:1"},
		{"one apart", Layout{"h1": 2, "h2": 1, "h3": 1}, "h1", "h2", false, "h1:2 h2:1 h3:1"},
		{"an empty host", Layout{"h1": 2, "h2": 1, "h3": 0}, "h1", "h3", true, "h1:2 h2:1 h3:0"},
		{"ties to the first name", Layout{"h2": 3, "h1": 3, "h3": 1, "h4": 1}, "h1", "h3", true, "h1:3 h2:3 h3:1 h4:1"},
		{"one host", Layout{"h1": 5}, "h1", "h1", false, "h1:5"},
		{"none", Layout{}, "", "", false, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			from, to, uneven := tt.layout.uneven()
			got := fmt.Sprint(from, " ", to, " ", uneven, " ", tt.layout)
			want := fmt.Sprint(tt.from, " ", tt.to, " ", tt.uneven, " ", tt.stringified)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestRebalanceRandomTies: Nomad chooses at random among equally used
// hosts, so a moved node may land where the layout stays as uneven; the
// rebalance moves again (up to maxMovesPerRebalance, then again after the
// settle time) and the layout is even within a bound, never with fewer
// nodes in service than desired.
func TestRebalanceRandomTies(t *testing.T) {
	for seed := range uint64(12) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h, sl := rebalanceHarness(t, 4, nil, "h1", "h2", "h3", "h4")
				r := rand.New(rand.NewPCG(seed, 1))
				sl.tie = func(hosts []string) string { return hosts[r.IntN(len(hosts))] }
				h.start(t)
				defer h.stop(t)
				n := h.l.launches()
				sl.cut("h4")
				waitFor(t, h, "the lost node replaced", 30*time.Second, func() bool { return h.l.launches() == n+1 && len(h.g.InService()) == 4 })
				sl.heal("h4")
				stop := make(chan struct{})
				closeStop := sync.OnceFunc(func() { close(stop) })
				defer closeStop()
				seen := watchGroup(h, stop)
				took := waitFor(t, h, "the layout even", 15*time.Minute, func() bool {
					return maps.Equal(sl.layout(), map[string]int{"h1": 1, "h2": 1, "h3": 1, "h4": 1}) && !h.g.rebalancing()
				})
				closeStop()
				w := <-seen
				t.Logf("even after %s, %d moves", took, h.g.Moves())
				if w.minInService < 4 || w.maxDraining > 1 {
					t.Errorf("fewest in service %d (want 4), most draining at once %d (want 1)", w.minInService, w.maxDraining)
				}
			})
		})
	}
}

// rebalancing reports whether a rebalance runs.
func (g *Group) rebalancing() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.moving
}

// TestRebalanceMovedNodeFails: a moved node does not come back into
// service; the rebalance stops, and its spare serves until the group has
// replaced that node: never fewer in service than desired.
func TestRebalanceMovedNodeFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, sl := rebalanceHarness(t, 3, func(c *Config) { c.ReadyTimeout = 10 * time.Second }, "h1", "h2", "h3")
		h.start(t)
		defer h.stop(t)
		cutAndReplace(t, h, sl, "h3")
		stop := make(chan struct{})
		closeStop := sync.OnceFunc(func() { close(stop) })
		defer closeStop()
		seen := watchGroup(h, stop)
		sl.heal("h3")
		var victim string
		sl.onFail = func(id string) {
			if victim == "" {
				victim = id
				h.p.set(func(p *fakeProber) { p.notUp[id] = true })
			}
		}
		waitFor(t, h, "the rebalance stops", time.Minute, func() bool { return len(h.events.find("rebalance", "rebalance stops")) > 0 })
		time.Sleep(30 * time.Second) // the replacement fails too: the spare stays
		synctest.Wait()
		if got := h.l.stops(); len(got) != 0 {
			t.Errorf("stopped %v while %s is not back, want the spare kept", got, victim)
		}
		h.p.set(func(p *fakeProber) { clear(p.notUp) })
		waitFor(t, h, "healed, the spare gone", 2*time.Minute, func() bool {
			return len(h.g.InService()) == 3 && !h.g.rebalancing() && len(h.l.stops()) == 1
		})
		closeStop()
		if w := <-seen; w.minInService < 3 {
			t.Errorf("%d nodes in service at one point, want never fewer than 3", w.minInService)
		}
	})
}
