package galera

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Recover runs mariadbd --wsrep-recover on a stopped member and returns the
// position InnoDB holds ("WSREP: Recovered position: uuid:seqno"). After a
// crash grastate.dat says seqno -1; starting without this position would
// make the member fetch a full copy (SST) instead of the gap (IST).
// The output is kept in DIR/db/ID/recover.log.
func Recover(ctx context.Context, c MemberConfig, bin Binaries) (Position, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute) // InnoDB crash recovery of a large redo log
	defer cancel()
	cmd := exec.CommandContext(ctx, bin.Mariadbd, "--defaults-file="+c.MyCnf(), "--wsrep-recover")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if c.UID >= 0 && os.Geteuid() == 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(c.UID), Gid: uint32(c.GID)}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	os.WriteFile(filepath.Join(c.Dir, "recover.log"), out.Bytes(), 0o644)
	if err != nil {
		return Position{}, fmt.Errorf("galera: recover %s: %v: %s", c.ID, err, lastLines(out.Bytes(), 3))
	}
	p, err := ParseRecovered(out.Bytes())
	if err != nil {
		return Position{}, fmt.Errorf("galera: recover %s: %w", c.ID, err)
	}
	return p, nil
}
