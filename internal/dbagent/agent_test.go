package dbagent

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/galera"
	"github.com/scalepress/scalepress/internal/token"
)

// fakeHost records the operations it is asked for; Start returns a fakeProc
// that runs until stopped or ended.
type fakeHost struct {
	mu    sync.Mutex
	calls []string
	procs []*fakeProc
	disk  galera.Disk
}

var _ galera.Host = (*fakeHost)(nil)

func (h *fakeHost) call(s string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, s)
}

func (h *fakeHost) Calls() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.calls)
}

func (h *fakeHost) Prepare(_ context.Context, m galera.MemberConfig) error {
	h.call("prepare " + m.ID)
	return nil
}

func (h *fakeHost) Inspect(context.Context, galera.MemberConfig) (galera.Disk, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.disk, nil
}

func (h *fakeHost) Init(_ context.Context, m galera.MemberConfig) error {
	h.call("init " + m.ID)
	return nil
}

func (h *fakeHost) Recover(_ context.Context, m galera.MemberConfig) (galera.Position, error) {
	h.call("recover " + m.ID)
	return galera.Position{UUID: "6c2b2a0e-8c11-11ee-9d5e-2b1f2f0e7a11", Seqno: 42}, nil
}

func (h *fakeHost) ClearForSST(_ context.Context, m galera.MemberConfig) error {
	h.call("clear-sst " + m.ID)
	return nil
}

func (h *fakeHost) SSTDone(_ context.Context, m galera.MemberConfig) error {
	h.call("sst-done " + m.ID)
	return nil
}

func (h *fakeHost) SetSafeToBootstrap(_ context.Context, m galera.MemberConfig, safe bool) error {
	if safe {
		h.call("safe " + m.ID)
	} else {
		h.call("unsafe " + m.ID)
	}
	return nil
}

func (h *fakeHost) Start(_ context.Context, m galera.MemberConfig, mode galera.StartMode, pos *galera.Position) (galera.Proc, error) {
	args, err := galera.StartArgs(mode, pos)
	if err != nil {
		return nil, err
	}
	h.call("start " + m.ID + " " + strings.Join(args, " "))
	h.mu.Lock()
	defer h.mu.Unlock()
	p := &fakeProc{pid: 1000 + len(h.procs), done: make(chan struct{})}
	h.procs = append(h.procs, p)
	return p, nil
}

func (h *fakeHost) Adopt(context.Context, galera.MemberConfig) (galera.Proc, bool, error) {
	return nil, false, nil
}

func (h *fakeHost) LastError(context.Context, galera.MemberConfig) string { return "[ERROR] boom" }
func (h *fakeHost) LogName(m galera.MemberConfig) string                  { return "/db/" + m.ID + "/mariadbd.log" }

func (h *fakeHost) Ping(_ context.Context, m galera.MemberConfig) error {
	h.call("ping " + m.ID)
	return nil
}

func (h *fakeHost) EnsureSite(_ context.Context, m galera.MemberConfig, g galera.Grant) error {
	h.call("ensure-site " + m.ID + " " + g.Database)
	return nil
}

func (h *fakeHost) PCBootstrap(_ context.Context, m galera.MemberConfig) error {
	h.call("pc-bootstrap " + m.ID)
	return nil
}

type fakeProc struct {
	pid  int
	once sync.Once
	done chan struct{}
}

func (p *fakeProc) Pid() int              { return p.pid }
func (p *fakeProc) Done() <-chan struct{} { return p.done }
func (p *fakeProc) end()                  { p.once.Do(func() { close(p.done) }) }
func (p *fakeProc) Stop(context.Context) error {
	p.end()
	return nil
}

var root = token.NewKey()

const agentAddr = "10.77.0.12:7480"

