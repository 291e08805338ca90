package node

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/scalepress/scalepress/internal/api"
)

// filesApplied reads the sequence number the filesync agent last applied;
// ok is false until its docroot has been bootstrapped.
func (a *Agent) filesApplied() (seq uint64, ok bool) {
	if a.spec.Files == "" {
		return 0, false
	}
	b, err := os.ReadFile(filepath.Join(a.spec.FilesState, "applied"))
	if err != nil {
		return 0, false
	}
	seq, err = strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	return seq, err == nil
}

// filesQuarantine reads the filesync agent's quarantine journal: how many
// changes it quarantined, and the last one.
func (a *Agent) filesQuarantine() (int, *api.FilesQuarantine) {
	if a.spec.Files == "" {
		return 0, nil
	}
	b, err := os.ReadFile(filepath.Join(a.spec.FilesState, api.FilesQuarantineFile))
	if err != nil {
		return 0, nil
	}
	n := 0
	var last *api.FilesQuarantine
	for line := range strings.Lines(string(b)) {
		var q api.FilesQuarantine
		if json.Unmarshal([]byte(line), &q) != nil || q.Released {
			continue
		}
		n++
		last = &q
	}
	return n, last
}
