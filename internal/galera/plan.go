package galera

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Observation is what the driver knows about one member at one moment.
type Observation struct {
	ID string
	// Running: a mariadbd of this member is alive.
	Running bool
	// Status is its last wsrep answer; nil when it does not answer (not
	// running, starting, waiting for a primary component, receiving SST).
	Status *Status
	// StuckFor is how long it has been running without being in a primary
	// component (measured by the driver; zero when it is Primary).
	StuckFor time.Duration
	// HasData: the datadir holds a database (not an empty or half-copied one).
	HasData bool
	// Grastate is grastate.dat; nil when there is none.
	Grastate *GraState
	// ViewID is gvwstate.dat's view_id ("" when absent): the last primary
	// component it saw, kept after a crash.
	ViewID string
	// Recovered is what --wsrep-recover said since the member last stopped;
	// nil when it has not run.
	Recovered *Position
	// RecoverErr is why --wsrep-recover failed, if it did.
	RecoverErr string
	// GaveUp: it failed to start again and again; it is known dead.
	GaveUp bool
}

// Input is everything Plan decides from.
type Input struct {
	// Members in id order; the first one founds a new cluster.
	Members []Observation
	// PlainRestartFailed: a plain restart of every member (hoping for
	// pc.recovery) was tried since the cluster went down and did not form.
	PlainRestartFailed bool
	// Grace is how long members may be stuck outside a primary component
	// before Plan acts on it.
	Grace time.Duration
}

// Action is what the driver is to do next.
type Action string

const (
	// ActNone: every member that can run is synced; nothing to do.
	ActNone Action = "none"
	// ActWait: something is in progress (a join, a component forming).
	ActWait Action = "wait"
	// ActRecover: run mariadbd --wsrep-recover on Members to learn their positions.
	ActRecover Action = "recover"
	// ActInit: make a new database on Members[0] and bootstrap a new cluster from it.
	ActInit Action = "init"
	// ActBootstrap: set safe_to_bootstrap on Members[0] alone and start it
	// with --wsrep-new-cluster at Position.
	ActBootstrap Action = "bootstrap"
	// ActJoin: start Members[0] plainly (at Position when known) and wait
	// until it is synced before anything else joins.
	ActJoin Action = "join"
	// ActStartAll: start Members together, plainly, at their positions: if
	// they all kept the same last primary view they re-form it (pc.recovery).
	ActStartAll Action = "start-all"
	// ActStop: stop Members (stuck outside a primary component); the plain
	// restart failed.
	ActStop Action = "stop"
	// ActPCBootstrap: make the survivor Members[0] a primary component on its
	// own (pc.bootstrap=YES): every other member with data is known dead.
	ActPCBootstrap Action = "pc-bootstrap"
	// ActRefuse: going on could lose acknowledged writes; stop and say why.
	ActRefuse Action = "refuse"
)

// Decision is Plan's answer.
type Decision struct {
	Action  Action
	Members []string
	// Positions are where each started member starts (absent: unknown, SST).
	Positions map[string]Position
	Reason    string
}

// Plan decides the next step for the cluster. It is pure: the same input
// gives the same decision; the driver observes, acts, and asks again.
//
// Rules, in order:
//  1. Some member is in a primary component: wait while any member is
//     joining; else recover the position of the first member that is down
//     and has data, then join it (one at a time); refuse to join a member
//     that holds another cluster's history (the SST would erase it).
//  2. No primary component, some members running: wait until every running
//     member has been stuck for Grace; restart dead members that have data
//     (after recovering their positions); then, if some member is dead
//     (known dead, or empty), pc.bootstrap the most advanced survivor —
//     only if no dead member is more advanced; if all run and are stuck,
//     stop them (the plain restart failed).
//  3. Nothing runs: no data anywhere → initialise the first member and
//     bootstrap a new cluster; else recover every position, apply the
//     data-loss guard, try a plain restart when every member kept the same
//     last view, else bootstrap the most advanced member.
func Plan(in Input) Decision {
	ms := in.Members
	var primary *Observation
	for i := range ms {
		if ms[i].Running && ms[i].Status != nil && ms[i].Status.Primary() && ms[i].Status.Ready {
			primary = &ms[i]
			break
		}
	}
	if primary != nil {
		return planWithPrimary(ms, primary)
	}
	var running []Observation
	for _, m := range ms {
		if m.Running {
			running = append(running, m)
		}
	}
	if len(running) > 0 {
		return planNoPrimary(in, running)
	}
	return planAllDown(in)
}

