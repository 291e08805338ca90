package galera

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/scalepress/scalepress/internal/api"
)

// Agent is where a member's db-agent answers and the token it takes.
type Agent struct {
	URL   string // http://IP:port
	Token string // the controller's token for this agent
}

// RemoteConfig configures a Remote.
type RemoteConfig struct {
	// Agents maps each member id to its agent.
	Agents map[string]Agent
	// Client makes the requests (nil: a client with a 30 s timeout).
	Client *http.Client
	// Poll is how often a running member's agent is asked whether it still
	// runs (its Proc's Done).
	Poll time.Duration
	// Epoch, when not 0, is sent with every request (api.DBAgentHeaderEpoch):
	// the controller's owner epoch, which the agents hold it to.
	Epoch uint64
}

// ErrSuperseded means the agent refused the request because a controller
// with a newer owner epoch drives it: this one was taken over.
var ErrSuperseded = errors.New("a controller that took the site over drives this db-agent")

// DefaultRemoteConfig has the timings; Agents is to be filled.
func DefaultRemoteConfig() RemoteConfig { return RemoteConfig{Poll: 500 * time.Millisecond} }

// Validate names the field that is wrong.
func (c RemoteConfig) Validate() error {
	if len(c.Agents) == 0 {
		return fmt.Errorf("galera: remote: agents: at least one is needed")
	}
	for id, a := range c.Agents {
		u, err := url.Parse(a.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" {
			return fmt.Errorf("galera: remote: agent of %s: url %q: want http://IP:port", id, a.URL)
		}
		if a.Token == "" {
			return fmt.Errorf("galera: remote: agent of %s: token is empty", id)
		}
	}
	if c.Poll <= 0 {
		return fmt.Errorf("galera: remote: poll must be positive")
	}
	return nil
}

