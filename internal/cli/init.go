package cli

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/scalepress/scalepress/internal/atomicfile"
	"github.com/scalepress/scalepress/internal/config"
)

func runInit(args []string) error {
	fs := newFlags("init")
	var d dirFlags
	d.register(fs, false)
	force := fs.Bool("force", false, "overwrite an existing config")
	if err := parse(fs, args); err != nil {
		return err
	}
	path := filepath.Join(d.dir, "scalepress.yaml")
	if _, err := os.Stat(path); err == nil && !*force {
		return fmt.Errorf("%w: %s exists; use --force to overwrite it", errUsage, path)
	}
	if err := os.MkdirAll(d.dir, 0o755); err != nil {
		return err
	}
	if err := atomicfile.Write(path, config.Template, 0o644); err != nil {
		return err
	}
	fmt.Printf("wrote %s\n", path)
	return nil
}
