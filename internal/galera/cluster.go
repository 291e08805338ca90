package galera

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"
)

// ErrRefused means Plan refused to go on: going on could lose acknowledged
// writes. The message says what to do.
var ErrRefused = errors.New("refused")

// Member states, as the status contract names them.
const (
	StateSynced  = "synced"
	StateJoining = "joining"
	StateDonor   = "donor"
	StateDown    = "down"
)

// Proc is one run of a member's mariadbd (a *supervise.Process).
type Proc interface {
	Pid() int
	Done() <-chan struct{}
	Stop(ctx context.Context) error
}

// Starter runs mariadbd for a member. The process must not be restarted by
// the starter: every start is decided here, with its own arguments.
type Starter interface {
	StartMember(m MemberConfig, path string, args []string) (Proc, error)
	// LogFile is where a member's output goes, for error messages.
	LogFile(id string) string
}

// Config of a Cluster.
type Config struct {
	Members []MemberConfig // in id order; one standalone member, or Galera members
	Site    Grant          // the application database and the monitor user
	// Grace: how long members may stay outside a primary component before
	// the cluster acts (stops a failed plain restart, pc.bootstraps survivors).
	Grace time.Duration
	// StartTimeout bounds a bootstrap or standalone start until it answers.
	StartTimeout time.Duration
	// JoinTimeout bounds a join (SST included) until it is synced.
	JoinTimeout time.Duration
	// Interval between observations.
	Interval time.Duration
	// Dial connects the probes to the members (nil: a plain TCP dial).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// DefaultConfig has the timings; Members and Site are to be filled.
func DefaultConfig() Config {
	return Config{Grace: 20 * time.Second, StartTimeout: 90 * time.Second, JoinTimeout: 10 * time.Minute, Interval: 500 * time.Millisecond}
}

// Validate names the field that is wrong.
func (c Config) Validate() error {
	if len(c.Members) == 0 {
		return fmt.Errorf("galera: members: at least one is needed")
	}
	if len(c.Members) > 1 && len(c.Members)%2 == 0 {
		return fmt.Errorf("galera: members: %d is even; use an odd number so that a majority survives a split", len(c.Members))
	}
	for _, m := range c.Members {
		if err := m.Validate(); err != nil {
			return err
		}
		if len(c.Members) > 1 && !m.Clustered() {
			return fmt.Errorf("galera: member %s: peers: a cluster member needs its peers", m.ID)
		}
	}
	if c.Grace <= 0 || c.StartTimeout <= 0 || c.JoinTimeout <= 0 || c.Interval <= 0 {
		return fmt.Errorf("galera: grace, start_timeout, join_timeout and interval must be positive")
	}
	return nil
}

// MemberView is one member as status and the router see it.
type MemberView struct {
	ID     string
	Addr   string
	State  string
	PID    int
	Status *Status // nil when it does not answer
	Starts int     // how many times it was started by this controller
	Error  string  // why it last exited, or why it is not started
}

// Cluster runs the members: Start brings them up, Run keeps them up.
type Cluster struct {
	cfg    Config
	host   Host
	logger *slog.Logger

	mu          sync.Mutex
	members     []*member
	plainFailed bool   // a plain restart was tried since the cluster went down
	plainTry    bool   // a plain restart is in progress
	lastReason  string // last logged decision
	joinSeq     int
}

type member struct {
	cfg        MemberConfig
	prober     *Prober
	proc       Proc
	startedAt  time.Time
	stopping   bool
	status     *Status
	stuckSince time.Time
	recovered  *Position
	recoverErr string
	unobserved string // why its host could not be read in the last observation
	failures   []time.Time
	gaveUp     time.Time // known dead until then
	joined     int       // order in which it became synced
	starts     int
	lastErr    string
	probeFails int // failed probes in a row of a running member
}

// New returns a cluster whose members' hosts are reached through host;
// nothing runs until Start.
func New(cfg Config, host Host, logger *slog.Logger) (*Cluster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Cluster{cfg: cfg, host: host, logger: logger}
	for _, mc := range cfg.Members {
		p, err := NewProber(mc.Addr, cfg.Site.MonitorUser, cfg.Site.MonitorPassword, cfg.Dial)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.members = append(c.members, &member{cfg: mc, prober: p})
	}
	return c, nil
}

// Close releases the probers and the host (the processes are stopped by
// their owner).
func (c *Cluster) Close() {
	for _, m := range c.members {
		m.prober.Close()
	}
	if cl, ok := c.host.(interface{ Close() }); ok {
		cl.Close()
	}
}

func (c *Cluster) clustered() bool { return c.cfg.Members[0].Clustered() }

// Members is a snapshot for status and the router, in id order.
func (c *Cluster) Members() []MemberView {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]MemberView, 0, len(c.members))
	for _, m := range c.members {
		v := MemberView{ID: m.cfg.ID, Addr: m.cfg.Addr, State: StateDown, Starts: m.starts, Error: m.lastErr}
		if m.running() {
			v.PID = m.proc.Pid()
			v.State = StateJoining
			if m.status != nil {
				st := *m.status
				v.Status = &st
				switch {
				case st.Synced():
					v.State = StateSynced
				case st.LocalState == 2:
					v.State = StateDonor
				}
			}
		}
		out = append(out, v)
	}
	return out
}

