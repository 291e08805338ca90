package cli

import (
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/scalepress/scalepress/internal/supervise"
)

// downTimeout bounds the graceful stop; after it the controller is killed and
// whatever it left is cleaned up from the pid files.
const downTimeout = 3 * time.Minute

func runDown(args []string) error {
	fs := newFlags("down")
	var d dirFlags
	d.register(fs, false)
	if err := parse(fs, args); err != nil {
		return err
	}
	l := d.layout()
	if _, err := os.Stat(l.Dir); err != nil {
		return fmt.Errorf("%w: no state directory %s", errUsage, l.Dir)
	}
	pid := controllerPID(l)
	if pid > 0 {
		syscall.Kill(pid, syscall.SIGTERM)
		deadline := time.Now().Add(downTimeout)
		for supervise.Alive(pid) && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if supervise.Alive(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
			for supervise.Alive(pid) {
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
	logger := newLogger(os.Stderr, "down")
	cleaned, err := supervise.CleanupStale(l.PIDs(), logger)
	if err != nil {
		return err
	}
	switch {
	case pid > 0 && len(cleaned) > 0:
		fmt.Printf("stopped controller %d; cleaned up %v\n", pid, cleaned)
	case pid > 0:
		fmt.Printf("stopped controller %d\n", pid)
	case len(cleaned) > 0:
		fmt.Printf("no controller was running; cleaned up %v\n", cleaned)
	default:
		fmt.Println("nothing was running")
	}
	return nil
}
