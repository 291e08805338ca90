package edge

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/throttle"
)

// loginReportInterval is how often an edge reports the login blocks that
// started to the controller's event log: with api.MaxEdgeEvents a report,
// a spray from many addresses adds at most one event a second per edge.
const loginReportInterval = 10 * time.Second

// blockQueue holds the blocks not reported yet.
type blockQueue struct {
	mu      sync.Mutex
	pending []api.LoginBlock // at most api.MaxEdgeEvents
	more    int              // started beyond those
}

func (q *blockQueue) add(b throttle.Block) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.pending) >= api.MaxEdgeEvents {
		q.more++
		return
	}
	q.pending = append(q.pending, api.LoginBlock{Time: b.Time, By: string(b.By), Address: b.Address, User: b.User, Count: b.Count, Until: b.Until})
}

// take empties the queue.
func (q *blockQueue) take() api.EdgeEvents {
	q.mu.Lock()
	defer q.mu.Unlock()
	ev := api.EdgeEvents{LoginBlocks: q.pending, More: q.more}
	q.pending, q.more = nil, 0
	return ev
}

// reportLogins sends the queued blocks to the controller every
// loginReportInterval until ctx ends. A report that fails is dropped (the
// edge's log and metrics still have every block).
func (e *Edge) reportLogins(ctx context.Context) {
	c := api.Client{Base: e.spec.EventsURL, HTTP: &http.Client{Timeout: 2 * time.Second}, Token: e.spec.ControlToken}
	t := time.NewTicker(e.logins.reportEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ev := e.logins.blocks.take()
		if len(ev.LoginBlocks) == 0 {
			continue
		}
		if err := c.Post(ctx, "", ev, nil); err != nil {
			e.logger.Warn("login blocks not reported to the controller", "blocks", len(ev.LoginBlocks)+ev.More, "err", err)
		}
	}
}