// StopOrder names the members in the order they should stop: the last to
// join first, so that the last one out (safe_to_bootstrap: 1) is the one
// that founded the cluster.
func (c *Cluster) StopOrder() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	ms := slices.Clone(c.members)
	slices.SortStableFunc(ms, func(a, b *member) int {
		if a.joined != b.joined {
			return b.joined - a.joined
		}
		return strings.Compare(b.cfg.ID, a.cfg.ID)
	})
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.cfg.ID
	}
	return out
}

// StopMember stops id's running mariadbd and waits until it is over (for
// members whose processes nobody else supervises: on other hosts). Call it
// once Run has returned.
func (c *Cluster) StopMember(ctx context.Context, id string) error {
	c.mu.Lock()
	m := c.find(id)
	if m == nil {
		c.mu.Unlock()
		return fmt.Errorf("galera: stop %s: no such member", id)
	}
	p := m.proc
	running := m.running()
	m.stopping = true
	c.mu.Unlock()
	if !running {
		return nil
	}
	if err := p.Stop(ctx); err != nil {
		return err
	}
	select {
	case <-p.Done():
		return nil
	case <-ctx.Done():
		return fmt.Errorf("galera: stop %s: %w", id, ctx.Err())
	}
}

func (m *member) running() bool {
	if m.proc == nil {
		return false
	}
	select {
	case <-m.proc.Done():
		return false
	default:
		return true
	}
}

// Start brings the cluster up and returns as soon as it can serve the site
// (a member synced in a primary component, the site's database and users
// ensured; standalone: answering), or with an error that names the member
// and its log. It refuses (ErrRefused) rather than bootstrap a member that
// could lose acknowledged writes. Members still joining (SST or IST) when it
// returns are seen through by Run, which the caller starts next: the
// choice of whom to bootstrap from is made before any member is synced, so
// returning early changes no decision, only who waits for the joins.
func (c *Cluster) Start(ctx context.Context) error {
	if !c.clustered() {
		return c.startStandalone(ctx)
	}
	for _, m := range c.members {
		// A member still running from an earlier controller (on another
		// host) is taken over as it is: its config is not rewritten under it.
		p, ok, err := c.host.Adopt(ctx, m.cfg)
		if err != nil {
			return err
		}
		if ok {
			c.mu.Lock()
			m.proc, m.startedAt = p, time.Now()
			m.stuckSince = m.startedAt
			c.mu.Unlock()
			c.logger.Info("adopted a running member", "member", m.cfg.ID, "pid", p.Pid())
			continue
		}
		if err := c.host.Prepare(ctx, m.cfg); err != nil {
			return err
		}
	}
	for {
		if err := c.reapExits(true); err != nil {
			return err
		}
		obs := c.observe(ctx)
		d := c.plan(obs)
		switch d.Action {
		case ActNone:
			if c.allSynced() {
				return c.ensureSite(ctx)
			}
		case ActRefuse:
			return fmt.Errorf("galera: %w: %s", ErrRefused, d.Reason)
		case ActWait:
			if from, ok := serves(obs); ok {
				c.logger.Info("serving from a synced member; the others join in the background",
					"member", from, "joining", c.notSynced())
				return c.ensureSite(ctx)
			}
			if err := c.checkTimeouts(ctx, false); err != nil {
				return err
			}
		default:
			if err := c.act(ctx, d, obs); err != nil {
				return err
			}
			continue
		}
		if !c.sleep(ctx) {
			return ctx.Err()
		}
	}
}