func testConfig(addr string) Config {
	cfg := DefaultConfig()
	cfg.ID, cfg.Addr, cfg.Key = "h2", addr, token.AgentKey(root, token.DB, "h2")
	peers := []string{"10.77.0.11:3306", "10.77.0.12:3306", "10.77.0.13:3306"}
	ids := []string{"db-1", "db-2", "db-3"}
	cfg.Members = []galera.MemberConfig{{
		ID: "db-2", Addr: "10.77.0.12:3306", Dir: "/var/lib/scalepress/db-2", BufferPool: "64M", UID: -1, GID: -1,
		Peers: peers, PeerIDs: ids, ClusterName: "scalepress", SSTMethod: "rsync", GcacheSize: "32M",
	}}
	return cfg
}

func newAgent(t *testing.T, addr string) (*Agent, *fakeHost) {
	t.Helper()
	h := &fakeHost{}
	a, err := New(testConfig(addr), h, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return a, h
}

var controllerToken = token.AgentKey(root, token.DB, "h2").Issue(api.DBAgentCaller)

type req struct {
	method, path, body string
	host               string // "" = the agent's address
	ctype              string // "" = application/json on a POST
	tok                string // "" = the controller's token; "-" = none
}

func (r req) do(t *testing.T, h http.Handler) (int, string) {
	t.Helper()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	hr := httptest.NewRequest(r.method, "http://"+agentAddr+r.path, body)
	if r.host != "" {
		hr.Host = r.host
	}
	switch {
	case r.ctype != "":
		hr.Header.Set("Content-Type", r.ctype)
	case r.method == http.MethodPost:
		hr.Header.Set("Content-Type", "application/json")
	}
	switch r.tok {
	case "":
		token.SetBearer(hr.Header, controllerToken)
	case "-":
	default:
		token.SetBearer(hr.Header, r.tok)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, hr)
	return w.Code, strings.TrimSpace(w.Body.String())
}

// TestRefusals: every request that is not the controller's, well formed,
// for a member of this agent, is refused with a clear status and reaches
// nothing on the host.
func TestRefusals(t *testing.T) {
	p := api.DBAgentPathMembers + "db-2"
	tests := []struct {
		name   string
		req    req
		status int
		reason string
	}{
		{"no token", req{method: "GET", path: p, tok: "-"}, 401, "missing bearer token"},
		{"token of another key", req{method: "GET", path: p, tok: token.NewKey().Issue(api.DBAgentCaller)}, 401, "not valid here"},
		{"token of another agent", req{method: "POST", path: p + "/init", body: "{}", tok: token.AgentKey(root, token.DB, "h3").Issue(api.DBAgentCaller)}, 401, "not valid here"},
		{"token of the db purpose key itself", req{method: "POST", path: p + "/init", body: "{}", tok: root.Derive(token.DB).Issue(api.DBAgentCaller)}, 401, "not valid here"},
		{"another identity under this agent's key", req{method: "POST", path: p + "/init", body: "{}", tok: token.AgentKey(root, token.DB, "h2").Issue("node-1")}, 403, `"node-1" may not call the db-agent`},
		{"rebound host name", req{method: "GET", path: p, host: "evil.example:7480"}, 403, "is not this server's address"},
		{"unknown member", req{method: "POST", path: api.DBAgentPathMembers + "db-9/init", body: "{}"}, 404, `no member "db-9"`},
		{"unknown operation", req{method: "POST", path: p + "/exec", body: `{"cmd":"rm -rf /"}`}, 404, `no operation "exec"`},
		{"form post", req{method: "POST", path: p + "/init", body: "{}", ctype: "application/x-www-form-urlencoded"}, 415, "Content-Type must be application/json"},
		{"arbitrary arguments", req{method: "POST", path: p + "/start", body: `{"mode":"join","args":["--init-file=/tmp/x.sql"]}`}, 400, `unknown field "args"`},
		{"unknown mode", req{method: "POST", path: p + "/start", body: `{"mode":"--skip-grant-tables"}`}, 400, `start mode "--skip-grant-tables": must be bootstrap or join`},
		{"option smuggled in the position", req{method: "POST", path: p + "/start", body: `{"mode":"join","position":"x --init-file=/tmp/x:1"}`}, 400, "is not a UUID"},
		{"unknown position", req{method: "POST", path: p + "/start", body: `{"mode":"bootstrap","position":"00000000-0000-0000-0000-000000000000:-1"}`}, 400, "is not a known position"},
		{"two objects", req{method: "POST", path: p + "/start", body: `{"mode":"join"}{"mode":"bootstrap"}`}, 400, "one JSON object expected"},
		{"body too large", req{method: "POST", path: p + "/ensure-site", body: `{"database":"` + strings.Repeat("a", 70<<10) + `"}`}, 413, "body larger than"},
		{"quote in a password", req{method: "POST", path: p + "/ensure-site", body: `{"database":"wp","user":"wp","password":"x'; DROP USER root; --","monitor_user":"m","monitor_password":"y"}`}, 400, "contains a quote"},
		{"stop with a negative pid", req{method: "POST", path: p + "/stop", body: `{"pid":-1}`}, 400, "must not be negative"},
		{"ping a stopped member", req{method: "POST", path: p + "/ping", body: "{}"}, 409, "db-2 is not running"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, h := newAgent(t, agentAddr)
			status, body := tt.req.do(t, a.Handler())
			if status != tt.status || !strings.Contains(body, tt.reason) {
				t.Errorf("got %d %q, want %d containing %q", status, body, tt.status, tt.reason)
			}
			if strings.Contains(body, "\n") {
				t.Errorf("reason is not one line: %q", body)
			}
			if calls := h.Calls(); len(calls) != 0 {
				t.Errorf("the host was asked for %q", calls)
			}
		})
	}
}

