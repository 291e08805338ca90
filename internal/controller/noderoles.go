package controller

// A node's processes are internal/nodehost's to prepare and name, for the
// nodes the controller runs itself (the local launcher) and for those a
// scheduler runs (`scalepress node-host`): this file builds the spec they
// share.

import (
	"context"
	"encoding/json"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/config"
	"github.com/scalepress/scalepress/internal/fileperm"
	"github.com/scalepress/scalepress/internal/local"
	"github.com/scalepress/scalepress/internal/nodegroup"
	"github.com/scalepress/scalepress/internal/nodehost"
	"github.com/scalepress/scalepress/internal/token"
)

// filePolicy is which parts of the site tree PHP may write.
func (c *Controller) filePolicy() fileperm.Policy {
	return nodehost.FilePolicy(c.cfg.WordPress.LockCode)
}

// nodeHostSpec is what a node needs but its id and address, with the files
// tokens of ids.
func (c *Controller) nodeHostSpec(ids ...string) (api.NodeHostSpec, error) {
	wp, err := c.renderWPConfig(c.onNomad(config.RoleRedis))
	if err != nil {
		return api.NodeHostSpec{}, err
	}
	s := api.NodeHostSpec{
		StateDir: c.layout.Dir, PHPFPM: c.bin.PHPFPM, WPConfig: string(wp),
		PHPChildren: c.phpChildren(), PHPMaxRequests: c.cfg.Nodes.PHPMaxRequests, PHPNice: c.cfg.Nodes.PHPNice,
		ForwardKey:  c.secrets.Key(token.Forward).Hex(),
		BodyTimeout: c.cfg.HTTP.BodyTimeout.String(), MaxBody: int64(c.cfg.HTTP.MaxBodyMB) << 20,
		LockCode: c.cfg.WordPress.LockCode,
	}
	if c.cfg.Files.Enabled {
		s.Files, s.FilesRules, s.FilesTokens = c.cfg.Files.Addr, c.filesRules(), map[string]string{}
		for _, id := range ids {
			s.FilesTokens[id] = c.filesToken(id)
		}
	}
	return s, nil
}

// schedulerSpec is the spec of every node a scheduler may run, as JSON:
// the files tokens of node-1 .. node-MaxNodes.
func (c *Controller) schedulerSpec() ([]byte, error) {
	var ids []string
	for i := 1; i <= c.cfg.MaxNodes(); i++ {
		ids = append(ids, config.NodeID(i))
	}
	s, err := c.nodeHostSpec(ids...)
	if err != nil {
		return nil, err
	}
	return json.Marshal(s)
}

// nodeRoles prepares node n (its docroot, run and state directories) and
// returns its processes in start order.
func (c *Controller) nodeRoles(ctx context.Context, n nodegroup.Node) ([]local.Role, error) {
	s, err := c.nodeHostSpec(n.ID)
	if err != nil {
		return nil, err
	}
	h := nodehost.Host{Spec: s, AsRoot: c.asRoot, PHPUser: c.phpUser, RoleUser: c.roleUser, Logger: c.logger}
	return h.Roles(ctx, n.ID, n.Addr)
}