// serves names a member that is synced in a primary component: the site
// can be served through it while the plan waits for the others.
func serves(obs []Observation) (string, bool) {
	for _, o := range obs {
		if o.Running && o.Status != nil && o.Status.Synced() {
			return o.ID, true
		}
	}
	return "", false
}

// notSynced lists the members that are not (yet) synced.
func (c *Cluster) notSynced() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, m := range c.members {
		if !m.running() || m.status == nil || !m.status.Synced() {
			out = append(out, m.cfg.ID)
		}
	}
	return out
}

// Run keeps the members up until ctx ends: a member that exits is started
// again through --wsrep-recover and its position (or by SST when its data is
// gone), a cluster that went down entirely is recovered as on up.
func (c *Cluster) Run(ctx context.Context) {
	if !c.clustered() {
		c.runStandalone(ctx)
		return
	}
	for c.sleep(ctx) {
		c.reapExits(false)
		obs := c.observe(ctx)
		d := c.plan(obs)
		switch d.Action {
		case ActNone, ActWait:
			c.checkTimeouts(ctx, true)
		case ActRefuse:
			// logged by plan; observe again, things may change
		default:
			if err := c.act(ctx, d, obs); err != nil && ctx.Err() == nil {
				c.logger.Error("database action failed", "action", d.Action, "members", d.Members, "err", err)
			}
		}
	}
}

