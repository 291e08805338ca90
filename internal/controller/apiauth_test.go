package controller

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/config"
	"github.com/scalepress/scalepress/internal/console"
	"github.com/scalepress/scalepress/internal/eventlog"
	"github.com/scalepress/scalepress/internal/local"
	"github.com/scalepress/scalepress/internal/nodegroup"
	"github.com/scalepress/scalepress/internal/statedir"
	"github.com/scalepress/scalepress/internal/token"
)

// apiController is a controller with what the API handlers need and no processes.
func apiController(t *testing.T) *Controller {
	t.Helper()
	cfg := config.Default()
	cfg.Edges = []config.Edge{{ID: "edge-1", Region: "default", Addr: "127.0.0.1:8080"}}
	dir := t.TempDir()
	// The edge answers purges sent with WordPress's purge secret.
	edge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer purge-secret-of-wordpress" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		io.WriteString(w, `{"purged": 1}`)
	}))
	t.Cleanup(edge.Close)
	cfg.Edges[0].Addr = strings.TrimPrefix(edge.URL, "http://")
	c, err := New(cfg, dir, "test", slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.http = edge.Client()
	c.secrets = statedir.Secrets{RootKey: token.NewKey(), PurgeSecret: "purge-secret-of-wordpress"}
	if err := c.newPurges(); err != nil {
		t.Fatal(err)
	}
	c.launcher = &local.Launcher{}
	if err := c.newGroup(nil); err != nil {
		t.Fatal(err)
	}
	if c.events, err = eventlog.Open(filepath.Join(dir, "events.log")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.events.Close() })
	if err := c.newConsole(); err != nil {
		t.Fatal(err)
	}
	for i := range 3 { // generation 3
		c.upstreams.Publish([]nodegroup.Node{{ID: config.NodeID(i + 1)}})
	}
	return c
}

type apiCall struct {
	name, method, path, host, ctype, token, body string
	want                                         int
	reason                                       string // in the refusal's one line
}