// TestOneRunAtATime: a second start, and everything that writes the
// datadir, is refused while the member runs; after a stop it starts again.
func TestOneRunAtATime(t *testing.T) {
	a, h := newAgent(t, agentAddr)
	hd := a.Handler()
	p := api.DBAgentPathMembers + "db-2"
	post := func(op, body string) (int, string) {
		return req{method: "POST", path: p + "/" + op, body: body}.do(t, hd)
	}
	if st, body := post("start", `{"mode":"bootstrap","position":"6c2b2a0e-8c11-11ee-9d5e-2b1f2f0e7a11:42"}`); st != 200 {
		t.Fatalf("first start: %d %s", st, body)
	}
	for _, op := range []struct{ op, body string }{
		{"start", `{"mode":"join"}`}, {"init", "{}"}, {"clear-sst", "{}"}, {"recover", "{}"},
		{"safe-to-bootstrap", `{"safe":true}`}, {"prepare", "{}"},
	} {
		if st, body := post(op.op, op.body); st != http.StatusConflict || !strings.Contains(body, "db-2 is running (pid 1000)") {
			t.Errorf("%s while running: %d %q, want 409", op.op, st, body)
		}
	}
	if st, body := post("stop", `{"pid":999}`); st != http.StatusConflict {
		t.Errorf("stop of another run: %d %q, want 409", st, body)
	}
	for _, op := range []string{"ping", "pc-bootstrap", "sst-done"} {
		if st, body := post(op, "{}"); st != http.StatusNoContent {
			t.Errorf("%s while running: %d %q", op, st, body)
		}
	}
	if st, body := post("stop", `{"pid":1000,"timeout_ms":5000}`); st != http.StatusNoContent {
		t.Fatalf("stop: %d %s", st, body)
	}
	if st, body := post("recover", "{}"); st != 200 || body != `{"position":"6c2b2a0e-8c11-11ee-9d5e-2b1f2f0e7a11:42"}` {
		t.Errorf("recover after stop: %d %s", st, body)
	}
	if st, body := post("start", `{"mode":"join"}`); st != 200 {
		t.Errorf("start after stop: %d %s", st, body)
	}
	want := []string{
		"start db-2 --wsrep-new-cluster --wsrep_start_position=6c2b2a0e-8c11-11ee-9d5e-2b1f2f0e7a11:42",
		"ping db-2", "pc-bootstrap db-2", "sst-done db-2", "recover db-2", "start db-2 ",
	}
	if diff := cmp.Diff(want, h.Calls()); diff != "" {
		t.Errorf("host calls (-want +got):\n%s", diff)
	}
}

