// Package nodehost prepares a PHP node on the machine that runs it and
// names its processes: php-fpm, whose master starts as root to run its
// workers as the PHP user; the filesync agent, as the role user in the PHP
// user's group, which owns the docroot; and the node agent, as the role
// user, which talks to php-fpm on a socket only it may open
// (docs/adr/0009-trust-model.md, "Least privilege"). The controller's
// local launcher and `scalepress node-host` (a Nomad task) both start a
// node from it.
package nodehost

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/atomicfile"
	"github.com/scalepress/scalepress/internal/fileperm"
	"github.com/scalepress/scalepress/internal/local"
	"github.com/scalepress/scalepress/internal/phpfpm"
	"github.com/scalepress/scalepress/internal/preflight"
	"github.com/scalepress/scalepress/internal/statedir"
	"github.com/scalepress/scalepress/internal/supervise"
	"github.com/scalepress/scalepress/internal/wordpress"
)

// Host prepares nodes on this machine.
type Host struct {
	Spec   api.NodeHostSpec
	AsRoot bool
	// PHPUser runs PHP; RoleUser the agents (set when AsRoot).
	PHPUser, RoleUser preflight.User
	// FromStore: a new docroot starts empty and the filesync agent fills
	// it from the files store (its bootstrap), instead of a copy of the
	// canonical tree in StateDir, which only the controller's machine has.
	// A node a scheduler runs on another host sets it.
	FromStore bool
	// FilesServerFile, when set, is a file whose first line is the files
	// role's base URL, kept current by whoever runs the node (node-host,
	// from the Nomad service of a files role job): the filesync agent
	// reads it before each request instead of Spec.Files.
	FilesServerFile string
	Logger          *slog.Logger
}

func (h Host) layout() statedir.Layout { return statedir.Layout{Dir: h.Spec.StateDir} }

// linkPool is the machine's link pool when the docroots are linked from it
// (docs/adr/0029-linked-docroot.md), else "": only with file sync, and only
// when PHP runs as another user than the filesync agent, which owns every
// linked file (as root; run as one user, PHP would own them and could
// change every node's copy).
func (h Host) linkPool() string {
	if !h.AsRoot || h.Spec.Files == "" || h.PHPUser.UID == h.RoleUser.UID || h.PHPUser.UID == 0 || h.RoleUser.UID == 0 {
		return ""
	}
	return h.layout().LinkPool()
}

// FilePolicy is which parts of the site tree PHP may write: uploads, and
// plugins, themes and their working directories unless code is deployed
// another way (wordpress.lock_code).
func FilePolicy(lockCode bool) fileperm.Policy {
	if lockCode {
		return fileperm.Policy{Writable: fileperm.Locked}
	}
	return fileperm.Policy{Writable: fileperm.Writable}
}

// Roles prepares node id (its docroot, run and state directories) to serve
// on addr and returns its processes in start order.
func (h Host) Roles(_ context.Context, id, addr string) ([]local.Role, error) {
	lay := h.layout()
	docroot, run := lay.Docroot(id), lay.NodeRun(id)
	if err := h.prepareDocroot(docroot); err != nil {
		return nil, fmt.Errorf("%s: %w", id, err)
	}
	fpm, err := h.phpFPMRole(id, run)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", id, err)
	}
	roles := []local.Role{fpm}
	bodies, err := h.bodyDir(run)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", id, err)
	}
	agent := api.NodeSpec{
		ID: id, Addr: addr, Docroot: docroot, RunDir: run,
		PHPChildren: h.Spec.PHPChildren,
		ForwardKey:  h.Spec.ForwardKey,
		BodyTimeout: h.Spec.BodyTimeout, MaxBody: h.Spec.MaxBody,
		BodyDir: bodies,
	}
	if h.Spec.Files != "" {
		fs, err := h.filesyncRole(id, docroot)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", id, err)
		}
		roles = append(roles, fs)
		agent.Files, agent.FilesState = h.Spec.Files, lay.NodeFilesState(id)
	}
	ar := local.Role{Name: id, Role: "node", Spec: agent,
		// A node that dies is replaced by a new one, not restarted in place.
		Restart: &supervise.RestartPolicy{Never: true},
		// It drains in-flight requests for up to 30 s.
		StopTimeout: 45 * time.Second,
	}
	h.asRoleUser(&ar, h.RoleUser.GID)
	return append(roles, ar), nil
}