func (tt apiCall) do(t *testing.T, h http.Handler) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
	// A stream that is not refused ends with its request, not never.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r = r.WithContext(ctx)
	r.Host = "127.0.0.1:9090"
	if tt.host != "" {
		r.Host = tt.host
	}
	if tt.ctype != "" {
		r.Header.Set("Content-Type", tt.ctype)
	}
	if tt.token != "" {
		token.SetBearer(r.Header, tt.token)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestControlAPIRefusesUnauthenticatedWrites(t *testing.T) {
	c := apiController(t)
	h := c.apiHandler()
	ctl := c.secrets.Key(token.Control)
	operator, edge1 := ctl.Issue(statedir.OperatorID), ctl.Issue("edge-1")
	const js = "application/json"
	tests := []apiCall{
		{name: "cross-site form post", method: "POST", path: "/v1/scale", ctype: "text/plain", body: `{"min":5}`, want: 415, reason: "Content-Type must be application/json"},
		{name: "token but text/plain", method: "POST", path: "/v1/scale", ctype: "text/plain", token: operator, body: `{"min":5}`, want: 415},
		{name: "no token", method: "POST", path: "/v1/scale", ctype: js, body: `{"min":5}`, want: 401, reason: "missing bearer token"},
		{name: "forged token", method: "POST", path: "/v1/scale", ctype: js, token: "operator.AAAA", body: `{"min":5}`, want: 401, reason: "not valid"},
		{name: "token of another purpose", method: "POST", path: "/v1/scale", ctype: js, token: c.secrets.Key(token.Files).Issue(statedir.OperatorID), body: `{"min":5}`, want: 401},
		{name: "edge token cannot scale", method: "POST", path: "/v1/scale", ctype: js, token: edge1, body: `{"min":5}`, want: 403, reason: "only the operator"},
		{name: "rebinding host", method: "POST", path: "/v1/scale", host: "attacker.example:9090", ctype: js, token: operator, body: `{"min":5}`, want: 403, reason: "not this server's address"},
		{name: "rebinding host read", method: "GET", path: "/v1/status", host: "attacker.example:9090", want: 403},
		{name: "scale by GET", method: "GET", path: "/v1/scale", want: 405},
		{name: "purge without token", method: "POST", path: "/v1/purge", ctype: js, body: `{"all":true}`, want: 401},
		{name: "purge by an edge", method: "POST", path: "/v1/purge", ctype: js, token: edge1, body: `{"all":true}`, want: 403},
		{name: "ack without token", method: "POST", path: "/v1/upstreams/ack", ctype: js, body: `{"generation":3}`, want: 401},
		{name: "ack by the operator", method: "POST", path: "/v1/upstreams/ack", ctype: js, token: operator, body: `{"generation":3}`, want: 403, reason: "not a configured edge"},
		{name: "ack by an unknown edge", method: "POST", path: "/v1/upstreams/ack", ctype: js, token: ctl.Issue("edge-9"), body: `{"generation":3}`, want: 403},
		{name: "ack from the future", method: "POST", path: "/v1/upstreams/ack", ctype: js, token: edge1, body: `{"generation":4}`, want: 400},
		{name: "ack as a form", method: "POST", path: "/v1/upstreams/ack", ctype: "application/x-www-form-urlencoded", token: edge1, body: `generation=3`, want: 415},
		{name: "ack by GET query", method: "GET", path: "/v1/upstreams?edge=edge-1&have=3", want: 200},
		{name: "edge events without token", method: "POST", path: "/v1/edge/events", ctype: js, body: `{"login_blocks":[]}`, want: 401},
		{name: "edge events by the operator", method: "POST", path: "/v1/edge/events", ctype: js, token: operator, body: `{"login_blocks":[]}`, want: 403, reason: "not a configured edge"},
		{name: "edge events as a form", method: "POST", path: "/v1/edge/events", ctype: "text/plain", token: edge1, body: `{"login_blocks":[]}`, want: 415},
		{name: "edge events, too many", method: "POST", path: "/v1/edge/events", ctype: js, token: edge1, body: `{"login_blocks":[` + strings.Repeat(`{"by":"address"},`, 10) + `{"by":"address"}]}`, want: 400, reason: "at most 10 one by one"},
		{name: "edge events, unknown field", method: "POST", path: "/v1/edge/events", ctype: js, token: edge1, body: `{"password":"x"}`, want: 400},
		// The dashboard: read by anyone who names this server, changed by no one.
		{name: "dashboard on a rebinding host", method: "GET", path: "/", host: "attacker.example:9090", want: 403, reason: "not this server's address"},
		{name: "dashboard stream on a rebinding host", method: "GET", path: "/v1/console/stream", host: "attacker.example:9090", want: 403},
		{name: "dashboard document on a rebinding host", method: "GET", path: "/v1/console", host: "attacker.example:9090", want: 403},
		{name: "dashboard posts to itself", method: "POST", path: "/", ctype: js, body: `{"min":5}`, want: 405},
		{name: "dashboard asset that is not one", method: "GET", path: "/console/index.html", want: 404},
		{name: "backup without token", method: "POST", path: "/v1/backups", ctype: js, body: `{}`, want: 401, reason: "missing bearer token"},
		{name: "backup by an edge", method: "POST", path: "/v1/backups", ctype: js, token: edge1, body: `{}`, want: 403, reason: "only the operator"},
		{name: "backup as a form", method: "POST", path: "/v1/backups", ctype: "application/x-www-form-urlencoded", token: operator, body: `to=/tmp/x`, want: 415},
		{name: "backup by WordPress", method: "POST", path: "/v1/backups", ctype: js, token: "purge-secret-of-wordpress", body: `{}`, want: 401},
		{name: "backup to a relative path", method: "POST", path: "/v1/backups", ctype: js, token: operator, body: `{"to":"x"}`, want: 400, reason: "absolute"},
		{name: "backup with an unknown field", method: "POST", path: "/v1/backups", ctype: js, token: operator, body: `{"dir":"/x"}`, want: 400},
		{name: "update without token", method: "POST", path: "/v1/releases", ctype: js, body: `{"kind":"core","from":"/tmp/wp"}`, want: 401, reason: "missing bearer token"},
		{name: "update by an edge", method: "POST", path: "/v1/releases", ctype: js, token: edge1, body: `{"kind":"core","from":"/tmp/wp"}`, want: 403, reason: "only the operator"},
		{name: "update by WordPress", method: "POST", path: "/v1/releases", ctype: js, token: "purge-secret-of-wordpress", body: `{"kind":"core","from":"/tmp/wp"}`, want: 401},
		{name: "update as a form", method: "POST", path: "/v1/releases", ctype: "text/plain", token: operator, body: `{"kind":"core","from":"/tmp/wp"}`, want: 415},
		{name: "update from a relative path", method: "POST", path: "/v1/releases", ctype: js, token: operator, body: `{"kind":"core","from":"wp"}`, want: 400, reason: "must be an absolute path"},
		{name: "update with an unknown field", method: "POST", path: "/v1/releases", ctype: js, token: operator, body: `{"kind":"core","from":"/tmp/wp","url":"http://x"}`, want: 400},
		{name: "rollback without token", method: "POST", path: "/v1/releases/rollback", ctype: js, body: `{}`, want: 401},
		{name: "rollback by an edge", method: "POST", path: "/v1/releases/rollback", ctype: js, token: edge1, body: `{}`, want: 403, reason: "only the operator"},
		{name: "rollback to a path", method: "POST", path: "/v1/releases/rollback", ctype: js, token: operator, body: `{"release":"../r1"}`, want: 400, reason: "is not a release id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := tt.do(t, h)
			if w.Code != tt.want {
				t.Fatalf("%s %s: %d %q, want %d", tt.method, tt.path, w.Code, w.Body.String(), tt.want)
			}
			if tt.reason != "" && !strings.Contains(w.Body.String(), tt.reason) {
				t.Fatalf("reason %q does not say %q", w.Body.String(), tt.reason)
			}
		})
	}
	// Nothing above changed anything.
	if st := c.group.Autoscaling(); st.Min != config.Default().Autoscale.Min {
		t.Errorf("scaler min changed to %d by a refused request", st.Min)
	}
	if got := c.upstreams.Applied("edge-1"); got != 0 {
		t.Errorf("acknowledgement recorded by refused or read requests: %d", got)
	}
	if evs := c.events.Since(context.Background(), 0, 0).Events; len(evs) != 0 {
		t.Errorf("refused requests made events: %+v", evs)
	}
	if _, err := os.Stat(filepath.Join(c.layout.Dir, "backups")); !os.IsNotExist(err) {
		t.Errorf("a refused backup request made the backup target: %v", err)
	}
	if n := c.backups.ok.Load() + c.backups.failed.Load(); n != 0 {
		t.Errorf("refused requests ran %d backups", n)
	}
}

