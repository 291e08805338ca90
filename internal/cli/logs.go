package cli

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/scalepress/scalepress/internal/rolelog"
)

// followInterval is how often `logs -f` looks for new lines.
const followInterval = 250 * time.Millisecond

// runLogs prints the logs of one role (or one process) or of all, merged
// by time; -f keeps following them.
func runLogs(args []string) error {
	fs := newFlags("logs")
	var d dirFlags
	d.register(fs, false)
	follow := fs.Bool("f", false, "follow: keep printing new lines")
	tail := fs.Int("n", 0, "print only the last N lines first (0: all)")
	// The role may come before or after the flags.
	var role string
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		role, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 1 || fs.NArg() == 1 && role != "" {
		return errUsagef("give at most one role")
	}
	if fs.NArg() == 1 {
		role = fs.Arg(0)
	}
	if *tail < 0 {
		return errUsagef("-n must not be negative, got %d", *tail)
	}
	l := d.layout()
	if _, err := os.Stat(l.Logs()); err != nil {
		return errUsagef("no logs in %s: has `scalepress up --dir %s` run there?", l.Logs(), d.dir)
	}
	srcs, err := rolelog.List(l.Logs())
	if err != nil {
		return err
	}
	sel, err := rolelog.Select(srcs, role)
	if err != nil {
		return errUsagef("%v", err)
	}
	out := bufio.NewWriter(os.Stdout)
	width := 0
	for _, s := range srcs {
		width = max(width, len(s.Name))
	}
	print := func(lines []rolelog.Line) {
		for _, ln := range lines {
			fmt.Fprintf(out, "%-*s | %s\n", width, ln.Source, ln.Text)
		}
		out.Flush()
	}
	var f rolelog.Follower
	first := f.Poll(sel)
	if *tail > 0 {
		first = first[max(0, len(first)-*tail):]
	}
	print(first)
	if !*follow {
		return nil
	}
	ctx, cancel := signalContext()
	defer cancel()
	t := time.NewTicker(followInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		// New processes (a node the group added) bring new logs.
		if srcs, err := rolelog.List(l.Logs()); err == nil {
			if s, err := rolelog.Select(srcs, role); err == nil {
				sel = s
			}
		}
		print(f.Poll(sel))
	}
}