// bodyDir makes the directory where the node agent keeps request bodies
// while they arrive: they hold passwords, so it is the agent user's alone.
func (h Host) bodyDir(run string) (string, error) {
	dir := filepath.Join(run, "bodies")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	if h.AsRoot {
		if err := os.Chown(dir, h.RoleUser.UID, h.RoleUser.GID); err != nil {
			return "", err
		}
	}
	return dir, os.Chmod(dir, 0o700)
}

// asRoleUser runs r as the role user with primary group gid, its spec
// readable by it alone. It does nothing when not root.
func (h Host) asRoleUser(r *local.Role, gid int) {
	if !h.AsRoot {
		return
	}
	r.Credential = &syscall.Credential{Uid: uint32(h.RoleUser.UID), Gid: uint32(gid)}
	r.SpecOwner = &[2]int{h.RoleUser.UID, gid}
}

// phpFPMRole writes node id's php-fpm configuration into run and returns
// its process: the master as root (it runs the workers as the PHP user),
// listening on a socket that only the node agent's user may open.
func (h Host) phpFPMRole(id, run string) (local.Role, error) {
	if err := os.MkdirAll(run, 0o755); err != nil {
		return local.Role{}, err
	}
	sock := filepath.Join(run, "php-fpm.sock")
	os.Remove(sock) // left by a killed php-fpm
	pool := phpfpm.Pool{
		Name:                    id,
		Listen:                  sock,
		MaxChildren:             h.Spec.PHPChildren,
		MaxRequests:             h.Spec.PHPMaxRequests,
		StatusPath:              "/fpm-status",
		PingPath:                "/fpm-ping",
		PidFile:                 filepath.Join(run, "php-fpm.pid"),
		ErrorLog:                h.layout().Log(id + "-php-fpm"),
		RequestTerminateTimeout: 120 * time.Second,
		Nice:                    h.Spec.PHPNice,
	}
	if h.AsRoot {
		pool.User, pool.Group = h.PHPUser.Name, preflight.GroupName(h.PHPUser.GID)
		pool.ListenOwner, pool.ListenGroup, pool.ListenMode = h.RoleUser.Name, preflight.GroupName(h.RoleUser.GID), "0660"
	}
	conf, err := phpfpm.Render(pool)
	if err != nil {
		return local.Role{}, err
	}
	// Every request passes the filesync agent's request gate first, so
	// that a unit it swaps in is never read half old, half new (ADR 26).
	gatePath := filepath.Join(run, "gate.php")
	iniCfg := phpfpm.DefaultINI()
	iniCfg.AutoPrependFile = gatePath
	ini, err := phpfpm.RenderINI(iniCfg)
	if err != nil {
		return local.Role{}, err
	}
	confPath, iniPath := filepath.Join(run, "php-fpm.conf"), filepath.Join(run, "php.ini")
	for path, b := range map[string][]byte{confPath: conf, iniPath: ini, gatePath: phpfpm.GateScript} {
		if err := atomicfile.Write(path, b, 0o644); err != nil {
			return local.Role{}, err
		}
	}
	return local.Role{
		Name:        id + "-php-fpm",
		Path:        h.Spec.PHPFPM,
		Args:        []string{"--nodaemonize", "--fpm-config", confPath, "-c", iniPath},
		StopSignal:  syscall.SIGQUIT, // graceful: running requests finish
		StopTimeout: 10 * time.Second,
		// PHP stays in the stack's autogroup at php_nice (process nice),
		// below the database, the controller and the agents. The edge has
		// an autogroup of its own (controller/services.go), so PHP's use of
		// this group's share no longer makes hits wait (ADR 24). An
		// autogroup of PHP's own at nice 10 was tried: all of PHP then
		// weighed a tenth of any other session on the host, and a backup
		// to a local S3 server refused searches (TestBackupRestore/s3).
		// A php-fpm that dies is restarted in place; one that keeps dying
		// fails the node, which is then replaced.
		Restart: &supervise.RestartPolicy{MaxRestarts: 5, Window: time.Minute},
	}, nil
}

