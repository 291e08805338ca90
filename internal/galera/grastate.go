package galera

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/scalepress/scalepress/internal/atomicfile"
)

// ZeroUUID is the cluster UUID of a member that never belonged to a cluster.
const ZeroUUID = "00000000-0000-0000-0000-000000000000"

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// Position is a point in a cluster's history: its UUID and a seqno.
type Position struct {
	UUID  string
	Seqno int64
}

// Known reports whether p names a real point of a real cluster.
func (p Position) Known() bool { return p.UUID != "" && p.UUID != ZeroUUID && p.Seqno >= 0 }

func (p Position) String() string { return fmt.Sprintf("%s:%d", p.UUID, p.Seqno) }

// ParsePosition parses "uuid:seqno" as mariadbd prints and accepts it.
func ParsePosition(s string) (Position, error) {
	s = strings.TrimSpace(s)
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return Position{}, fmt.Errorf("galera: position %q: want uuid:seqno", s)
	}
	uuid := strings.ToLower(s[:i])
	if !uuidRE.MatchString(uuid) {
		return Position{}, fmt.Errorf("galera: position %q: %q is not a UUID", s, s[:i])
	}
	seqno, err := strconv.ParseInt(s[i+1:], 10, 64)
	if err != nil || seqno < -1 {
		return Position{}, fmt.Errorf("galera: position %q: seqno %q is not an integer >= -1", s, s[i+1:])
	}
	return Position{UUID: uuid, Seqno: seqno}, nil
}

// GraState is the content of grastate.dat: where a member stood when it
// last stopped. Seqno is -1 while it runs and after a crash; a clean stop
// writes the real seqno. SafeToBootstrap marks the last member out of a
// cleanly stopped cluster.
type GraState struct {
	Version         string
	UUID            string
	Seqno           int64
	SafeToBootstrap bool
}

// Position is the grastate's position.
func (g GraState) Position() Position { return Position{UUID: g.UUID, Seqno: g.Seqno} }

// ParseGraState parses grastate.dat.
func ParseGraState(b []byte) (GraState, error) {
	g := GraState{Seqno: -1}
	var haveUUID, haveSeqno bool
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return g, fmt.Errorf("galera: grastate.dat line %d: %q is not key: value", n, line)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "version":
			g.Version = v
		case "uuid":
			v = strings.ToLower(v)
			if !uuidRE.MatchString(v) {
				return g, fmt.Errorf("galera: grastate.dat line %d: uuid %q is not a UUID", n, v)
			}
			g.UUID, haveUUID = v, true
		case "seqno":
			s, err := strconv.ParseInt(v, 10, 64)
			if err != nil || s < -1 {
				return g, fmt.Errorf("galera: grastate.dat line %d: seqno %q is not an integer >= -1", n, v)
			}
			g.Seqno, haveSeqno = s, true
		case "safe_to_bootstrap":
			switch v {
			case "0":
			case "1":
				g.SafeToBootstrap = true
			default:
				return g, fmt.Errorf("galera: grastate.dat line %d: safe_to_bootstrap %q is not 0 or 1", n, v)
			}
		}
	}
	if !haveUUID || !haveSeqno {
		return g, fmt.Errorf("galera: grastate.dat: uuid or seqno missing")
	}
	return g, nil
}

// ReadGraState reads datadir/grastate.dat; ok is false when there is none.
func ReadGraState(datadir string) (g GraState, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(datadir, "grastate.dat"))
	if errors.Is(err, os.ErrNotExist) {
		return g, false, nil
	}
	if err != nil {
		return g, false, fmt.Errorf("galera: read grastate: %w", err)
	}
	g, err = ParseGraState(b)
	return g, err == nil, err
}

// SetSafeToBootstrap rewrites safe_to_bootstrap in datadir/grastate.dat,
// keeping every other line, owner and mode.
func SetSafeToBootstrap(datadir string, safe bool) error {
	path := filepath.Join(datadir, "grastate.dat")
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("galera: safe_to_bootstrap: %w", err)
	}
	if _, err := ParseGraState(b); err != nil {
		return fmt.Errorf("galera: safe_to_bootstrap: %w", err)
	}
	want := "safe_to_bootstrap: 0"
	if safe {
		want = "safe_to_bootstrap: 1"
	}
	lines := strings.Split(string(b), "\n")
	found := false
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "safe_to_bootstrap") {
			lines[i], found = want, true
		}
	}
	if !found {
		if n := len(lines); n > 0 && lines[n-1] == "" {
			lines = append(lines[:n-1], want, "")
		} else {
			lines = append(lines, want)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("galera: safe_to_bootstrap: %w", err)
	}
	f, err := atomicfile.Create(path, fi.Mode().Perm())
	if err != nil {
		return fmt.Errorf("galera: safe_to_bootstrap: %w", err)
	}
	defer f.Close()
	if st, ok := statOwner(fi); ok {
		f.Chown(st.uid, st.gid) // best effort, as the owner may be gone
	}
	if _, err := f.Write([]byte(strings.Join(lines, "\n"))); err != nil {
		return fmt.Errorf("galera: safe_to_bootstrap: %w", err)
	}
	if err := f.Commit(); err != nil {
		return fmt.Errorf("galera: safe_to_bootstrap: %w", err)
	}
	return nil
}

// ViewID returns the view_id line of datadir/gvwstate.dat: the last primary
// component this member saw. It exists after a crash (a clean stop removes
// it); members that all kept the same one re-form that component by
// themselves when restarted together (pc.recovery).
func ViewID(datadir string) string {
	b, err := os.ReadFile(filepath.Join(datadir, "gvwstate.dat"))
	if err != nil {
		return ""
	}
	return parseViewID(b)
}

func parseViewID(b []byte) string {
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "view_id:"); ok {
			return strings.Join(strings.Fields(v), " ")
		}
	}
	return ""
}

var recoveredRE = regexp.MustCompile(`WSREP: Recovered position:\s*(\S+)`)

// ParseRecovered finds the last "WSREP: Recovered position: uuid:seqno" in
// the output of mariadbd --wsrep-recover.
func ParseRecovered(out []byte) (Position, error) {
	m := recoveredRE.FindAllSubmatch(out, -1)
	if len(m) == 0 {
		return Position{}, fmt.Errorf("galera: recover: no \"Recovered position\" in the output: %s", lastLines(out, 3))
	}
	return ParsePosition(string(m[len(m)-1][1]))
}
