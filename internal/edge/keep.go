package edge

// The node set kept across restarts: an edge on Nomad (ADR 0025) restarted
// while no controller answers serves the nodes it knew instead of none.

import (
	"encoding/json"
	"io"
	"os"

	"github.com/scalepress/scalepress/internal/api"
)

// maxKept bounds what is read back (a set of thousands of nodes fits).
const maxKept = 1 << 20

// KeepUpstreams makes the edge write each node set it applies into f (a
// file that outlives the process: a Nomad allocation's data directory) and
// applies the set f holds now, if any. The kept set has no generation of its
// own: the controller's first answer replaces it, and it is never
// acknowledged. Call before Run.
func (e *Edge) KeepUpstreams(f *os.File) {
	e.keep = f
	b, err := io.ReadAll(io.NewSectionReader(f, 0, maxKept))
	if err != nil || len(b) == 0 {
		return
	}
	var ups api.Upstreams
	if err := json.Unmarshal(b, &ups); err != nil || ups.Generation == 0 {
		e.logger.Warn("kept node set unreadable; starting with none", "file", f.Name(), "err", err)
		return
	}
	e.SetUpstreams(ups.Nodes)
	e.logger.Info("upstreams kept from before the restart", "generation", ups.Generation, "nodes", len(ups.Nodes))
}

// remember writes ups into the kept file (when there is one).
func (e *Edge) remember(ups api.Upstreams) {
	if e.keep == nil {
		return
	}
	b, err := json.Marshal(ups)
	if err == nil {
		err = e.keep.Truncate(0)
	}
	if err == nil {
		_, err = e.keep.WriteAt(b, 0)
	}
	if err == nil {
		err = e.keep.Sync()
	}
	if err != nil {
		e.logger.Warn("keep the node set", "file", e.keep.Name(), "err", err)
	}
}