func planWithPrimary(ms []Observation, primary *Observation) Decision {
	for _, m := range ms {
		if m.Running && (m.Status == nil || !(m.Status.Synced() || m.Status.LocalState == 2)) {
			return Decision{Action: ActWait, Members: []string{m.ID}, Reason: m.ID + " is joining"}
		}
	}
	running := 0
	for _, m := range ms {
		if m.Running {
			running++
		}
	}
	for _, m := range ms {
		if m.Running || m.GaveUp {
			continue
		}
		if m.HasData && m.Recovered == nil && m.RecoverErr == "" {
			return Decision{Action: ActRecover, Members: []string{m.ID},
				Reason: m.ID + " is down: recover its position before it rejoins"}
		}
		// A member that was just killed stays in the primary component until
		// the others evict it (evs.suspect_timeout); a new incarnation that
		// joins meanwhile stalls every commit for another membership round.
		if primary.Status.ClusterSize > running {
			return Decision{Action: ActWait, Members: []string{m.ID},
				Reason: fmt.Sprintf("%s rejoins once the cluster has evicted its old incarnation (cluster size %d, %d running)", m.ID, primary.Status.ClusterSize, running)}
		}
		if !m.HasData {
			return Decision{Action: ActJoin, Members: []string{m.ID},
				Reason: m.ID + " has no data: it joins and receives a full copy (SST) from a synced member"}
		}
		pos, ok := position(m)
		if ok && pos.UUID != primary.Status.StateUUID {
			return Decision{Action: ActRefuse, Members: []string{m.ID},
				Reason: fmt.Sprintf("%s holds another cluster's history (%s, the running cluster is %s): joining would erase it by SST; move its datadir away to let it join", m.ID, pos, primary.Status.StateUUID)}
		}
		d := Decision{Action: ActJoin, Members: []string{m.ID}}
		if ok {
			d.Positions = map[string]Position{m.ID: pos}
			d.Reason = fmt.Sprintf("%s rejoins from %s (IST when the donors' gcache still holds the gap)", m.ID, pos)
		} else {
			d.Reason = fmt.Sprintf("%s's position is unknown (%s): it rejoins by SST; the running cluster holds every acknowledged write", m.ID, orNone(m.RecoverErr))
		}
		return d
	}
	var gaveUp []string
	for _, m := range ms {
		if m.GaveUp && !m.Running {
			gaveUp = append(gaveUp, m.ID)
		}
	}
	if len(gaveUp) > 0 {
		return Decision{Action: ActNone, Members: gaveUp, Reason: strings.Join(gaveUp, ", ") + " failed to start repeatedly; the others are synced"}
	}
	return Decision{Action: ActNone, Reason: "every member is synced"}
}

func planNoPrimary(in Input, running []Observation) Decision {
	for _, m := range running {
		if m.StuckFor < in.Grace {
			return Decision{Action: ActWait, Members: []string{m.ID},
				Reason: fmt.Sprintf("%s is not in a primary component yet (for %s)", m.ID, m.StuckFor.Round(time.Second))}
		}
	}
	var dead []Observation
	for _, m := range in.Members {
		if m.Running {
			continue
		}
		dead = append(dead, m)
		if m.HasData && !m.GaveUp {
			if m.Recovered == nil && m.RecoverErr == "" {
				return Decision{Action: ActRecover, Members: []string{m.ID},
					Reason: m.ID + " is down and the rest has no quorum: recover its position and restart it first"}
			}
			d := Decision{Action: ActJoin, Members: []string{m.ID},
				Reason: m.ID + " is down and the rest has no quorum: restart it first (the component may re-form)"}
			if p, ok := position(m); ok {
				d.Positions = map[string]Position{m.ID: p}
			}
			return d
		}
	}
	if len(dead) == 0 {
		ids := idsOf(running)
		return Decision{Action: ActStop, Members: ids,
			Reason: fmt.Sprintf("%s did not form a primary component within %s: stop them and bootstrap from the most advanced", strings.Join(ids, ", "), in.Grace)}
	}
	// Minority survivors; every other member with data is known dead.
	best, bestPos, err := mostAdvanced(in.Members, func(m Observation) (Position, bool, string) {
		if m.Running {
			if m.Status == nil {
				return Position{}, false, "does not answer"
			}
			if p := m.Status.Position(); p.Known() {
				return p, true, ""
			}
			if p, ok := position(m); ok {
				return p, true, ""
			}
			return Position{}, false, "reports no position"
		}
		p, ok := position(m)
		return p, ok, m.RecoverErr
	})
	if err != nil {
		return Decision{Action: ActRefuse, Reason: "quorum lost: " + err.Error()}
	}
	if !best.Running {
		return Decision{Action: ActRefuse, Members: []string{best.ID},
			Reason: fmt.Sprintf("quorum lost and %s, which cannot start, is the most advanced (%s): bootstrapping a survivor would lose its writes; repair %s", best.ID, bestPos, best.ID)}
	}
	return Decision{Action: ActPCBootstrap, Members: []string{best.ID}, Positions: map[string]Position{best.ID: bestPos},
		Reason: fmt.Sprintf("quorum lost; %s known dead; %s is the most advanced survivor (%s)", strings.Join(idsOf(dead), ", "), best.ID, bestPos)}
}

