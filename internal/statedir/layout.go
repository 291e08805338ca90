// Package statedir owns the state directory (DIR): where every file lives
// (Layout), the secrets kept in DIR/secrets and the state file.
package statedir

import (
	"path/filepath"
)

// Layout names every path in the state directory.
type Layout struct{ Dir string }

func (l Layout) StateFile() string      { return filepath.Join(l.Dir, "state.json") }
func (l Layout) Secrets() string        { return filepath.Join(l.Dir, "secrets") }
func (l Layout) Secret(n string) string { return filepath.Join(l.Secrets(), n) }
func (l Layout) Logs() string           { return filepath.Join(l.Dir, "logs") }
func (l Layout) Log(n string) string    { return filepath.Join(l.Logs(), n+".log") }
func (l Layout) Run() string            { return filepath.Join(l.Dir, "run") }
func (l Layout) PIDs() string           { return filepath.Join(l.Run(), "pids") }
func (l Layout) Specs() string          { return filepath.Join(l.Run(), "specs") }
func (l Layout) ControllerPID() string  { return filepath.Join(l.Run(), "controller.pid") }
func (l Layout) ControllerErr() string  { return filepath.Join(l.Run(), "controller.err") }
func (l Layout) Lock() string           { return filepath.Join(l.Run(), "controller.lock") }
func (l Layout) DBMember(id string) string {
	return filepath.Join(l.Dir, "db", id)
}
func (l Layout) Redis() string            { return filepath.Join(l.Dir, "redis") }
func (l Layout) Site() string             { return filepath.Join(l.Dir, "site") }
func (l Layout) Node(id string) string    { return filepath.Join(l.Dir, "nodes", id) }
func (l Layout) Docroot(id string) string { return filepath.Join(l.Node(id), "docroot") }
func (l Layout) NodeRun(id string) string { return filepath.Join(l.Node(id), "run") }
func (l Layout) Spec(name string) string  { return filepath.Join(l.Specs(), name+".json") }
func (l Layout) ControllerLog() string    { return l.Log("controller") }

// ACME is the certificate storage every edge shares (account, certificates,
// locks, challenge tokens), owned by the role user.
func (l Layout) ACME() string { return filepath.Join(l.Dir, "tls", "acme") }

// Files is the files role's store (blobs, change log, snapshots).
func (l Layout) Files() string { return filepath.Join(l.Dir, "files") }

// LinkPool is where the filesync agents of this machine keep the files
// they hard-link into the docroots (docs/adr/0029-linked-docroot.md): beside
// the nodes, on their filesystem; its name is no node id.
func (l Layout) LinkPool() string { return filepath.Join(l.Dir, "nodes", ".linkpool") }

// NodeFilesState is a node's filesync state directory, outside its docroot.
func (l Layout) NodeFilesState(id string) string { return filepath.Join(l.Node(id), "filesync") }
