package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/console"
)

// runTop shows the dashboard's data in the terminal, redrawn every
// interval; --once prints one plain-text snapshot (for scripts and pipes).
func runTop(args []string) error {
	fs := newFlags("top")
	var d dirFlags
	d.register(fs, true)
	once := fs.Bool("once", false, "print one plain-text snapshot and exit (works without a terminal)")
	interval := fs.Duration("interval", time.Second, "how often to redraw")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *interval < 100*time.Millisecond {
		return errUsagef("--interval must be at least 100ms, got %s", *interval)
	}
	if !*once && !isTerminal(os.Stdout) {
		return errUsagef("top redraws a terminal and the output is not one; `scalepress top --once` prints a plain-text snapshot")
	}
	c, err := apiClient(d)
	if err != nil {
		return err
	}
	get := func(ctx context.Context) (api.Console, error) {
		var doc api.Console
		err := c.Get(ctx, api.APIPathConsole, &doc)
		return doc, err
	}
	if *once {
		doc, err := get(context.Background())
		if err != nil {
			return err
		}
		cols, _ := terminalSize(os.Stdout)
		console.Text(os.Stdout, doc, cols)
		return nil
	}
	ctx, cancel := signalContext()
	defer cancel()
	// The alternate screen keeps the user's scrollback; the cursor hides.
	fmt.Print("\x1b[?1049h\x1b[?25l")
	defer fmt.Print("\x1b[?25h\x1b[?1049l")
	t := time.NewTicker(*interval)
	defer t.Stop()
	for {
		var frame bytes.Buffer
		cols, rows := terminalSize(os.Stdout)
		doc, err := get(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			fmt.Fprintf(&frame, "scalepress top: %v (retrying)\n", err)
		} else {
			console.Text(&frame, doc, cols)
		}
		lines := strings.Split(strings.TrimRight(frame.String(), "\n"), "\n")
		if len(lines) > rows-1 {
			lines = lines[:rows-1]
		}
		// Home, then each line cleared to its end, then the rest cleared.
		fmt.Print("\x1b[H" + strings.Join(lines, "\x1b[K\r\n") + "\x1b[K\r\n\x1b[J")
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
