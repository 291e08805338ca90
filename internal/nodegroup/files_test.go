package nodegroup

import (
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/scalepress/scalepress/internal/api"
)

// TestFilesQuarantineEvents: a node whose quarantine count grows gets a
// files event naming the count and the last change; a steady count none.
func TestFilesQuarantineEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, testConfig(), nil)
		h.start(t)
		defer h.stop(t)
		last := &api.FilesQuarantine{Seq: 41, Op: "put", Path: "wp-content/uploads/x.txt", Error: "permission denied"}
		for _, count := range []int{1, 1, 3, 3} { // one report a second
			h.p.set(func(p *fakeProber) {
				p.reports["node-2"] = Report{PHPOK: true, FilesReady: true, FilesQuarantined: count, FilesQuarantineLast: last}
			})
			time.Sleep(2 * time.Second)
			synctest.Wait()
		}
		got := h.events.find("files", "")
		if len(got) != 2 || !strings.Contains(got[0], "node-2: 1 change(s)") ||
			!strings.Contains(got[1], "2 change(s) of the files log quarantined there (3 in all)") ||
			!strings.Contains(got[1], "seq 41 put wp-content/uploads/x.txt: permission denied") {
			t.Errorf("events while node-2's count went 1, 1, 3, 3:\n%s", strings.Join(got, "\n"))
		}
		if got := h.events.find("files", "node-1"); len(got) != 0 {
			t.Errorf("events for node-1, which quarantined nothing: %v", got)
		}
	})
}