// Remote is the Host of members on other machines: every operation is a
// request to the member's db-agent. A transport failure is ErrUnreachable;
// a refusal or a failed operation is an error with the agent's reason.
type Remote struct {
	cfg    RemoteConfig
	client *http.Client
	logger *slog.Logger

	ctx    context.Context // ends at Close: stops the watchers
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var _ Host = (*Remote)(nil)

// NewRemote returns a Remote; Close stops its watchers.
func NewRemote(cfg RemoteConfig, logger *slog.Logger) (*Remote, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	client := cfg.Client
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Remote{cfg: cfg, client: client, logger: logger, ctx: ctx, cancel: cancel}, nil
}

// Close stops watching the members' runs and waits for the watchers.
func (r *Remote) Close() {
	r.cancel()
	r.wg.Wait()
}

// do sends one request to id's agent: op "" is GET of the member, a name
// without a body is GET of that sub-resource, else POST of in as JSON.
func (r *Remote) do(ctx context.Context, id, method, op string, in, out any) error {
	a, ok := r.cfg.Agents[id]
	if !ok {
		return fmt.Errorf("galera: %s: no agent configured for it", id)
	}
	u := strings.TrimRight(a.URL, "/") + api.DBAgentPathMembers + id
	if op != "" {
		u += "/" + op
	}
	var body io.Reader
	if method == http.MethodPost {
		if in == nil {
			in = struct{}{}
		}
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("galera: %s %s: %w", op, id, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("galera: %s %s: %w", op, id, err)
	}
	req.Header.Set("Authorization", "Bearer "+a.Token)
	if r.cfg.Epoch != 0 {
		req.Header.Set(api.DBAgentHeaderEpoch, strconv.FormatUint(r.cfg.Epoch, 10))
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return fmt.Errorf("galera: %s %s at %s: %w: %v", orGet(op), id, a.URL, ErrUnreachable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		line, _ := bufio.NewReader(io.LimitReader(resp.Body, 4096)).ReadString('\n')
		if resp.StatusCode == http.StatusConflict && resp.Header.Get(api.DBAgentHeaderEpoch) != "" {
			return fmt.Errorf("galera: %s %s: agent %s: %w: %s", orGet(op), id, a.URL, ErrSuperseded, strings.TrimSpace(line))
		}
		return fmt.Errorf("galera: %s %s: agent %s: %s: %s", orGet(op), id, a.URL, resp.Status, strings.TrimSpace(line))
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out); err != nil {
		return fmt.Errorf("galera: %s %s: agent %s: %w", orGet(op), id, a.URL, err)
	}
	return nil
}

func orGet(op string) string {
	if op == "" {
		return "read"
	}
	return op
}

func (r *Remote) member(ctx context.Context, id string) (api.DBAgentMember, error) {
	var st api.DBAgentMember
	err := r.do(ctx, id, http.MethodGet, "", nil, &st)
	return st, err
}

// Prepare has the agent write my.cnf from its own spec, and checks that
// the agent runs the member on the address the cluster expects.
func (r *Remote) Prepare(ctx context.Context, m MemberConfig) error {
	if err := r.do(ctx, m.ID, http.MethodPost, api.DBOpPrepare, nil, nil); err != nil {
		return err
	}
	st, err := r.member(ctx, m.ID)
	if err != nil {
		return err
	}
	if st.Addr != m.Addr {
		return fmt.Errorf("galera: %s: its agent runs it on %s, the cluster expects %s: fix db.hosts or the agent's spec", m.ID, st.Addr, m.Addr)
	}
	return nil
}

// Inspect asks the agent what the datadir holds.
func (r *Remote) Inspect(ctx context.Context, m MemberConfig) (Disk, error) {
	st, err := r.member(ctx, m.ID)
	if err != nil {
		return Disk{}, err
	}
	d := Disk{Initialized: st.Disk.Initialized, HasData: st.Disk.HasData, ViewID: st.Disk.ViewID}
	if g := st.Disk.Grastate; g != nil {
		d.Grastate = &GraState{Version: g.Version, UUID: g.UUID, Seqno: g.Seqno, SafeToBootstrap: g.SafeToBootstrap}
	}
	return d, nil
}

// Init has the agent make a new database.
func (r *Remote) Init(ctx context.Context, m MemberConfig) error {
	return r.do(ctx, m.ID, http.MethodPost, api.DBOpInit, nil, nil)
}

// Recover has the agent run --wsrep-recover.
func (r *Remote) Recover(ctx context.Context, m MemberConfig) (Position, error) {
	var out api.DBAgentPosition
	if err := r.do(ctx, m.ID, http.MethodPost, api.DBOpRecover, nil, &out); err != nil {
		return Position{}, err
	}
	return ParsePosition(out.Position)
}

// ClearForSST has the agent empty the datadir behind the SST mark.
func (r *Remote) ClearForSST(ctx context.Context, m MemberConfig) error {
	return r.do(ctx, m.ID, http.MethodPost, api.DBOpClearSST, nil, nil)
}

// SSTDone has the agent remove the SST mark.
func (r *Remote) SSTDone(ctx context.Context, m MemberConfig) error {
	return r.do(ctx, m.ID, http.MethodPost, api.DBOpSSTDone, nil, nil)
}

// SetSafeToBootstrap has the agent rewrite grastate.dat.
func (r *Remote) SetSafeToBootstrap(ctx context.Context, m MemberConfig, safe bool) error {
	return r.do(ctx, m.ID, http.MethodPost, api.DBOpSafe, api.DBAgentSafe{Safe: safe}, nil)
}

// Start has the agent start mariadbd; the returned Proc's Done is closed
// once the agent says that run is over (an unreachable agent says nothing:
// the run is not taken for over).
func (r *Remote) Start(ctx context.Context, m MemberConfig, mode StartMode, pos *Position) (Proc, error) {
	if _, err := StartArgs(mode, pos); err != nil {
		return nil, err
	}
	req := api.DBAgentStart{Mode: string(mode)}
	if pos != nil {
		req.Position = pos.String()
	}
	var st api.DBAgentMember
	if err := r.do(ctx, m.ID, http.MethodPost, api.DBOpStart, req, &st); err != nil {
		return nil, err
	}
	if !st.Running || st.PID <= 0 {
		return nil, fmt.Errorf("galera: start %s: the agent reports no running process", m.ID)
	}
	return r.watch(m.ID, st.PID), nil
}

// Adopt takes over the run the agent reports, if any: members on other
// hosts outlive a controller.
func (r *Remote) Adopt(ctx context.Context, m MemberConfig) (Proc, bool, error) {
	st, err := r.member(ctx, m.ID)
	if err != nil {
		return nil, false, err
	}
	if !st.Running || st.PID <= 0 {
		return nil, false, nil
	}
	return r.watch(m.ID, st.PID), true, nil
}

func (r *Remote) watch(id string, pid int) *remoteProc {
	p := &remoteProc{r: r, id: id, pid: pid, done: make(chan struct{})}
	r.wg.Add(1)
	go p.watch()
	return p
}

// LastError asks the agent for the line of the log that says why it failed.
func (r *Remote) LastError(ctx context.Context, m MemberConfig) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var out api.DBAgentLastError
	if err := r.do(ctx, m.ID, http.MethodGet, "last-error", nil, &out); err != nil {
		return err.Error()
	}
	return out.LastError
}

// LogName says where the member's log is.
func (r *Remote) LogName(m MemberConfig) string {
	return fmt.Sprintf("%s's log on its db-agent %s", m.ID, r.cfg.Agents[m.ID].URL)
}

// Ping has the agent run SELECT 1 as root over the member's socket.
func (r *Remote) Ping(ctx context.Context, m MemberConfig) error {
	return r.do(ctx, m.ID, http.MethodPost, api.DBOpPing, nil, nil)
}

// EnsureSite has the agent create the site's database and users.
func (r *Remote) EnsureSite(ctx context.Context, m MemberConfig, g Grant) error {
	return r.do(ctx, m.ID, http.MethodPost, api.DBOpEnsureSite, api.DBAgentGrant{
		Database: g.Database, User: g.User, Password: g.Password,
		MonitorUser: g.MonitorUser, MonitorPassword: g.MonitorPassword,
	}, nil)
}

// PCBootstrap has the agent set pc.bootstrap=YES on the member.
func (r *Remote) PCBootstrap(ctx context.Context, m MemberConfig) error {
	return r.do(ctx, m.ID, http.MethodPost, api.DBOpPCBootstrap, nil, nil)
}

// remoteProc is one run of a member's mariadbd on its agent's host.
type remoteProc struct {
	r    *Remote
	id   string
	pid  int
	done chan struct{}
}

func (p *remoteProc) Pid() int              { return p.pid }
func (p *remoteProc) Done() <-chan struct{} { return p.done }

// Stop asks the agent to stop this run, killing it when ctx's deadline
// comes first.
func (p *remoteProc) Stop(ctx context.Context) error {
	timeout := 60 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(d)-500*time.Millisecond, 100*time.Millisecond)
	}
	// The agent answers once the run is over (or killed); give it the time
	// it waits, and a little more, beyond ctx.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout+10*time.Second)
	defer cancel()
	return p.r.do(sctx, p.id, http.MethodPost, api.DBOpStop, api.DBAgentStop{PID: p.pid, TimeoutMS: int(timeout / time.Millisecond)}, nil)
}

// watch closes done once the agent reports another run or none.
func (p *remoteProc) watch() {
	defer p.r.wg.Done()
	t := time.NewTicker(p.r.cfg.Poll)
	defer t.Stop()
	for {
		select {
		case <-p.r.ctx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(p.r.ctx, 5*time.Second)
		st, err := p.r.member(ctx, p.id)
		cancel()
		if err != nil {
			continue // unknown is not over
		}
		if !st.Running || st.PID != p.pid {
			close(p.done)
			return
		}
	}
}
