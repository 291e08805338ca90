package controller

// The node group on Nomad (scheduler.kind nomad): the controller submits
// the node job and its variable, follows its allocations while it runs,
// and stops the job (and deletes the variable) when it stops.

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/config"
	"github.com/scalepress/scalepress/internal/nodegroup"
	"github.com/scalepress/scalepress/internal/nomadlaunch"
)

// nomadNodes owns the Nomad launcher and the goroutine that follows the
// job's allocations.
type nomadNodes struct {
	c      *Controller
	l      *nomadlaunch.Launcher
	cancel context.CancelFunc
	done   chan struct{}
}

// nomadConfig is the launcher's configuration from the scheduler section:
// each node runs `scalepress node-host` from the installed binary, its id
// and address from the allocation.
func (c *Controller) nomadConfig() nomadlaunch.Config {
	s := c.cfg.Scheduler
	nc := nomadlaunch.DefaultConfig()
	nc.Address, nc.TokenFile, nc.CAFile, nc.CertFile, nc.KeyFile = s.Address, s.TokenFile, s.CAFile, s.CertFile, s.KeyFile
	nc.Region, nc.Namespace, nc.Datacenters, nc.Job = s.Region, s.Namespace, s.Datacenters, s.Job
	nc.NodeMeta = s.NodeMeta
	nc.CPU, nc.MemoryMB = s.CPU, s.MemoryMB
	nc.Command = c.bin.Self
	nc.Args = []string{"node-host",
		"--spec", "${NOMAD_SECRETS_DIR}/" + nomadSpecName,
		"--slot", "${NOMAD_ALLOC_INDEX}",
		"--addr", "${NOMAD_IP_" + nomadlaunch.PortLabel + "}:${NOMAD_PORT_" + nomadlaunch.PortLabel + "}",
		// The host's own directory (node meta scalepress_dir); Nomad leaves
		// it as written when the client has no such meta, and node-host
		// then uses the allocation's directory.
		"--dir", "${meta." + NodeMetaDir + "}",
	}
	if c.onNomad(config.RoleRedis) {
		// So does redis: node-host relays the node's socket to it.
		nc.RedisService = c.redisJob()
		nc.Args = append(nc.Args, "--redis-from", "${NOMAD_TASK_DIR}/"+filepath.Base(nomadlaunch.RedisFollowFile))
	}
	if c.onNomad(config.RoleFiles) {
		// The files role moves with Nomad: each node follows its service.
		nc.FilesService = c.filesJob()
		nc.Args = append(nc.Args, "--files-from", "${NOMAD_TASK_DIR}/"+filepath.Base(nomadlaunch.FollowFile))
	}
	return nc
}

// NodeMetaDir is the Nomad node meta key naming the directory a client
// keeps its scalepress nodes in (their docroots, run directories, logs).
const NodeMetaDir = "scalepress_dir"

// nomadSpecName is nomadlaunch.SpecFile's name in the secrets directory.
var nomadSpecName = filepath.Base(nomadlaunch.SpecFile)

func (c *Controller) newNomadNodes() (*nomadNodes, error) {
	cfg := c.nomadConfig()
	cfg.Fence = c.fenceNomad
	// The job carries this run as its owner, and every write of it is
	// conditioned on the index this run last saw it at: a take-over
	// between the fence's read and the write is refused by Nomad (ADR 31).
	cfg.Owner, cfg.TakenOver = c.home.owner, c.standDown
	l, err := nomadlaunch.New(cfg, c.logger.With("component", "nomad"), func(e api.Event) { c.events.Add(e) })
	if err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	return &nomadNodes{c: c, l: l}, nil
}

// start writes the spec into the job's variable, registers the job (or
// adopts the one that runs: its nodes are returned for the group) and
// follows its allocations until stop.
func (n *nomadNodes) start(ctx context.Context) ([]nodegroup.Adopted, error) {
	spec, err := n.c.schedulerSpec()
	if err != nil {
		return nil, err
	}
	adopted, err := n.l.Submit(ctx, spec)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	n.cancel, n.done = cancel, make(chan struct{})
	go func() {
		defer close(n.done)
		n.l.Run(rctx)
	}()
	return adopted, nil
}

// stop stops the job (Nomad sends every node SIGTERM: its agent drains),
// waits until its allocations ended, and deletes the variable.
func (n *nomadNodes) stop(ctx context.Context) {
	if n.done == nil {
		return
	}
	t0 := time.Now()
	if err := n.l.Close(ctx); err != nil {
		n.c.logger.Warn("nomad: stop the node job", "err", err)
	} else {
		n.c.logger.Info("nomad: node job stopped", "took", time.Since(t0).Round(time.Millisecond))
	}
	n.cancel()
	<-n.done
}
