package balancer

import (
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fakeConns records its node's address and whether it was closed.
type fakeConns struct {
	addr   string
	closed bool
}

func (f *fakeConns) Close() error { f.closed = true; return nil }

// TestNodeConns: the caller's per-node state is made when a node joins,
// reachable from the picked node, and closed when the node leaves the set
// (removed, or replaced because its address changed).
func TestNodeConns(t *testing.T) {
	made := map[string]*fakeConns{}
	cfg := DefaultConfig()
	cfg.SlowStart = 0
	cfg.NewConns = func(addr string) io.Closer {
		f := &fakeConns{addr: addr}
		made[addr] = f
		return f
	}
	b, _ := newTest(t, cfg, "a")
	n, err := b.Pick()
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := n.Conns().(*fakeConns); !ok || got != made["a:80"] {
		t.Fatalf("Conns() = %v, want the one made for a:80", n.Conns())
	}
	n.Done(OK)
	b.Update([]Upstream{{ID: "a", Addr: "a2:80"}}) // address changed: replaced
	if err := b.Remove("a"); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for addr, f := range made {
		got[addr] = f.closed
	}
	if diff := cmp.Diff(map[string]bool{"a:80": true, "a2:80": true}, got); diff != "" {
		t.Errorf("closed per address (-want +got):\n%s", diff)
	}
}
