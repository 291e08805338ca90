package node

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
