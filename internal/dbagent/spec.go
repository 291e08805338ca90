package dbagent

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/galera"
	"github.com/scalepress/scalepress/internal/supervise"
	"github.com/scalepress/scalepress/internal/token"
)

// FromSpec is the agent's Config from its spec. When the agent runs as
// root, the members run as spec.User (mysql by default) and their files
// are that user's.
func FromSpec(spec api.DBAgentSpec) (Config, error) {
	cfg := DefaultConfig()
	cfg.ID, cfg.Addr = spec.ID, spec.Addr
	key, err := token.ParseKey(spec.Key)
	if err != nil {
		return cfg, fmt.Errorf("dbagent: spec key: %w", err)
	}
	cfg.Key = key
	uid, gid := -1, -1
	if os.Geteuid() == 0 {
		name := spec.User
		if name == "" {
			name = "mysql"
		}
		u, err := user.Lookup(name)
		if err != nil {
			return cfg, fmt.Errorf("dbagent: spec user %q: %w (Debian's mariadb-server makes mysql)", name, err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
	}
	for _, m := range spec.Members {
		cfg.Members = append(cfg.Members, galera.MemberConfig{
			ID: m.ID, Addr: m.Addr, Dir: m.Dir, BufferPool: m.BufferPool, UID: uid, GID: gid,
			Peers: m.Peers, PeerIDs: m.PeerIDs, ClusterName: m.ClusterName,
			SSTMethod: m.SSTMethod, GcacheSize: m.GcacheSize,
		})
	}
	return cfg, cfg.Validate()
}

// Starter runs the members' mariadbd as supervised children of the agent,
// never restarted (every start is the controller's decision), as the
// members' user, with the log in the member's directory.
type Starter struct {
	sup  *supervise.Supervisor
	dirs map[string]string
}

var _ galera.Starter = (*Starter)(nil)

// NewStarter returns a Starter for cfg's members.
func NewStarter(sup *supervise.Supervisor, cfg Config) *Starter {
	s := &Starter{sup: sup, dirs: map[string]string{}}
	for _, m := range cfg.Members {
		s.dirs[m.ID] = m.Dir
	}
	return s
}

// StartMember starts path with args for m.
func (s *Starter) StartMember(m galera.MemberConfig, path string, args []string) (galera.Proc, error) {
	spec := supervise.Spec{
		Name: m.ID, Path: path, Args: args, LogFile: s.LogFile(m.ID),
		PIDDir: m.RunDir(), Restart: supervise.RestartPolicy{Never: true}, StopTimeout: 60 * time.Second,
	}
	if m.UID >= 0 && os.Geteuid() == 0 {
		spec.Credential = &syscall.Credential{Uid: uint32(m.UID), Gid: uint32(m.GID)}
	}
	return s.sup.Start(spec)
}

// LogFile is DIR/mariadbd.log of the member.
func (s *Starter) LogFile(id string) string { return filepath.Join(s.dirs[id], "mariadbd.log") }
