package backup

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/scalepress/scalepress/internal/galera"
)

// streamDB runs mariadb-backup against member m and writes its xbstream to
// w. A Galera member is desynced around the copy (wsrep_desync): it may fall
// behind while mariadb-backup holds its backup locks, and the cluster's flow
// control does not wait for it, so writers on the other members never stall.
func streamDB(ctx context.Context, tools Tools, m galera.MemberConfig, work string, w io.Writer) (err error) {
	bin := galera.Binaries{Client: tools.Client}
	if m.Clustered() {
		if _, err := galera.RootSQL(ctx, m, bin, "SET GLOBAL wsrep_desync = ON;"); err != nil {
			return fmt.Errorf("desync %s: %w", m.ID, err)
		}
		defer func() {
			// Back in sync even when ctx ended: a member left desynced
			// would stop counting for flow control for good.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			if _, rerr := galera.RootSQL(rctx, m, bin, "SET GLOBAL wsrep_desync = OFF;"); rerr != nil && err == nil {
				err = fmt.Errorf("resync %s: %w", m.ID, rerr)
			}
		}()
	}
	tdir := filepath.Join(work, "stream")
	if err := os.MkdirAll(tdir, 0o700); err != nil {
		return err
	}
	args := []string{"--no-defaults", "--backup", "--stream=xbstream",
		"--datadir=" + m.DataDir(), "--socket=" + m.Socket(), "--user=root", "--target-dir=" + tdir,
		// At the end, commits are blocked (BACKUP STAGE BLOCK_COMMIT) until
		// the redo log copier has caught up; it looks every interval, 1 s by
		// default: a write pause of up to that on a writer. 50 ms bounds it.
		"--log-copy-interval=50"}
	if m.Clustered() {
		args = append(args, "--galera-info")
	}
	cmd := exec.CommandContext(ctx, tools.Backup, args...)
	var stderr tailBuffer
	cmd.Stdout, cmd.Stderr = w, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("mariadb-backup of %s: %v: %s", m.ID, err, stderr.last(3))
	}
	return nil
}

// extract unpacks an xbstream into dir (which must exist and be empty).
func extract(ctx context.Context, tools Tools, r io.Reader, dir string) error {
	cmd := exec.CommandContext(ctx, tools.Mbstream, "-x", "-C", dir)
	var stderr tailBuffer
	cmd.Stdin, cmd.Stderr = r, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("mbstream: %v: %s", err, stderr.last(3))
	}
	return nil
}

// prepare makes an extracted copy consistent (mariadb-backup --prepare).
func prepare(ctx context.Context, tools Tools, dir string) error {
	cmd := exec.CommandContext(ctx, tools.Backup, "--no-defaults", "--prepare", "--target-dir="+dir)
	var out tailBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("mariadb-backup --prepare: %v: %s", err, out.last(3))
	}
	return nil
}

// position is where an extracted copy stands.
type position struct {
	galeraUUID  string
	galeraSeqno int64
	gtid        string
}

// readPosition reads what mariadb-backup recorded beside the copy.
func readPosition(dir string) (position, error) {
	p := position{galeraSeqno: -1}
	if b, err := os.ReadFile(filepath.Join(dir, "xtrabackup_binlog_info")); err == nil {
		f := strings.Fields(string(b))
		if len(f) >= 3 {
			p.gtid = f[2]
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return p, err
	}
	if b, err := os.ReadFile(filepath.Join(dir, "xtrabackup_galera_info")); err == nil {
		f := strings.Fields(string(b))
		if len(f) > 0 {
			pos, err := galera.ParsePosition(f[0])
			if err != nil {
				return p, fmt.Errorf("xtrabackup_galera_info: %w", err)
			}
			p.galeraUUID, p.galeraSeqno = pos.UUID, pos.Seqno
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return p, err
	}
	return p, nil
}

// scratch is a mariadbd of our own on a prepared copy: no network, its
// socket in a private directory, no binary log, wsrep off. It counts rows
// and replays binary logs.
type scratch struct {
	tools Tools
	run   string
	cmd   *exec.Cmd
	done  chan error
	log   tailBuffer
}

func (s *scratch) socket() string { return filepath.Join(s.run, "mysqld.sock") }

// startScratch starts a server on datadir and waits until it answers.
func startScratch(ctx context.Context, tools Tools, datadir, run string) (*scratch, error) {
	if err := os.MkdirAll(run, 0o700); err != nil {
		return nil, err
	}
	s := &scratch{tools: tools, run: run, done: make(chan error, 1)}
	// As root it runs as root: its datadir and socket are in directories
	// only root can reach, and it listens on no port.
	user := "root"
	if os.Geteuid() != 0 {
		user = ""
	}
	args := []string{"--no-defaults", "--datadir=" + datadir, "--socket=" + s.socket(),
		"--pid-file=" + filepath.Join(run, "mysqld.pid"), "--tmpdir=" + run,
		"--skip-networking", "--skip-log-bin", "--wsrep-on=OFF", "--innodb-buffer-pool-size=64M",
		"--skip-slave-start", "--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci"}
	if user != "" {
		args = append(args, "--user="+user)
	}
	s.cmd = exec.Command(tools.Mariadbd, args...)
	s.cmd.Stdout, s.cmd.Stderr = &s.log, &s.log
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("scratch mariadbd: %w", err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if _, err := s.sql(ctx, "SELECT 1;"); err == nil {
			return s, nil
		}
		select {
		case err := <-s.done:
			s.done <- err
			return nil, fmt.Errorf("scratch mariadbd exited: %v: %s", err, s.log.last(3))
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("scratch mariadbd did not answer in 2m: %s", s.log.last(3))
		}
	}
}

func (s *scratch) client(ctx context.Context) *exec.Cmd {
	return exec.CommandContext(ctx, s.tools.Client, "--no-defaults", "--socket="+s.socket(), "-uroot", "--batch", "--skip-column-names")
}

func (s *scratch) sql(ctx context.Context, q string) (string, error) {
	cmd := s.client(ctx)
	cmd.Stdin = strings.NewReader(q)
	var out bytes.Buffer
	var stderr tailBuffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("scratch sql: %v: %s", err, stderr.last(2))
	}
	return out.String(), nil
}

// stop shuts the server down cleanly (the datadir is kept) and waits.
func (s *scratch) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.sql(ctx, "SHUTDOWN;"); err != nil {
		s.cmd.Process.Kill()
	}
	select {
	case <-s.done:
		return nil
	case <-time.After(2 * time.Minute):
		s.cmd.Process.Kill()
		<-s.done
		return fmt.Errorf("scratch mariadbd did not stop in 2m")
	}
}

