package controller

// A node's processes (docs/adr/0009-trust-model.md, "Least privilege"):
// php-fpm, whose master starts as root to run its workers as the PHP user;
// the filesync agent, as the role user in the PHP user's group, which owns
// the docroot; and the node agent, as the role user, which talks to php-fpm
// on a socket only it may open.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/atomicfile"
	"github.com/scalepress/scalepress/internal/fileperm"
	"github.com/scalepress/scalepress/internal/local"
	"github.com/scalepress/scalepress/internal/nodegroup"
	"github.com/scalepress/scalepress/internal/phpfpm"
	"github.com/scalepress/scalepress/internal/preflight"
	"github.com/scalepress/scalepress/internal/supervise"
	"github.com/scalepress/scalepress/internal/token"
	"github.com/scalepress/scalepress/internal/wordpress"
)

// filePolicy is which parts of the site tree PHP may write: uploads, and
// plugins, themes and their working directories unless code is deployed
// another way (wordpress.lock_code).
func (c *Controller) filePolicy() fileperm.Policy {
	if c.cfg.WordPress.LockCode {
		return fileperm.Policy{Writable: fileperm.Locked}
	}
	return fileperm.Policy{Writable: fileperm.Writable}
}

// nodeRoles prepares node n (its docroot, run and state directories) and
// returns its processes in start order.
func (c *Controller) nodeRoles(_ context.Context, n nodegroup.Node) ([]local.Role, error) {
	docroot, run := c.layout.Docroot(n.ID), c.layout.NodeRun(n.ID)
	if err := c.prepareDocroot(docroot); err != nil {
		return nil, fmt.Errorf("%s: %w", n.ID, err)
	}
	fpm, err := c.phpFPMRole(n.ID, run)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", n.ID, err)
	}
	roles := []local.Role{fpm}
	bodies, err := c.bodyDir(run)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", n.ID, err)
	}
	agent := api.NodeSpec{
		ID: n.ID, Addr: n.Addr, Docroot: docroot, RunDir: run,
		PHPChildren: c.phpChildren(),
		ForwardKey:  c.secrets.Key(token.Forward).Hex(),
		BodyTimeout: c.cfg.HTTP.BodyTimeout.String(), MaxBody: int64(c.cfg.HTTP.MaxBodyMB) << 20,
		BodyDir: bodies,
	}
	if c.cfg.Files.Enabled {
		fs, err := c.filesyncRole(n.ID, docroot)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n.ID, err)
		}
		roles = append(roles, fs)
		agent.Files, agent.FilesState = c.cfg.Files.Addr, c.layout.NodeFilesState(n.ID)
	}
	ar := local.Role{Name: n.ID, Role: "node", Spec: agent,
		// A node that dies is replaced by a new one, not restarted in place.
		Restart: &supervise.RestartPolicy{Never: true},
		// It drains in-flight requests for up to 30 s.
		StopTimeout: 45 * time.Second,
	}
	c.asRoleUser(&ar, c.roleUser.GID)
	return append(roles, ar), nil
}

// bodyDir makes the directory where the node agent keeps request bodies
// while they arrive: they hold passwords, so it is the agent user's alone.
func (c *Controller) bodyDir(run string) (string, error) {
	dir := filepath.Join(run, "bodies")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	if c.asRoot {
		if err := os.Chown(dir, c.roleUser.UID, c.roleUser.GID); err != nil {
			return "", err
		}
	}
	return dir, os.Chmod(dir, 0o700)
}

// asRoleUser runs r as the role user with primary group gid, its spec
// readable by it alone. It does nothing when the controller is not root.
func (c *Controller) asRoleUser(r *local.Role, gid int) {
	if !c.asRoot {
		return
	}
	r.Credential = &syscall.Credential{Uid: uint32(c.roleUser.UID), Gid: uint32(gid)}
	r.SpecOwner = &[2]int{c.roleUser.UID, gid}
}

