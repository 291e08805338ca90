package cli

import (
	"os"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/dbagent"
	"github.com/scalepress/scalepress/internal/galera"
	"github.com/scalepress/scalepress/internal/supervise"
)

// runDBAgent runs the members of one DB host for a controller elsewhere
// (docs/adr/0018-galera-across-hosts.md).
func runDBAgent(args []string) error {
	var spec api.DBAgentSpec
	if err := roleSpec("db-agent", args, &spec); err != nil {
		return err
	}
	cfg, err := dbagent.FromSpec(spec)
	if err != nil {
		return err
	}
	bin, err := galera.FindBinaries()
	if err != nil {
		return err
	}
	logger := newLogger(os.Stderr, "db-agent-"+spec.ID)
	sup := supervise.New(logger)
	defer sup.Close()
	a, err := dbagent.New(cfg, galera.NewLocal(dbagent.NewStarter(sup, cfg), bin), logger)
	if err != nil {
		return err
	}
	ctx, cancel := signalContext()
	defer cancel()
	return a.Run(ctx)
}