// rows counts the rows of every base table of database db.
func (s *scratch) rows(ctx context.Context, db string) (map[string]int64, error) {
	if !tableRE.MatchString(db) {
		return nil, fmt.Errorf("database name %q", db)
	}
	out, err := s.sql(ctx, fmt.Sprintf("SELECT table_name FROM information_schema.tables WHERE table_schema = '%s' AND table_type = 'BASE TABLE' ORDER BY table_name;", db))
	if err != nil {
		return nil, err
	}
	var tables []string
	for _, t := range strings.Fields(out) {
		if !tableRE.MatchString(t) {
			return nil, fmt.Errorf("table name %q", t)
		}
		tables = append(tables, t)
	}
	counts := map[string]int64{}
	if len(tables) == 0 {
		return counts, nil
	}
	var q strings.Builder
	for i, t := range tables {
		if i > 0 {
			q.WriteString(" UNION ALL ")
		}
		fmt.Fprintf(&q, "SELECT '%s', COUNT(*) FROM `%s`.`%s`", t, db, t)
	}
	q.WriteString(";")
	if out, err = s.sql(ctx, q.String()); err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("count of %s: %q", f[0], f[1])
		}
		counts[f[0]] = n
	}
	return counts, nil
}

// replay applies the binary logs files (in order) from just after the GTID
// position from up to, not including, the first event at or after stop.
func (s *scratch) replay(ctx context.Context, files []string, from string, stop time.Time) error {
	args := []string{"--stop-datetime=" + stop.UTC().Format("2006-01-02 15:04:05")}
	if from != "" {
		args = append(args, "--start-position="+from)
	}
	dump := exec.CommandContext(ctx, s.tools.Binlog, append(args, files...)...)
	dump.Env = append(os.Environ(), "TZ=UTC") // --stop-datetime is in local time
	var dumpErr tailBuffer
	dump.Stderr = &dumpErr
	pipe, err := dump.StdoutPipe()
	if err != nil {
		return err
	}
	apply := s.client(ctx)
	var applyErr tailBuffer
	apply.Stdin, apply.Stderr = pipe, &applyErr
	if err := dump.Start(); err != nil {
		return fmt.Errorf("mariadb-binlog: %w", err)
	}
	aerr := apply.Run()
	if aerr != nil {
		dump.Process.Kill()
	}
	derr := dump.Wait()
	switch {
	case aerr != nil:
		return fmt.Errorf("replay binary logs: %v: %s", aerr, applyErr.last(3))
	case derr != nil:
		return fmt.Errorf("mariadb-binlog: %v: %s", derr, dumpErr.last(3))
	}
	return nil
}

// tailBuffer keeps the last 64 KiB written to it.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 64<<10 {
		t.b = t.b[len(t.b)-64<<10:]
	}
	return len(p), nil
}

// last returns the last n non-empty lines joined with " | ".
func (t *tailBuffer) last(n int) string {
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(t.b)), "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, strings.TrimSpace(l))
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// diffRows describes how got differs from want ("" when equal).
func diffRows(want, got map[string]int64) string {
	var diffs []string
	for t, n := range want {
		if g, ok := got[t]; !ok {
			diffs = append(diffs, fmt.Sprintf("table %s is missing (want %d rows)", t, n))
		} else if g != n {
			diffs = append(diffs, fmt.Sprintf("table %s has %d rows, want %d", t, g, n))
		}
	}
	for t := range got {
		if _, ok := want[t]; !ok {
			diffs = append(diffs, fmt.Sprintf("table %s is not in the manifest", t))
		}
	}
	sort.Strings(diffs)
	return strings.Join(diffs, "; ")
}
