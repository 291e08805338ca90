package controller

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/nodegroup"
)

func TestUpstreamsPublishAndWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := newUpstreams()
		if g := u.Publish(nil); g != 1 {
			t.Fatalf("first publish: generation %d, want 1", g)
		}
		set := []nodegroup.Node{{ID: "node-1", Addr: "127.0.1.1:8080"}}
		g := u.Publish(set)
		if again := u.Publish(set); again != g {
			t.Errorf("the same set again: generation %d, want %d", again, g)
		}
		want := api.Upstreams{Generation: 2, Nodes: []api.Upstream{{ID: "node-1", Addr: "127.0.1.1:8080"}}}
		if diff := cmp.Diff(want, u.Get()); diff != "" {
			t.Error(diff)
		}
		done := make(chan struct{})
		go func() {
			u.WaitApplied(context.Background(), []string{"edge-1", "edge-2"}, g)
			close(done)
		}()
		if err := u.Ack("edge-1", 2); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		select {
		case <-done:
			t.Fatal("returned before edge-2 applied the set")
		default:
		}
		if err := u.Ack("edge-2", 3); err == nil {
			t.Error("an acknowledgement of a generation never published was taken")
		}
		if err := u.Ack("edge-2", 2); err != nil {
			t.Fatal(err)
		}
		<-done

		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		t0 := time.Now()
		u.WaitApplied(ctx, []string{"edge-1"}, 3) // never applied: bounded by ctx
		if took := time.Since(t0); took != 5*time.Second {
			t.Errorf("unacknowledged wait took %s, want the 5s bound", took)
		}
	})
}
