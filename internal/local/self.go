package local

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/scalepress/scalepress/internal/atomicfile"
)

// InstallSelf copies the running binary into the state directory and returns
// the copy's path; every role is started from it. Roles that run as a service
// user (the file-sync agent runs as the PHP user) must be able to execute it,
// and the state directory is already checked to be reachable by them, while
// the binary may sit in a private directory (/root, a 0700 temp dir). It also
// keeps a running environment independent of a rebuild of bin/scalepress.
func InstallSelf(self, dir string) (string, error) {
	dst := filepath.Join(dir, "scalepress")
	src, err := os.ReadFile(self)
	if err != nil {
		return "", fmt.Errorf("install binary: %w", err)
	}
	if cur, err := os.ReadFile(dst); err == nil && bytes.Equal(cur, src) {
		return dst, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("install binary: %w", err)
	}
	// Renaming over a binary that old processes still run is safe: they
	// keep the old inode.
	if err := atomicfile.Write(dst, src, 0o755); err != nil {
		return "", fmt.Errorf("install binary: %w", err)
	}
	return dst, nil
}
