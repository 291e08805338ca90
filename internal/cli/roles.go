package cli

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/dbrouter"
	"github.com/scalepress/scalepress/internal/edge"
	"github.com/scalepress/scalepress/internal/geodns"
	"github.com/scalepress/scalepress/internal/node"
)

func roleSpec(name string, args []string, v any) error {
	fs := newFlags(name)
	spec := fs.String("spec", "", "role spec (JSON) written by the controller")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *spec == "" {
		return errUsagef("--spec is required")
	}
	return api.ReadSpec(*spec, v)
}

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func runNode(args []string) error {
	var spec api.NodeSpec
	if err := roleSpec("node", args, &spec); err != nil {
		return err
	}
	ctx, cancel := signalContext()
	defer cancel()
	return node.Run(ctx, spec, newLogger(os.Stderr, spec.ID))
}

func runEdge(args []string) error {
	var spec api.EdgeSpec
	if err := roleSpec("edge", args, &spec); err != nil {
		return err
	}
	ctx, cancel := signalContext()
	defer cancel()
	e, err := edge.New(spec, newLogger(os.Stderr, spec.ID))
	if err != nil {
		return err
	}
	return e.Run(ctx)
}

func runDBRouter(args []string) error {
	var spec api.RouterSpec
	if err := roleSpec("dbrouter", args, &spec); err != nil {
		return err
	}
	ctx, cancel := signalContext()
	defer cancel()
	cfg := dbrouter.ConfigFromSpec(spec)
	r, err := dbrouter.New(cfg, newLogger(os.Stderr, "dbrouter"))
	if err != nil {
		return err
	}
	return r.Run(ctx)
}

// runDNS serves the zone. Its spec is a geodns.Config as JSON (durations in
// nanoseconds), written whole by the controller from the dns section.
func runDNS(args []string) error {
	var spec geodns.Config
	if err := roleSpec("dns", args, &spec); err != nil {
		return err
	}
	ctx, cancel := signalContext()
	defer cancel()
	s, err := geodns.New(spec, newLogger(os.Stderr, "dns"))
	if err != nil {
		return err
	}
	return s.Run(ctx)
}