func (c *Cluster) sleep(ctx context.Context) bool {
	t := time.NewTimer(c.cfg.Interval)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (c *Cluster) plan(obs []Observation) Decision {
	c.mu.Lock()
	in := Input{Members: obs, PlainRestartFailed: c.plainFailed, Grace: c.cfg.Grace}
	c.mu.Unlock()
	d := Plan(in)
	key := string(d.Action) + " " + strings.Join(d.Members, ",") + " " + d.Reason
	if d.Action == ActWait {
		key = string(d.Action) + " " + strings.Join(d.Members, ",")
	}
	c.mu.Lock()
	changed := key != c.lastReason
	c.lastReason = key
	c.mu.Unlock()
	if changed {
		lvl := slog.LevelInfo
		if d.Action == ActRefuse {
			lvl = slog.LevelError
		}
		c.logger.Log(context.Background(), lvl, "database plan", "action", d.Action, "members", d.Members, "reason", d.Reason)
	}
	return d
}

// reapExits notices members that exited. While starting, an exit nobody
// asked for is an error (outside a plain restart attempt).
func (c *Cluster) reapExits(starting bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	for _, m := range c.members {
		if m.proc == nil || m.running() {
			continue
		}
		ranFor := now.Sub(m.startedAt)
		m.proc, m.status, m.stuckSince = nil, nil, time.Time{}
		m.recovered, m.recoverErr = nil, ""
		if m.stopping {
			m.stopping = false
			continue
		}
		log := c.host.LogName(m.cfg)
		lastErr := c.host.LastError(context.Background(), m.cfg)
		m.lastErr = fmt.Sprintf("exited after %s: %s", ranFor.Round(time.Millisecond), lastErr)
		if c.plainTry {
			c.plainTry, c.plainFailed = false, true
			c.logger.Warn("member exited during the plain restart", "member", m.cfg.ID, "err", m.lastErr)
			continue
		}
		if starting {
			return fmt.Errorf("%s exited while starting: %s (log: %s)", m.cfg.ID, lastErr, log)
		}
		c.logger.Warn("member exited", "member", m.cfg.ID, "ran_for", ranFor.Round(time.Millisecond), "err", m.lastErr)
		if ranFor < time.Minute {
			m.failures = append(m.failures, now)
		}
		m.failures = slices.DeleteFunc(m.failures, func(t time.Time) bool { return now.Sub(t) > 5*time.Minute })
		if len(m.failures) >= 3 {
			m.gaveUp = now.Add(time.Minute)
			m.failures = nil
			c.logger.Error("member fails to start; known dead for a minute", "member", m.cfg.ID, "log", log)
		}
	}
	return nil
}

// observe probes the running members and reads the stopped ones' files.
func (c *Cluster) observe(ctx context.Context) []Observation {
	obs := make([]Observation, len(c.members))
	var wg sync.WaitGroup
	now := time.Now()
	for i, m := range c.members {
		c.mu.Lock()
		running := m.running()
		c.mu.Unlock()
		wg.Go(func() {
			o := Observation{ID: m.cfg.ID, Running: running}
			sstDone := false
			var st *Status
			if running {
				pctx, cancel := context.WithTimeout(ctx, time.Second)
				s, err := m.prober.Status(pctx)
				cancel()
				if err == nil {
					st = &s
				}
			}
			dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
			disk, derr := c.host.Inspect(dctx, m.cfg)
			dcancel()
			if derr != nil {
				// Nothing is known of its datadir: count it as holding data
				// (never initialised, emptied for SST or taken for empty by
				// the data-loss guard), without a position; act refuses to
				// touch it until it can be read again.
				disk = Disk{HasData: true}
			}
			o.HasData, o.Grastate, o.ViewID = disk.HasData, disk.Grastate, disk.ViewID
			c.mu.Lock()
			if derr != nil {
				if m.unobserved == "" {
					c.logger.Warn("cannot read member's host", "member", m.cfg.ID, "err", derr)
				}
				m.unobserved = derr.Error()
			} else if m.unobserved != "" {
				c.logger.Info("member's host readable again", "member", m.cfg.ID)
				m.unobserved = ""
			}
			if running {
				// A busy member may miss a probe: keep its last answer for two
				// misses before it counts as not answering. A dead process is
				// seen at once (running is false), and so is a member whose
				// host does not answer either (its agent unreachable too: the
				// host is cut off, not busy): across hosts each round waits
				// seconds for that agent, and two more rounds kept a cut
				// member "synced" for about 20 s.
				if st == nil && m.probeFails < 2 && m.status != nil && !errors.Is(derr, ErrUnreachable) {
					m.probeFails++
					st = m.status
				} else if st != nil {
					m.probeFails = 0
				}
				m.status = st
				if st != nil && st.Primary() {
					m.stuckSince = time.Time{}
				} else if m.stuckSince.IsZero() {
					m.stuckSince = now
				}
				if st != nil && st.Synced() {
					if m.joined == 0 {
						c.joinSeq++
						m.joined = c.joinSeq
					}
					if !disk.HasData && derr == nil {
						sstDone = true
					}
					if c.plainTry {
						c.plainTry = false
					}
					m.lastErr = ""
				}
				if !m.stuckSince.IsZero() {
					o.StuckFor = now.Sub(m.stuckSince)
				}
			} else {
				m.status, m.joined = nil, 0
			}
			o.Status = m.status
			o.Recovered, o.RecoverErr = m.recovered, m.recoverErr
			o.GaveUp = now.Before(m.gaveUp)
			c.mu.Unlock()
			if sstDone {
				// Synced after a full copy: the datadir is whole again.
				if err := c.host.SSTDone(ctx, m.cfg); err != nil {
					c.logger.Warn("clear the SST mark", "member", m.cfg.ID, "err", err)
				}
				o.HasData = true
			}
			obs[i] = o
		})
	}
	wg.Wait()
	return obs
}

func (c *Cluster) allSynced() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.members {
		if !m.running() || m.status == nil || !m.status.Synced() {
			return false
		}
	}
	return true
}

