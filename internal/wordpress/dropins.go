package wordpress

import (
	"bytes"
	_ "embed"
	"fmt"
	"os"
	"path/filepath"

	"github.com/scalepress/scalepress/internal/atomicfile"
)

// The object-cache drop-in (redis) and the must-use plugin that tags pages
// for the edge and asks the controller to purge them.
var (
	//go:embed php/object-cache.php
	objectCachePHP []byte
	//go:embed php/scalepress.php
	muPluginPHP []byte
	// units.php groups plugin and theme updates from wp-admin into units
	// for file sync (docs/adr/0026-atomic-change-sets.md).
	//go:embed php/units.php
	unitsPluginPHP []byte
)

// Dropin is one PHP file scalepress puts into a site tree.
type Dropin struct {
	Path string // relative to the docroot
	Data []byte
}

// Dropins returns the files InstallDropins writes.
func Dropins() []Dropin {
	return []Dropin{
		{Path: filepath.Join("wp-content", "object-cache.php"), Data: objectCachePHP},
		{Path: filepath.Join("wp-content", "mu-plugins", "scalepress.php"), Data: muPluginPHP},
		{Path: filepath.Join("wp-content", "mu-plugins", "scalepress-units.php"), Data: unitsPluginPHP},
	}
}

// InstallDropins writes wp-content/object-cache.php and the must-use
// plugins wp-content/mu-plugins/scalepress.php and scalepress-units.php
// into docroot. Each file is replaced
// atomically (a temporary sibling renamed into place), so PHP never includes
// half a file; a file that already has the right content is left alone, so
// its mtime (and the file sync that watches it) does not change.
func InstallDropins(docroot string) error {
	if _, err := os.Stat(filepath.Join(docroot, "wp-content")); err != nil {
		return fmt.Errorf("install drop-ins: %s is not a WordPress tree: %w", docroot, err)
	}
	for _, d := range Dropins() {
		if err := writeIfChanged(filepath.Join(docroot, d.Path), d.Data); err != nil {
			return fmt.Errorf("install drop-ins: %w", err)
		}
	}
	return nil
}

func writeIfChanged(path string, data []byte) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return atomicfile.Write(path, data, 0o644)
}