// TestRemote drives a real agent (over HTTP, fake host) through galera.Remote.
func TestRemote(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a, h := newAgent(t, ln.Addr().String())
	h.disk = galera.Disk{HasData: true, Grastate: &galera.GraState{UUID: "6c2b2a0e-8c11-11ee-9d5e-2b1f2f0e7a11", Seqno: -1}, ViewID: "3 6c2b 5"}
	srv := httptest.NewUnstartedServer(a.Handler())
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	defer srv.Close()

	rc := galera.DefaultRemoteConfig()
	rc.Poll = 10 * time.Millisecond
	rc.Agents = map[string]galera.Agent{"db-2": {URL: "http://" + ln.Addr().String(), Token: controllerToken}}
	r, err := galera.NewRemote(rc, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	m := testConfig("")
	mc := m.Members[0]
	ctx := context.Background()

	if err := r.Prepare(ctx, mc); err != nil {
		t.Fatalf("prepare: %v", err)
	}
	other := mc
	other.Addr = "10.77.0.99:3306"
	if err := r.Prepare(ctx, other); err == nil || !strings.Contains(err.Error(), "its agent runs it on 10.77.0.12:3306, the cluster expects 10.77.0.99:3306") {
		t.Errorf("prepare with another address: %v", err)
	}
	d, err := r.Inspect(ctx, mc)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(h.disk, d); diff != "" {
		t.Errorf("inspect (-want +got):\n%s", diff)
	}
	pos, err := r.Recover(ctx, mc)
	if err != nil || pos.Seqno != 42 {
		t.Errorf("recover: %v %v", pos, err)
	}
	p, err := r.Start(ctx, mc, galera.ModeJoin, &pos)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Start(ctx, mc, galera.ModeJoin, nil); err == nil || !strings.Contains(err.Error(), "409 Conflict: POST /v1/db/members/db-2/start: db-2 is running (pid 1000)") {
		t.Errorf("second start: %v", err)
	}
	// A new controller takes the running member over.
	r2, err := galera.NewRemote(rc, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	adopted, ok, err := r2.Adopt(ctx, mc)
	if err != nil || !ok || adopted.Pid() != p.Pid() {
		t.Fatalf("adopt: %v %v %v", adopted, ok, err)
	}
	if got := r.LastError(ctx, mc); got != "[ERROR] boom" {
		t.Errorf("last error %q", got)
	}
	select {
	case <-p.Done():
		t.Fatal("done while running")
	default:
	}
	h.procs[0].end() // mariadbd exits on its own
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the exit was not seen")
	}
	select {
	case <-adopted.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the exit was not seen by the adopter")
	}
	if _, ok, err := r2.Adopt(ctx, mc); ok || err != nil {
		t.Errorf("adopt of a stopped member: %v %v", ok, err)
	}

	bad := rc
	bad.Agents = map[string]galera.Agent{"db-2": {URL: "http://" + ln.Addr().String(), Token: token.AgentKey(root, token.DB, "h3").Issue(api.DBAgentCaller)}}
	rb, _ := galera.NewRemote(bad, slog.New(slog.DiscardHandler))
	defer rb.Close()
	if err := rb.Init(ctx, mc); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("init with another agent's token: %v", err)
	}

	srv.Close()
	if _, err := r.Inspect(ctx, mc); !errors.Is(err, galera.ErrUnreachable) {
		t.Errorf("inspect of a gone agent: %v, want ErrUnreachable", err)
	}
}