// checkTimeouts fails a start that takes too long; while running (stop
// set), it stops such a member instead, and the plan starts it again.
func (c *Cluster) checkTimeouts(ctx context.Context, stop bool) error {
	c.mu.Lock()
	var late *member
	for _, m := range c.members {
		if !m.running() || (m.status != nil && (m.status.Synced() || m.status.LocalState == 2)) || m.stopping {
			continue
		}
		if time.Since(m.startedAt) > c.cfg.JoinTimeout {
			late = m
			break
		}
	}
	if late == nil || !stop {
		c.mu.Unlock()
		if late != nil {
			return fmt.Errorf("%s not synced %s after it started (log: %s)", late.cfg.ID, c.cfg.JoinTimeout, c.host.LogName(late.cfg))
		}
		return nil
	}
	p := late.proc
	late.lastErr = fmt.Sprintf("not synced %s after it started: stopped", c.cfg.JoinTimeout)
	c.mu.Unlock()
	c.logger.Warn("member not synced in time; stopping it", "member", late.cfg.ID, "timeout", c.cfg.JoinTimeout)
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	p.Stop(sctx) // counted as an exit: the plan decides again
	return nil
}

func (c *Cluster) find(id string) *member {
	for _, m := range c.members {
		if m.cfg.ID == id {
			return m
		}
	}
	return nil
}

// unobserved names the first of ids whose host could not be read.
func (c *Cluster) unobserved(ids []string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		if m := c.find(id); m != nil && m.unobserved != "" {
			return id + ": " + m.unobserved
		}
	}
	return ""
}

func (c *Cluster) act(ctx context.Context, d Decision, obs []Observation) error {
	// Acting on a member whose host cannot be read, or bootstrapping while
	// any member's datadir is unknown, could lose writes the unknown one
	// holds: wait until every member concerned can be read.
	concerned := d.Members
	if d.Action == ActInit || d.Action == ActBootstrap || d.Action == ActPCBootstrap {
		concerned = nil
		for _, m := range c.cfg.Members {
			concerned = append(concerned, m.ID)
		}
	}
	// Recovering positions is harmless (an unreachable host's is asked
	// again, not recorded as failed).
	if why := c.unobserved(concerned); why != "" && d.Action != ActRecover {
		c.logger.Debug("not acting: a member's host cannot be read", "action", d.Action, "why", why)
		return nil
	}
	switch d.Action {
	case ActRecover:
		var wg sync.WaitGroup
		for _, id := range d.Members {
			m := c.find(id)
			wg.Go(func() {
				t0 := time.Now()
				p, err := c.host.Recover(ctx, m.cfg)
				c.mu.Lock()
				defer c.mu.Unlock()
				if errors.Is(err, ErrUnreachable) {
					// Not a failed recovery: ask again once the host answers.
					c.logger.Warn("recover position: host unreachable", "member", id, "err", err)
					return
				}
				if err != nil {
					m.recovered, m.recoverErr = nil, err.Error()
					c.logger.Warn("recover position failed", "member", id, "err", err)
					return
				}
				m.recovered, m.recoverErr = &p, ""
				c.logger.Info("recovered position", "member", id, "position", p.String(), "took", time.Since(t0).Round(time.Millisecond))
			})
		}
		wg.Wait()
		return ctx.Err()
	case ActInit:
		m := c.find(d.Members[0])
		if err := CheckBootstrap(obs, m.cfg.ID); err != nil {
			return err
		}
		t0 := time.Now()
		if err := c.host.Init(ctx, m.cfg); err != nil {
			return err
		}
		c.logger.Info("initialised a new database", "member", m.cfg.ID, "took", time.Since(t0).Round(time.Millisecond))
		return c.bootstrap(ctx, m, nil)
	case ActBootstrap:
		m := c.find(d.Members[0])
		if err := CheckBootstrap(obs, m.cfg.ID); err != nil {
			return err
		}
		for _, o := range c.members {
			if err := c.host.SetSafeToBootstrap(ctx, o.cfg, o == m); err != nil {
				return err
			}
		}
		var pos *Position
		if p, ok := d.Positions[m.cfg.ID]; ok {
			pos = &p
		}
		return c.bootstrap(ctx, m, pos)
	case ActJoin:
		m := c.find(d.Members[0])
		var pos *Position
		if p, ok := d.Positions[m.cfg.ID]; ok {
			pos = &p
		} else {
			// Read again right before the datadir is emptied.
			disk, err := c.host.Inspect(ctx, m.cfg)
			if err != nil {
				return err
			}
			if !disk.HasData {
				if err := c.host.ClearForSST(ctx, m.cfg); err != nil {
					return err
				}
			}
		}
		return c.start(ctx, m, ModeJoin, pos)
	case ActStartAll:
		c.mu.Lock()
		c.plainTry = true
		c.mu.Unlock()
		for _, id := range d.Members {
			m := c.find(id)
			var pos *Position
			if p, ok := d.Positions[id]; ok {
				pos = &p
			}
			if err := c.start(ctx, m, ModeJoin, pos); err != nil {
				return err
			}
		}
		return nil
	case ActStop:
		c.mu.Lock()
		c.plainTry, c.plainFailed = false, true
		c.mu.Unlock()
		var wg sync.WaitGroup
		for _, id := range d.Members {
			m := c.find(id)
			c.mu.Lock()
			p := m.proc
			m.stopping = true
			c.mu.Unlock()
			if p == nil {
				continue
			}
			// A member waiting for a primary component ignores SIGTERM; it
			// has nothing to lose, so it is killed after a short wait.
			wg.Go(func() {
				sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				defer cancel()
				p.Stop(sctx)
				// Bounded: a remote member whose agent stops answering
				// would otherwise hold the loop until its host is back.
				select {
				case <-p.Done():
				case <-ctx.Done():
				case <-time.After(30 * time.Second):
				}
			})
		}
		wg.Wait()
		return nil
	case ActPCBootstrap:
		m := c.find(d.Members[0])
		return c.host.PCBootstrap(ctx, m.cfg)
	}
	return nil
}