// filesyncRole prepares node id's filesync state directory and returns the
// agent that keeps docroot identical to the files role. It runs as the role
// user in the PHP user's group, so what it writes is the site's: PHP can
// write it where the file policy lets PHP write, and nowhere else.
func (h Host) filesyncRole(id, docroot string) (local.Role, error) {
	tok, ok := h.Spec.FilesTokens[id]
	if !ok {
		return local.Role{}, fmt.Errorf("no files token for %s in the spec", id)
	}
	state := h.layout().NodeFilesState(id)
	if err := os.MkdirAll(state, 0o750); err != nil {
		return local.Role{}, err
	}
	if h.AsRoot {
		if err := os.Chown(state, h.RoleUser.UID, h.PHPUser.GID); err != nil {
			return local.Role{}, err
		}
	}
	pool := h.linkPool()
	if pool != "" {
		// The agent's alone: PHP never reaches an entry by its pool name.
		if err := os.MkdirAll(pool, 0o700); err != nil {
			return local.Role{}, err
		}
		if err := os.Chown(pool, h.RoleUser.UID, h.RoleUser.GID); err != nil {
			return local.Role{}, err
		}
		if err := os.Chmod(pool, 0o700); err != nil {
			return local.Role{}, err
		}
	}
	r := local.Role{
		Name: id + "-filesync", Role: "filesync",
		Spec: api.FilesyncSpec{
			NodeID: id, Server: "http://" + h.Spec.Files, ServerFile: h.FilesServerFile, Token: tok,
			Docroot: docroot, StateDir: state, Rules: h.Spec.FilesRules,
			LinkPool: pool,
		},
		StopTimeout: 10 * time.Second,
		Restart:     &supervise.RestartPolicy{MaxRestarts: 1000, Window: time.Minute},
	}
	h.asRoleUser(&r, h.PHPUser.GID)
	return r, nil
}

// prepareDocroot gives a node its own copy of the site tree (a copy of the
// canonical tree made at first start, which file sync keeps identical),
// owned by the role user and the PHP user's group, with the modes of the
// file policy. With a link pool the docroot starts empty: the filesync
// agent's bootstrap links what PHP cannot write and copies the rest, which
// costs a link per file where the copy cost a read and a write.
func (h Host) prepareDocroot(docroot string) error {
	if err := os.MkdirAll(filepath.Dir(docroot), 0o755); err != nil {
		return err
	}
	fromStore := (h.FromStore || h.linkPool() != "") && h.Spec.Files != ""
	if h.FromStore && !fromStore {
		return errors.New("docroot: no files role to bootstrap it from (files.enabled is off)")
	}
	if _, err := os.Stat(docroot); os.IsNotExist(err) {
		if fromStore {
			// The node is not in service before its filesync agent has
			// bootstrapped the tree (the group waits for it).
			err = os.Mkdir(docroot, 0o755)
		} else {
			err = wordpress.CopyTree(h.layout().Site(), docroot, h.Logger)
		}
		if err != nil {
			return err
		}
	}
	if err := WriteWPConfig(docroot, []byte(h.Spec.WPConfig), h.AsRoot, h.PHPUser.GID); err != nil {
		return err
	}
	// The store holds the drop-ins (the controller installs them in the
	// canonical tree before seeding it): a tree still empty gets them
	// with its bootstrap.
	if _, err := os.Stat(filepath.Join(docroot, "wp-content")); err == nil || !fromStore {
		if err := wordpress.InstallDropins(docroot); err != nil {
			return err
		}
	}
	return wordpress.SetPermissions(docroot, FilePolicy(h.Spec.LockCode), h.AsRoot, h.RoleUser.UID, h.PHPUser.GID)
}

// WriteWPConfig writes wp-config.php into a tree: readable by the PHP user
// only (group gid when asRoot).
func WriteWPConfig(docroot string, b []byte, asRoot bool, gid int) error {
	path := filepath.Join(docroot, "wp-config.php")
	if err := atomicfile.Write(path, b, 0o640); err != nil {
		return err
	}
	if asRoot {
		if err := os.Chown(path, 0, gid); err != nil {
			return fmt.Errorf("wp-config: %w", err)
		}
	}
	return nil
}