// TestEdgeEvents: an edge's login blocks become events of kind throttle.
func TestEdgeEvents(t *testing.T) {
	c := apiController(t)
	body := `{"login_blocks":[{"time":"2026-12-07T08:00:00Z","by":"address","address":"192.0.2.1","user":"admin","count":21,"until":"2026-12-07T08:15:00Z"},` +
		`{"time":"2026-12-07T08:00:01Z","by":"user","address":"192.0.2.9","user":"admin","count":11,"until":"2026-12-07T08:15:01Z"}],"more":7}`
	call := apiCall{method: "POST", path: "/v1/edge/events", ctype: "application/json", token: c.secrets.Key(token.Control).Issue("edge-1"), body: body}
	if w := call.do(t, c.apiHandler()); w.Code != http.StatusNoContent {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	var got []string
	for _, e := range c.events.Since(context.Background(), 0, 0).Events {
		got = append(got, e.Kind+": "+e.Message)
	}
	want := []string{
		"throttle: edge-1: login attempts for address 192.0.2.1 blocked until 2026-12-07T08:15:00Z after 21 failures (last from 192.0.2.1)",
		`throttle: edge-1: login attempts for user name "admin" blocked until 2026-12-07T08:15:01Z after 11 failures (last from 192.0.2.9)`,
		"throttle: edge-1: 7 more login blocks started (see the edge's log)",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestControlAPIAcceptsTokens(t *testing.T) {
	c := apiController(t)
	h := c.apiHandler()
	ctl := c.secrets.Key(token.Control)
	const js = "application/json"
	for _, tt := range []apiCall{
		{name: "operator scales", method: "POST", path: "/v1/scale", ctype: js, token: ctl.Issue(statedir.OperatorID), body: `{"min":3}`, want: 200},
		{name: "localhost name", method: "GET", path: "/v1/status", host: "localhost:9090", want: 200},
		{name: "edge acks", method: "POST", path: "/v1/upstreams/ack", ctype: "application/json; charset=utf-8", token: ctl.Issue("edge-1"), body: `{"generation":3}`, want: 200},
		{name: "wordpress purges", method: "POST", path: "/v1/purge", ctype: js, token: "purge-secret-of-wordpress", body: `{"all":true}`, want: 200},
		{name: "operator purges", method: "POST", path: "/v1/purge", ctype: js, token: ctl.Issue(statedir.OperatorID), body: `{"tags":["home"]}`, want: 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := tt.do(t, h)
			if w.Code != tt.want {
				b, _ := io.ReadAll(w.Body)
				t.Fatalf("%d %s, want %d", w.Code, b, tt.want)
			}
		})
	}
	if st := c.group.Autoscaling(); st.Min != 3 {
		t.Errorf("min = %d after the operator's scale, want 3", st.Min)
	}
	if got := c.upstreams.Applied("edge-1"); got != 3 {
		t.Errorf("edge-1 acknowledged %d, want 3", got)
	}
}

// TestDashboardHeaders: the page may run only its own script, talk only to
// its own origin and never sit in a frame (clickjacking of its actions).
func TestDashboardHeaders(t *testing.T) {
	c := apiController(t)
	h := c.apiHandler()
	for _, path := range []string{"/", "/console/app.js", "/console/app.css"} {
		w := apiCall{method: "GET", path: path}.do(t, h)
		if w.Code != 200 {
			t.Fatalf("GET %s: %d", path, w.Code)
		}
		got := map[string]string{}
		for _, k := range []string{"Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options"} {
			got[k] = w.Header().Get(k)
		}
		want := map[string]string{"Content-Security-Policy": console.CSP, "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff"}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("GET %s headers (-want +got):\n%s", path, d)
		}
	}
	for _, must := range []string{"script-src 'self'", "frame-ancestors 'none'", "connect-src 'self'"} {
		if !strings.Contains(console.CSP, must) || strings.Contains(console.CSP, "unsafe-") {
			t.Errorf("CSP %q: want %q and nothing unsafe", console.CSP, must)
		}
	}
	if page := (apiCall{method: "GET", path: "/"}).do(t, h).Body.String(); strings.Contains(page, "<script>") || strings.Contains(page, "onclick=") || strings.Contains(page, "onsubmit=") {
		t.Errorf("the page has inline script")
	}
	var st api.Status
	if err := json.Unmarshal(apiCall{method: "GET", path: "/v1/status"}.do(t, h).Body.Bytes(), &st); err != nil || st.DashboardURL != "http://127.0.0.1:9090/" {
		t.Errorf("dashboard_url %q (%v)", st.DashboardURL, err)
	}
}