func planAllDown(in Input) Decision {
	ms := in.Members
	var withData []Observation
	for _, m := range ms {
		if m.HasData {
			withData = append(withData, m)
		}
	}
	if len(withData) == 0 {
		if len(ms) == 0 {
			return Decision{Action: ActRefuse, Reason: "no members"}
		}
		return Decision{Action: ActInit, Members: []string{ms[0].ID},
			Reason: "no member has data: initialise " + ms[0].ID + " and bootstrap a new cluster from it"}
	}
	var need []string
	for _, m := range withData {
		if m.Recovered == nil && m.RecoverErr == "" {
			need = append(need, m.ID)
		}
	}
	if len(need) > 0 {
		return Decision{Action: ActRecover, Members: need, Reason: "the cluster is down: recover every member's position"}
	}
	best, pos, err := bootstrapCandidate(ms)
	if err != nil {
		return Decision{Action: ActRefuse, Reason: err.Error()}
	}
	positions := map[string]Position{}
	for _, m := range withData {
		if p, ok := position(m); ok {
			positions[m.ID] = p
		}
	}
	if !in.PlainRestartFailed && len(withData) == len(ms) && len(ms) > 1 {
		same := true
		for _, m := range ms {
			same = same && m.ViewID != "" && m.ViewID == ms[0].ViewID
		}
		if same {
			return Decision{Action: ActStartAll, Members: idsOf(ms), Positions: positions,
				Reason: "every member crashed in the same primary view: restart them together so it re-forms (pc.recovery)"}
		}
	}
	reason := fmt.Sprintf("%s is the most advanced member (%s)", best.ID, pos)
	if !pos.Known() {
		reason = best.ID + " alone holds data, without a Galera position yet: a new cluster starts from it"
	}
	if in.PlainRestartFailed {
		reason += "; the plain restart did not form a primary component"
	}
	var behind []string
	for _, m := range ms {
		if m.ID == best.ID {
			continue
		}
		if p, ok := positions[m.ID]; ok {
			if p.Seqno < pos.Seqno {
				behind = append(behind, fmt.Sprintf("%s at %d", m.ID, p.Seqno))
			}
		} else if !m.HasData {
			behind = append(behind, m.ID+" empty")
		}
	}
	if len(behind) > 0 {
		reason += "; behind it: " + strings.Join(behind, ", ")
	}
	d := Decision{Action: ActBootstrap, Members: []string{best.ID}, Reason: reason}
	if pos.Known() {
		d.Positions = map[string]Position{best.ID: pos}
	}
	return d
}

// position is where a stopped member stands: the recovered position, or a
// clean stop's grastate (seqno >= 0).
func position(m Observation) (Position, bool) {
	var best Position
	ok := false
	if m.Recovered != nil && m.Recovered.Known() {
		best, ok = *m.Recovered, true
	}
	if m.Grastate != nil {
		if g := m.Grastate.Position(); g.Known() && (!ok || (g.UUID == best.UUID && g.Seqno > best.Seqno)) {
			best, ok = g, true
		}
	}
	return best, ok
}