func (c *Cluster) start(ctx context.Context, m *member, mode StartMode, pos *Position) error {
	p, err := c.host.Start(ctx, m.cfg, mode, pos)
	if err != nil {
		return err
	}
	c.mu.Lock()
	m.proc, m.startedAt, m.stopping, m.status, m.probeFails = p, time.Now(), false, nil, 0
	m.stuckSince = m.startedAt
	m.starts++
	c.mu.Unlock()
	args := []any{"member", m.cfg.ID, "pid", p.Pid(), "mode", mode}
	if pos != nil {
		args = append(args, "position", pos.String())
	}
	c.logger.Info("member started", args...)
	return nil
}

// bootstrap starts m as a new primary component and waits until it answers.
// --wsrep-new-cluster is an argument of this one start, never persisted.
func (c *Cluster) bootstrap(ctx context.Context, m *member, pos *Position) error {
	t0 := time.Now()
	if err := c.start(ctx, m, ModeBootstrap, pos); err != nil {
		return err
	}
	if err := c.waitAnswer(ctx, m); err != nil {
		return err
	}
	c.mu.Lock()
	c.plainFailed, c.plainTry = false, false
	c.mu.Unlock()
	c.logger.Info("bootstrapped", "member", m.cfg.ID, "took", time.Since(t0).Round(time.Millisecond))
	return c.host.EnsureSite(ctx, m.cfg, c.cfg.Site)
}

