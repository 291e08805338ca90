// Package cli is the scalepress command line: one file per subcommand. It is
// the only place that calls os.Exit.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/scalepress/scalepress/internal/config"
	"github.com/scalepress/scalepress/internal/statedir"
)

// Version is set at build time (-ldflags "-X .../cli.Version=...").
var Version = "0.1.0-dev"

// Exit codes of docs/contract.md.
const (
	exitOK      = 0
	exitRuntime = 1
	exitUsage   = 2
)

// errUsage marks bad usage (exit 2).
var errUsage = errors.New("usage")

type command struct {
	summary string
	run     func(args []string) error
	hidden  bool
}

var commands map[string]command

func init() {
	commands = map[string]command{
		"up":        {summary: "bring the environment up (foreground, or --detach)", run: runUp},
		"down":      {summary: "stop the environment; returns when no process is left", run: runDown},
		"status":    {summary: "show the environment (--json for scripts)", run: runStatus},
		"init":      {summary: "write a commented default config to DIR/scalepress.yaml", run: runInit},
		"version":   {summary: "print the version", run: runVersion},
		"scale":     {summary: "change autoscaling at run time (--min --max --target --scale-in-window)", run: runScale},
		"nodes":     {summary: "list the node group", run: runNodes},
		"events":    {summary: "print the event log (-f to follow)", run: runEvents},
		"purge":     {summary: "purge the edge caches: URL... | --tag TAG | --all [--hard]", run: runPurge},
		"load":      {summary: "open-model load: --url URL --rate N --duration D", run: runLoad},
		"top":       {summary: "live terminal view: nodes, load vs target, caches, DB, sync (--once: a snapshot)", run: runTop},
		"logs":      {summary: "the logs of one role or all, merged by time (-f to follow): logs [-f] [ROLE]", run: runLogs},
		"backup":    {summary: "back up the database and files (--to DIR); --verify ID checks a backup", run: runBackup},
		"backups":   {summary: "list the backups, newest first (--json)", run: runBackups},
		"restore":   {summary: "restore BACKUP --dir NEWDIR [--at TIME]: a stopped environment in NEWDIR", run: runRestore},
		"release":   {summary: "the current release (core, plugins, themes with versions) and earlier ones (--json)", run: runRelease},
		"update":    {summary: "roll out a new release: update core --from DIR|TARBALL | update plugin|theme NAME --from DIR|ZIP [--force]", run: runUpdate},
		"rollback":  {summary: "roll out an earlier release again: rollback [RELEASE] (default: the previous one)", run: runRollback},
		"node":      {summary: "role: node agent (started by the controller)", run: runNode, hidden: true},
		"node-host": {summary: "role: one node's processes (a scheduler's task)", run: runNodeHost, hidden: true},
		"edge":      {summary: "role: edge (started by the controller)", run: runEdge, hidden: true},
		"dbrouter":  {summary: "role: database router (started by the controller)", run: runDBRouter, hidden: true},
		"dns":       {summary: "role: geo DNS server (started by the controller)", run: runDNS, hidden: true},
		"files":     {summary: "role: canonical site tree and change log (started by the controller)", run: runFiles, hidden: true},
		"filesync":  {summary: "role: a node's docroot sync agent (started by the node agent)", run: runFilesync, hidden: true},
		"db-agent":  {summary: "role: runs the Galera members of one DB host for the controller", run: runDBAgent, hidden: true},
	}
}

// Main runs the command line and exits.
func Main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "scalepress: unknown command %q\n", args[0])
		usage(stderr)
		return exitUsage
	}
	err := cmd.run(args[1:])
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.Is(err, errUsage), errors.Is(err, config.ErrInvalid):
		fmt.Fprintf(stderr, "scalepress %s: %s\n", args[0], oneLine(err))
		return exitUsage
	default:
		fmt.Fprintf(stderr, "scalepress %s: %s\n", args[0], oneLine(err))
		return exitRuntime
	}
}

func oneLine(err error) string {
	s := err.Error()
	s = strings.TrimPrefix(s, errUsage.Error()+": ")
	return strings.ReplaceAll(s, "\n", "; ")
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: scalepress <command> [flags]")
	fmt.Fprintln(w)
	names := make([]string, 0, len(commands))
	for n, c := range commands {
		if !c.hidden {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun scalepress <command> -h for its flags.")
}

func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("scalepress "+name, flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return nil
}

// dirFlags are --dir and --config, shared by most commands.
type dirFlags struct {
	dir, config string
}

func (d *dirFlags) register(fs *flag.FlagSet, withConfig bool) {
	fs.StringVar(&d.dir, "dir", ".scalepress", "state directory")
	if withConfig {
		fs.StringVar(&d.config, "config", "", "config file (default DIR/scalepress.yaml if it exists, else built-in defaults)")
	}
}

// load returns the configuration per docs/contract.md: --config, else
// DIR/scalepress.yaml when it exists, else the built-in defaults.
func (d *dirFlags) load() (config.Config, error) {
	path := d.config
	if path == "" {
		p := filepath.Join(d.dir, "scalepress.yaml")
		if _, err := os.Stat(p); err == nil {
			path = p
		}
	}
	if path == "" {
		cfg := config.Default()
		return cfg, cfg.Validate()
	}
	cfg, err := config.Load(path)
	if err != nil && !errors.Is(err, config.ErrInvalid) {
		return cfg, fmt.Errorf("%w: %v", errUsage, err) // unreadable --config is bad usage
	}
	return cfg, err
}

func (d *dirFlags) layout() statedir.Layout {
	abs, err := filepath.Abs(d.dir)
	if err != nil {
		abs = d.dir
	}
	return statedir.Layout{Dir: abs}
}

func newLogger(w io.Writer, role string) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo})).With("component", role)
}
