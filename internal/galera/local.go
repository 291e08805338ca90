package galera

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/scalepress/scalepress/internal/logtail"
)

// Local is the Host of members on this machine: it reads their datadirs
// itself and starts mariadbd through a Starter. The controller uses it for
// members on one machine; a db-agent uses it for the members of its host.
type Local struct {
	starter Starter
	bin     Binaries
}

var _ Host = (*Local)(nil)

// NewLocal returns a Local that runs bin through starter.
func NewLocal(starter Starter, bin Binaries) *Local { return &Local{starter: starter, bin: bin} }

// Prepare checks galera-4 for a cluster member and writes my.cnf.
func (l *Local) Prepare(_ context.Context, m MemberConfig) error {
	if m.Clustered() {
		if err := CheckProvider(); err != nil {
			return err
		}
	}
	return writeConfig(m)
}

// Inspect reads the datadir.
func (l *Local) Inspect(_ context.Context, m MemberConfig) (Disk, error) {
	d := Disk{HasData: hasData(m), ViewID: ViewID(m.DataDir())}
	if _, err := os.Stat(filepath.Join(m.DataDir(), initMarker)); err == nil {
		d.Initialized = true
	}
	if g, ok, _ := ReadGraState(m.DataDir()); ok {
		d.Grastate = &g
	}
	return d, nil
}

// Init makes a new database.
func (l *Local) Init(ctx context.Context, m MemberConfig) error { return initialize(ctx, m, l.bin) }

// Recover runs --wsrep-recover.
func (l *Local) Recover(ctx context.Context, m MemberConfig) (Position, error) {
	return Recover(ctx, m, l.bin)
}

// ClearForSST empties the datadir behind the SST marker.
func (l *Local) ClearForSST(_ context.Context, m MemberConfig) error {
	if err := os.WriteFile(m.sstMarker(), []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644); err != nil {
		return fmt.Errorf("galera: join: %w", err)
	}
	entries, _ := os.ReadDir(m.DataDir())
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(m.DataDir(), e.Name())); err != nil {
			return fmt.Errorf("galera: join: clear datadir: %w", err)
		}
	}
	if err := os.MkdirAll(m.DataDir(), 0o750); err != nil {
		return fmt.Errorf("galera: join: %w", err)
	}
	return chown(m.DataDir(), m.UID, m.GID)
}

// SSTDone removes the SST marker.
func (l *Local) SSTDone(_ context.Context, m MemberConfig) error {
	if err := os.Remove(m.sstMarker()); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("galera: sst done: %w", err)
	}
	return nil
}

// SetSafeToBootstrap rewrites grastate.dat when there is one.
func (l *Local) SetSafeToBootstrap(_ context.Context, m MemberConfig, safe bool) error {
	if _, ok, _ := ReadGraState(m.DataDir()); !ok {
		return nil
	}
	return SetSafeToBootstrap(m.DataDir(), safe)
}

// Start runs mariadbd through the starter.
func (l *Local) Start(_ context.Context, m MemberConfig, mode StartMode, pos *Position) (Proc, error) {
	args, err := StartArgs(mode, pos)
	if err != nil {
		return nil, err
	}
	path, argv := Command(m, l.bin, args...)
	return l.starter.StartMember(m, path, argv)
}

// Adopt finds nothing: a local member is the controller's child and ends
// with it.
func (l *Local) Adopt(context.Context, MemberConfig) (Proc, bool, error) { return nil, false, nil }

// LastError reads the tail of the member's log.
func (l *Local) LastError(_ context.Context, m MemberConfig) string {
	return logtail.LastError(l.starter.LogFile(m.ID))
}

// LogName is the member's log file.
func (l *Local) LogName(m MemberConfig) string { return l.starter.LogFile(m.ID) }

// Ping runs SELECT 1 over the socket.
func (l *Local) Ping(ctx context.Context, m MemberConfig) error { return Ping(ctx, m, l.bin) }

// EnsureSite creates the site's database and users.
func (l *Local) EnsureSite(ctx context.Context, m MemberConfig, g Grant) error {
	return EnsureSite(ctx, m, l.bin, g)
}

// PCBootstrap sets pc.bootstrap=YES.
func (l *Local) PCBootstrap(ctx context.Context, m MemberConfig) error {
	_, err := RootSQL(ctx, m, l.bin, "SET GLOBAL wsrep_provider_options='pc.bootstrap=YES';")
	return err
}

// hasData: the datadir holds a database made by install-db or received by a
// completed SST.
func hasData(mc MemberConfig) bool {
	if _, err := os.Stat(mc.sstMarker()); err == nil {
		return false
	}
	if fi, err := os.Stat(filepath.Join(mc.DataDir(), "mysql")); err != nil || !fi.IsDir() {
		return false
	}
	for _, f := range []string{initMarker, "grastate.dat"} {
		if _, err := os.Stat(filepath.Join(mc.DataDir(), f)); err == nil {
			return true
		}
	}
	return false
}