// mostAdvanced picks the member with the highest seqno among those with
// data, refusing when that cannot be known: a position that cannot be read,
// two cluster histories, or data without any position beside members with
// one. Ties go to safe_to_bootstrap, then to the lowest id.
func mostAdvanced(ms []Observation, pos func(Observation) (Position, bool, string)) (Observation, Position, error) {
	type cand struct {
		m Observation
		p Position
	}
	var known []cand
	var noPos []Observation
	uuids := map[string][]string{}
	for _, m := range ms {
		if !m.HasData {
			continue
		}
		p, ok, why := pos(m)
		if !ok {
			if why != "" {
				return Observation{}, Position{}, fmt.Errorf("cannot read %s's position (%s): it may hold the latest writes, so no member is bootstrapped; repair it, or move its datadir away to let it rejoin by SST", m.ID, why)
			}
			noPos = append(noPos, m)
			continue
		}
		known = append(known, cand{m, p})
		uuids[p.UUID] = append(uuids[p.UUID], m.ID)
	}
	if len(uuids) > 1 {
		var parts []string
		for u, ids := range uuids {
			parts = append(parts, fmt.Sprintf("%s in %s", strings.Join(ids, ","), u))
		}
		slices.Sort(parts)
		return Observation{}, Position{}, fmt.Errorf("members hold different cluster histories (%s): refusing to bootstrap; move the wrong datadirs away", strings.Join(parts, "; "))
	}
	if len(known) == 0 {
		if len(noPos) == 1 {
			return noPos[0], Position{UUID: ZeroUUID, Seqno: -1}, nil
		}
		return Observation{}, Position{}, fmt.Errorf("%s hold data but no Galera position: cannot tell which is newer; keep one datadir and move the others away", strings.Join(idsOf(noPos), " and "))
	}
	if len(noPos) > 0 {
		return Observation{}, Position{}, fmt.Errorf("%s hold data without a Galera position while %s is at %s: cannot tell whether it is newer; move its datadir away to let it rejoin by SST", strings.Join(idsOf(noPos), ", "), known[0].m.ID, known[0].p)
	}
	best := slices.MaxFunc(known, func(a, b cand) int {
		if c := cmp.Compare(a.p.Seqno, b.p.Seqno); c != 0 {
			return c
		}
		if sa, sb := safe(a.m), safe(b.m); sa != sb {
			if sa {
				return 1
			}
			return -1
		}
		return -cmp.Compare(a.m.ID, b.m.ID) // lower id wins
	})
	return best.m, best.p, nil
}

func safe(m Observation) bool { return m.Grastate != nil && m.Grastate.SafeToBootstrap }

func bootstrapCandidate(ms []Observation) (Observation, Position, error) {
	return mostAdvanced(ms, func(m Observation) (Position, bool, string) {
		p, ok := position(m)
		if !ok && m.RecoverErr != "" {
			return p, false, m.RecoverErr
		}
		return p, ok, ""
	})
}

// CheckBootstrap is the data-loss guard: it refuses to bootstrap id when it
// is empty, or when another member is (or may be) more advanced. The driver
// checks it again right before it bootstraps.
func CheckBootstrap(ms []Observation, id string) error {
	i := slices.IndexFunc(ms, func(m Observation) bool { return m.ID == id })
	if i < 0 {
		return fmt.Errorf("galera: bootstrap %s: no such member", id)
	}
	if !ms[i].HasData {
		for _, m := range ms {
			if m.HasData {
				return fmt.Errorf("galera: bootstrap %s: refused: it has no data while %s has; bootstrapping it would discard every write", id, m.ID)
			}
		}
		return nil // a new cluster
	}
	best, pos, err := bootstrapCandidate(ms)
	if err != nil {
		return fmt.Errorf("galera: bootstrap %s: refused: %w", id, err)
	}
	mine, _ := position(ms[i])
	if best.ID != id && pos.Seqno > mine.Seqno {
		return fmt.Errorf("galera: bootstrap %s: refused: %s is more advanced (%d > %d); bootstrapping %s would lose those writes", id, best.ID, pos.Seqno, mine.Seqno, id)
	}
	return nil
}

func idsOf(ms []Observation) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

func orNone(s string) string {
	if s == "" {
		return "no position recorded"
	}
	return s
}
