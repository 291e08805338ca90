package node

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/supervise"
)

// startFilesync starts the node's filesync agent (`scalepress filesync`) as
// a child, as the PHP user when the agent runs as root, so that the files it
// writes belong to the site. Nil when file sync is off.
func (a *Agent) startFilesync(sup *supervise.Supervisor) (*supervise.Process, error) {
	if a.spec.Files == "" {
		return nil, nil
	}
	if !filepath.IsAbs(a.spec.FilesState) {
		return nil, fmt.Errorf("node %s: files_state must be an absolute path, got %q", a.spec.ID, a.spec.FilesState)
	}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("node %s: filesync: %w", a.spec.ID, err)
	}
	fs := api.FilesyncSpec{
		NodeID: a.spec.ID, Server: "http://" + a.spec.Files,
		Docroot: a.spec.Docroot, StateDir: a.spec.FilesState,
	}
	if a.spec.FilesRules != nil {
		fs.Rules = *a.spec.FilesRules
	}
	if err := os.MkdirAll(a.spec.RunDir, 0o755); err != nil {
		return nil, fmt.Errorf("node %s: %w", a.spec.ID, err)
	}
	path := filepath.Join(a.spec.RunDir, "filesync.json")
	if err := api.WriteSpec(path, fs); err != nil {
		return nil, fmt.Errorf("node %s: %w", a.spec.ID, err)
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 && a.spec.PHPUser != "" {
		u, err := user.Lookup(a.spec.PHPUser)
		if err != nil {
			return nil, fmt.Errorf("node %s: filesync user: %w", a.spec.ID, err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		// The spec holds no secret; the agent's user must read it.
		if err := os.Chown(path, uid, gid); err != nil {
			return nil, fmt.Errorf("node %s: %w", a.spec.ID, err)
		}
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	p, err := sup.Start(supervise.Spec{
		Name:        a.spec.ID + "-filesync",
		Path:        self,
		Args:        []string{"filesync", "--spec", path},
		LogFile:     filepath.Join(a.spec.LogDir, a.spec.ID+"-filesync.log"),
		Credential:  cred,
		StopTimeout: 10 * time.Second,
		PIDDir:      a.spec.PIDDir,
		Restart:     supervise.RestartPolicy{MaxRestarts: 1000, Window: time.Minute},
	})
	if err != nil {
		return nil, fmt.Errorf("node %s: start filesync: %w", a.spec.ID, err)
	}
	return p, nil
}

// filesApplied reads the sequence number the filesync agent last applied;
// ok is false until its docroot has been bootstrapped.
func (a *Agent) filesApplied() (seq uint64, ok bool) {
	if a.spec.Files == "" {
		return 0, false
	}
	b, err := os.ReadFile(filepath.Join(a.spec.FilesState, "applied"))
	if err != nil {
		return 0, false
	}
	seq, err = strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	return seq, err == nil
}

func stopProc(p *supervise.Process, timeout time.Duration) {
	if p == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	p.Stop(ctx)
}
