package supervise

import (
	"os"
	"path/filepath"
)

// openLog opens path for appending, creating it (0640) and its parent
// directories (0750) as needed.
func openLog(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, err
	}
	return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
}
