package nodegroup

import (
	"fmt"

	"github.com/scalepress/scalepress/internal/api"
)

// noteQuarantineLocked records an event (kind files) when a node's filesync
// agent quarantined more changes of the files log than its last report
// said: they kept failing on that node and are skipped there (see
// internal/filesync/quarantine.go). The first report of a node counts from
// zero, so a controller restart tells again what a node holds.
func (g *Group) noteQuarantineLocked(n *node, r Report) {
	prev := n.report.FilesQuarantined
	if r.FilesQuarantined <= prev {
		return
	}
	inputs := map[string]any{"quarantined": r.FilesQuarantined}
	msg := fmt.Sprintf("%s: %d change(s) of the files log quarantined there (%d in all): they kept failing and are skipped", n.ID, r.FilesQuarantined-prev, r.FilesQuarantined)
	if q := r.FilesQuarantineLast; q != nil {
		inputs["seq"], inputs["op"], inputs["path"], inputs["error"] = q.Seq, q.Op, q.Path, q.Error
		msg += fmt.Sprintf("; last: seq %d %s %s: %s", q.Seq, q.Op, q.Path, q.Error)
	}
	g.outbox = append(g.outbox, api.Event{Kind: "files", Node: n.ID, Message: msg, Inputs: inputs})
}