// phpFPMRole writes node id's php-fpm configuration into run and returns
// its process: the master as root (it runs the workers as the PHP user),
// listening on a socket that only the node agent's user may open.
func (c *Controller) phpFPMRole(id, run string) (local.Role, error) {
	if err := os.MkdirAll(run, 0o755); err != nil {
		return local.Role{}, err
	}
	sock := filepath.Join(run, "php-fpm.sock")
	os.Remove(sock) // left by a killed php-fpm
	pool := phpfpm.Pool{
		Name:                    id,
		Listen:                  sock,
		MaxChildren:             c.phpChildren(),
		MaxRequests:             c.cfg.Nodes.PHPMaxRequests,
		StatusPath:              "/fpm-status",
		PingPath:                "/fpm-ping",
		PidFile:                 filepath.Join(run, "php-fpm.pid"),
		ErrorLog:                c.layout.Log(id + "-php-fpm"),
		RequestTerminateTimeout: 120 * time.Second,
	}
	if c.asRoot {
		pool.User, pool.Group = c.phpUser.Name, preflight.GroupName(c.phpUser.GID)
		pool.ListenOwner, pool.ListenGroup, pool.ListenMode = c.roleUser.Name, preflight.GroupName(c.roleUser.GID), "0660"
	}
	conf, err := phpfpm.Render(pool)
	if err != nil {
		return local.Role{}, err
	}
	ini, err := phpfpm.RenderINI(phpfpm.DefaultINI())
	if err != nil {
		return local.Role{}, err
	}
	confPath, iniPath := filepath.Join(run, "php-fpm.conf"), filepath.Join(run, "php.ini")
	for path, b := range map[string][]byte{confPath: conf, iniPath: ini} {
		if err := atomicfile.Write(path, b, 0o644); err != nil {
			return local.Role{}, err
		}
	}
	return local.Role{
		Name:        id + "-php-fpm",
		Path:        c.bin.PHPFPM,
		Args:        []string{"--nodaemonize", "--fpm-config", confPath, "-c", iniPath},
		StopSignal:  syscall.SIGQUIT, // graceful: running requests finish
		StopTimeout: 10 * time.Second,
		// A php-fpm that dies is restarted in place; one that keeps dying
		// fails the node, which is then replaced.
		Restart: &supervise.RestartPolicy{MaxRestarts: 5, Window: time.Minute},
	}, nil
}

// filesyncRole prepares node id's filesync state directory and returns the
// agent that keeps docroot identical to the files role. It runs as the role
// user in the PHP user's group, so what it writes is the site's: PHP can
// write it where the file policy lets PHP write, and nowhere else.
func (c *Controller) filesyncRole(id, docroot string) (local.Role, error) {
	state := c.layout.NodeFilesState(id)
	if err := os.MkdirAll(state, 0o750); err != nil {
		return local.Role{}, err
	}
	if c.asRoot {
		if err := os.Chown(state, c.roleUser.UID, c.phpUser.GID); err != nil {
			return local.Role{}, err
		}
	}
	r := local.Role{
		Name: id + "-filesync", Role: "filesync",
		Spec: api.FilesyncSpec{
			NodeID: id, Server: "http://" + c.cfg.Files.Addr, Token: c.filesToken(id),
			Docroot: docroot, StateDir: state, Rules: c.filesRules(),
		},
		StopTimeout: 10 * time.Second,
		Restart:     &supervise.RestartPolicy{MaxRestarts: 1000, Window: time.Minute},
	}
	c.asRoleUser(&r, c.phpUser.GID)
	return r, nil
}

// prepareDocroot gives a node its own copy of the site tree (a copy of the
// canonical tree made at first start, which file sync keeps identical),
// owned by the role user and the PHP user's group, with the modes of the
// file policy.
func (c *Controller) prepareDocroot(docroot string) error {
	if err := os.MkdirAll(filepath.Dir(docroot), 0o755); err != nil {
		return err
	}
	if _, err := os.Stat(docroot); os.IsNotExist(err) {
		if err := wordpress.CopyTree(c.layout.Site(), docroot, c.logger); err != nil {
			return err
		}
	}
	if err := c.writeWPConfig(docroot); err != nil {
		return err
	}
	if err := wordpress.InstallDropins(docroot); err != nil {
		return err
	}
	return wordpress.SetPermissions(docroot, c.filePolicy(), c.asRoot, c.roleUser.UID, c.phpUser.GID)
}
