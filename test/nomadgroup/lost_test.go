// Package nomadgroup tests the node group on a real Nomad cluster whose
// hosts are network namespaces (test/hosts): what one dev agent cannot
// show, a host lost with its allocations.
package nomadgroup

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/nodegroup"
	"github.com/scalepress/scalepress/internal/nomadlaunch"
	"github.com/scalepress/scalepress/test/hosts"
)

const fakeNodeEnv = "SCALEPRESS_TEST_FAKE_NODE"

func TestMain(m *testing.M) {
	if os.Getenv(fakeNodeEnv) != "" {
		os.Exit(fakeNode())
	}
	os.Exit(m.Run())
}

// fakeNode stands for node-host: it serves the node agent's health and
// status on the allocation's address until SIGTERM (exit 0) or SIGUSR1
// (exit 1).
func fakeNode() int {
	ln, err := net.Listen("tcp", net.JoinHostPort(os.Getenv("NOMAD_IP_http"), os.Getenv("NOMAD_PORT_http")))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	mux := http.NewServeMux()
	mux.HandleFunc(api.NodePathHealth, func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc(api.NodePathStatus, func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(api.NodeReport{PHPOK: true, FilesReady: true, Utilization: 0.5})
	})
	go http.Serve(ln, mux)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGUSR1)
	if <-sig == syscall.SIGUSR1 {
		return 1
	}
	return 0
}

type events struct {
	mu  sync.Mutex
	all []string
}

func (e *events) add(ev api.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, ev.Kind+": "+ev.Message)
}

func (e *events) count(s string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, m := range e.all {
		if strings.Contains(m, s) {
			n++
		}
	}
	return n
}

func (e *events) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return strings.Join(e.all, "\n")
}

// TestLostHost: a Nomad server and two clients; the group runs two nodes.
// The link of node-2's host is cut: Nomad marks the client down, its
// allocations lost, and places their replacements on the other client by
// itself. The group fails each lost node once and adopts Nomad's
// replacement instead of asking for another: one new allocation per lost
// node, and the group back in service.
func TestLostHost(t *testing.T) {
	hosts.LockE2E(t)
	n := hosts.New(t, hosts.Config{Hosts: []string{"srv", "c1", "c2"}, Client: true})
	nm := hosts.StartNomad(t, n, n.Host(t, "srv"), []*hosts.Host{n.Host(t, "c1"), n.Host(t, "c2")}, hosts.NomadOptions{})

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ev := &events{}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := nomadlaunch.DefaultConfig()
	cfg.Address, cfg.Job, cfg.Command = nm.Local, "sp-lost-nodes", self
	cfg.Env = map[string]string{fakeNodeEnv: "1"}
	cfg.CPU, cfg.MemoryMB, cfg.KillTimeout, cfg.Poll = 100, 64, 5*time.Second, 2*time.Second
	l, err := nomadlaunch.New(cfg, logger, ev.add)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	runDone := make(chan error, 1)
	go func() { runDone <- l.Run(ctx) }()
	defer func() { cancel(); <-runDone }()
	if _, err := l.Submit(ctx, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer ccancel()
		l.Close(cctx) // the lost allocations never end: cleanup kills them
	}()

	gc := nodegroup.DefaultConfig()
	gc.Scaling = nodegroup.Scaling{Count: 2, Min: 1, Max: 4, Target: 0.6, ScaleInWindow: time.Minute, MaxStep: 1}
	gc.Children, gc.SiteHost, gc.DeregistrationDelay = 10, "www.example.test", 2*time.Second
	// Health reports alone would fail a cut-off node after FailAfter s;
	// here the loss must come from Nomad, the case under test.
	gc.FailAfter = 300
	// The prober reaches the nodes from the client namespace.
	g, err := nodegroup.New(gc, l, nodegroup.HTTPProber{Client: n.Client.HTTPClient()}, nodegroup.Hooks{
		Node:  func(i int) nodegroup.Node { return nodegroup.Node{ID: fmt.Sprintf("node-%d", i)} },
		Event: ev.add,
	}, logger)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(ctx); err != nil {
		t.Fatalf("start: %v\n%s", err, ev)
	}
	gctx, gcancel := context.WithCancel(ctx)
	groupDone := make(chan error, 1)
	go func() { groupDone <- g.Run(gctx) }()
	defer func() { gcancel(); <-groupDone }()

	hostOf := map[string]string{}
	for _, v := range g.Nodes() {
		hostOf[v.ID] = v.Host
	}
	victim := hostOf["node-2"]
	var cut *hosts.Host
	for _, h := range n.Hosts {
		if h.Name == victim {
			cut = h
		}
	}
	if cut == nil {
		t.Fatalf("node-2's host %q is not a test host (%v)", victim, hostOf)
	}
	var lostNodes []string
	for id, h := range hostOf {
		if h == victim {
			lostNodes = append(lostNodes, id)
		}
	}
	t0 := time.Now()
	if err := n.Cut(cut); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(120 * time.Second)
	for {
		back := len(g.InService()) == 2
		for _, id := range lostNodes {
			if ev.count(id+": nomad replaced the lost allocation") == 0 {
				back = false
			}
		}
		if back {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the group did not recover from losing %s within 120 s:\n%s", victim, ev)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("%s cut: %v back in service on the other client after %s", victim, lostNodes, time.Since(t0).Round(time.Millisecond))
	time.Sleep(5 * time.Second) // room for a second replacement, which must not come
	for _, id := range lostNodes {
		for _, want := range []string{id + ": nomad lost allocation", id + ": in-service → failed", id + ": nomad replaced the lost allocation"} {
			if c := ev.count(want); c != 1 {
				t.Errorf("%q %d times, want once\n%s", want, c, ev)
			}
		}
		if c := ev.count(id + ": nomad rescheduled"); c != 0 {
			t.Errorf("%s rescheduled by the group as well as replaced by Nomad\n%s", id, ev)
		}
	}
	for _, v := range g.Nodes() {
		if v.State == api.NodeInService && v.Host == victim {
			t.Errorf("%s in service on the cut host %s", v.ID, victim)
		}
	}
	var allocs []struct{ ID, Name, ClientStatus, DesiredStatus string }
	if err := nm.Get(ctx, "/v1/job/sp-lost-nodes/allocations", &allocs); err != nil {
		t.Fatal(err)
	}
	live := map[string]int{}
	for _, a := range allocs {
		if a.DesiredStatus == "run" && a.ClientStatus == "running" {
			live[a.Name]++
		}
	}
	if len(live) != 2 || live["sp-lost-nodes.node[0]"] != 1 || live["sp-lost-nodes.node[1]"] != 1 {
		t.Errorf("running allocations by slot: %v, want one in each of 2", live)
	}
}