// waitAnswer waits until m answers as root over its socket, failing fast
// when it exits.
func (c *Cluster) waitAnswer(ctx context.Context, m *member) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.StartTimeout)
	defer cancel()
	c.mu.Lock()
	p := m.proc
	c.mu.Unlock()
	log := c.host.LogName(m.cfg)
	for {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		err := c.host.Ping(pctx, m.cfg)
		pcancel()
		if err == nil {
			return nil
		}
		select {
		case <-p.Done():
			return fmt.Errorf("%s exited while starting: %s (log: %s)", m.cfg.ID, c.host.LastError(context.Background(), m.cfg), log)
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %s: %v (log: %s)", m.cfg.ID, c.cfg.StartTimeout, err, log)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ensureSite creates the site's database and users on a synced member
// (Galera replicates them to the others).
func (c *Cluster) ensureSite(ctx context.Context) error {
	c.mu.Lock()
	var first, synced *member
	for _, m := range c.members {
		if !m.running() {
			continue
		}
		if first == nil {
			first = m
		}
		if synced == nil && m.status != nil && m.status.Synced() {
			synced = m
		}
	}
	c.mu.Unlock()
	if synced != nil {
		first = synced // a joiner may still refuse statements
	}
	if first == nil {
		return fmt.Errorf("galera: no member runs")
	}
	return c.host.EnsureSite(ctx, first.cfg, c.cfg.Site)
}

func (c *Cluster) startStandalone(ctx context.Context) error {
	m := c.members[0]
	// A member still running from an earlier controller (on its agent's
	// host) is taken over as it is, as a cluster member is in Start.
	p, ok, err := c.host.Adopt(ctx, m.cfg)
	if err != nil {
		return err
	}
	if ok {
		c.mu.Lock()
		m.proc, m.startedAt = p, time.Now()
		m.stuckSince = m.startedAt
		c.mu.Unlock()
		c.logger.Info("adopted a running member", "member", m.cfg.ID, "pid", p.Pid())
	} else if err := c.startFresh(ctx, m); err != nil {
		return err
	}
	if err := c.waitAnswer(ctx, m); err != nil {
		return err
	}
	if err := c.host.EnsureSite(ctx, m.cfg, c.cfg.Site); err != nil {
		return err
	}
	return c.probeStandalone(ctx)
}

// startFresh prepares the standalone member's datadir and starts it.
func (c *Cluster) startFresh(ctx context.Context, m *member) error {
	if err := c.host.Prepare(ctx, m.cfg); err != nil {
		return err
	}
	// The first time, a new database; a former cluster member's data
	// (received by SST) is kept.
	disk, err := c.host.Inspect(ctx, m.cfg)
	if err != nil {
		return err
	}
	if !disk.Initialized && !disk.HasData {
		if err := c.host.Init(ctx, m.cfg); err != nil {
			return err
		}
	}
	return c.start(ctx, m, ModeJoin, nil)
}

func (c *Cluster) probeStandalone(ctx context.Context) error {
	m := c.members[0]
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	err := m.prober.Probe(pctx)
	cancel()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !m.running() {
		m.status, m.probeFails = nil, 0
		return err
	}
	if err != nil {
		// A busy member may miss a probe, as in observe: it keeps its
		// last answer for two misses in a row before it counts as not
		// serving (the routers would be told that no member serves and
		// refuse every connection until the next probe; with one member
		// there is nowhere else to send them anyway).
		if m.status != nil && m.probeFails < 2 {
			m.probeFails++
			return nil
		}
		m.status = nil
		return err
	}
	// A standalone member that answers serves: it is "synced".
	m.status = &Status{Ready: true, ClusterStatus: "Primary", LocalState: 4, LocalStateComment: "Synced", ClusterSize: 1}
	m.joined, m.probeFails = 1, 0
	return nil
}

func (c *Cluster) runStandalone(ctx context.Context) {
	m := c.members[0]
	for c.sleep(ctx) {
		c.reapExits(false)
		c.mu.Lock()
		running, gaveUp := m.running(), time.Now().Before(m.gaveUp)
		c.mu.Unlock()
		if !running && !gaveUp {
			if err := c.start(ctx, m, ModeJoin, nil); err != nil {
				c.logger.Error("restart member", "member", m.cfg.ID, "err", err)
			}
			continue
		}
		c.probeStandalone(ctx)
	}
}
