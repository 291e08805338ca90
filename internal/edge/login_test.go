package edge

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/throttle"
)

// fakeWP answers logins like WordPress: a wrong wp-login password is 200
// with the form again, a right one 302 with the logged-in cookie; a wrong
// xmlrpc password a fault; a wrong application password 401. It counts the
// passwords that reached it.
type fakeWP struct {
	mu       sync.Mutex
	tried    int
	lastBody [32]byte // sha256 of the last body
}

const rightPassword = "correct horse"

func (f *fakeWP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.lastBody = sha256.Sum256(body)
	f.mu.Unlock()
	count := func(n int) {
		f.mu.Lock()
		f.tried += n
		f.mu.Unlock()
	}
	switch r.URL.Path {
	case "/wp-login.php":
		v, _ := url.ParseQuery(string(body))
		count(1)
		if v.Get("pwd") == rightPassword {
			http.SetCookie(w, &http.Cookie{Name: "wordpress_logged_in_0123", Value: "x"})
			http.Redirect(w, r, "/wp-admin/", http.StatusFound)
			return
		}
		io.WriteString(w, "<form>Error: the password you entered is incorrect</form>")
	case "/xmlrpc.php":
		n := strings.Count(string(body), "<value><string>pw:")
		count(n)
		if n == 1 && strings.Contains(string(body), "pw:"+rightPassword) {
			io.WriteString(w, `<?xml version="1.0"?><methodResponse><params><param><value><array><data></data></array></value></param></params></methodResponse>`)
			return
		}
		io.WriteString(w, `<?xml version="1.0"?><methodResponse><fault><value><struct><member><name>faultCode</name><value><int>403</int></value></member></struct></value></fault></methodResponse>`)
	default:
		if _, pw, ok := r.BasicAuth(); ok {
			count(1)
			if pw != rightPassword {
				http.Error(w, `{"code":"incorrect_password"}`, http.StatusUnauthorized)
				return
			}
		}
		io.WriteString(w, `{"id":1}`)
	}
}

func (f *fakeWP) triedSoFar() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tried
}

type loginEdge struct {
	t    *testing.T
	url  string
	wp   *fakeWP
	logs *syncBuffer
	e    *Edge
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newLoginEdge is an edge in front of fakeWP that believes X-Forwarded-For
// from the test (127.0.0.1 is a trusted proxy), so that each request can
// come from its own client address.
func newLoginEdge(t *testing.T, lt *api.LoginThrottleSpec) *loginEdge {
	t.Helper()
	wp := &fakeWP{}
	node := httptest.NewServer(wp)
	t.Cleanup(node.Close)
	logs := &syncBuffer{}
	e, err := New(api.EdgeSpec{ID: "edge-1", Addr: "127.0.0.1:0", Cache: &api.CacheSpec{Enabled: true, DefaultTTL: "1m"},
		HTTP: api.HTTPSpec{TrustedProxies: []string{"127.0.0.1/32"}, LoginThrottle: lt}}, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	e.SetUpstreams([]api.Upstream{{ID: "a", Addr: strings.TrimPrefix(node.URL, "http://")}})
	s := httptest.NewServer(e)
	t.Cleanup(s.Close)
	return &loginEdge{t: t, url: s.URL, wp: wp, logs: logs, e: e}
}

func throttleSpec(perAddress, perUser int) *api.LoginThrottleSpec {
	return &api.LoginThrottleSpec{PerAddress: perAddress, PerUser: perUser, Window: "1m", Block: "2m", TrustedFor: "1h", MaxEntries: 1024}
}

type answer struct {
	status     int
	retryAfter string
	body       string
}

func (l *loginEdge) do(client, method, path, ctype, body string, hdr ...string) answer {
	l.t.Helper()
	req, _ := http.NewRequest(method, l.url+path, strings.NewReader(body))
	req.Header.Set("X-Forwarded-For", client)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		l.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header.Get("Retry-After"), string(b)}
}

func (l *loginEdge) login(client, user, password string) int {
	l.t.Helper()
	form := url.Values{"log": {user}, "pwd": {password}, "wp-submit": {"Log In"}}
	return l.do(client, "POST", "/wp-login.php", "application/x-www-form-urlencoded", form.Encode()).status
}

// TestLoginThrottleWPLogin: the N+1th wrong password from an address gets
// 429 without reaching PHP; another address is not affected; a right
// password is a success that is given back.
func TestLoginThrottleWPLogin(t *testing.T) {
	l := newLoginEdge(t, throttleSpec(3, 100))
	var got []int
	for range 3 {
		got = append(got, l.login("192.0.2.1", "admin", "guess"))
	}
	a := l.do("192.0.2.1", "POST", "/wp-login.php", "application/x-www-form-urlencoded", "log=admin&pwd=guess")
	got = append(got, a.status)
	got = append(got, l.login("192.0.2.1", "admin", rightPassword)) // blocked is blocked
	got = append(got, l.login("192.0.2.2", "admin", rightPassword)) // another address
	for range 3 {
		got = append(got, l.login("192.0.2.2", "admin", "typo")) // its success was given back
	}
	got = append(got, l.login("192.0.2.2", "admin", "typo"))
	want := []int{200, 200, 200, 429, 429, 302, 200, 200, 200, 429}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	if a.retryAfter != "120" || strings.Count(a.body, "\n") != 1 || !strings.Contains(a.body, "429 too many login attempts for this address: 3 failed within 1m0s, the limit is 3; retry in 120 s (http.login_throttle.per_address)") {
		t.Errorf("refusal: Retry-After %q, body %q", a.retryAfter, a.body)
	}
	if n := l.wp.triedSoFar(); n != 7 {
		t.Errorf("the node saw %d passwords, want 7 (refused ones never reach it)", n)
	}
	logs := l.logs.String()
	if !strings.Contains(logs, `msg="login throttled" by=address client=192.0.2.1 user=admin count=4`) {
		t.Errorf("no block event in the log:\n%s", logs)
	}
	if strings.Contains(logs, "guess") || strings.Contains(logs, "typo") || strings.Contains(logs, rightPassword) {
		t.Errorf("a password is in the log:\n%s", logs)
	}
}

// TestLoginThrottlePerUser: a user name is limited across addresses, but
// not where its user logged in.
func TestLoginThrottlePerUser(t *testing.T) {
	l := newLoginEdge(t, throttleSpec(100, 2))
	got := []int{l.login("203.0.113.10", "admin", rightPassword)}
	for i := range 3 {
		got = append(got, l.login(fmt.Sprintf("198.51.100.%d", i+1), "Admin", "guess"))
	}
	got = append(got, l.login("203.0.113.10", "admin", rightPassword), l.login("198.51.100.9", "editor", "guess"))
	want := []int{302, 200, 200, 429, 302, 200}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
}

func rpcCall(method string, params ...string) string {
	var b strings.Builder
	b.WriteString("<?xml version=\"1.0\"?>\n<methodCall><methodName>" + method + "</methodName><params>")
	for _, p := range params {
		b.WriteString("<param><value><string>" + p + "</string></value></param>")
	}
	b.WriteString("</params></methodCall>")
	return b.String()
}

func rpcMulticall(n int, user string) string {
	var b strings.Builder
	b.WriteString("<?xml version=\"1.0\"?>\n<methodCall><methodName>system.multicall</methodName><params><param><value><array><data>")
	for i := range n {
		fmt.Fprintf(&b, "<value><struct><member><name>methodName</name><value><string>wp.getUsersBlogs</string></value></member>"+
			"<member><name>params</name><value><array><data><value><string>%s</string></value><value><string>pw:%d</string></value></data></array></value></member></struct></value>", user, i)
	}
	b.WriteString("</data></array></value></param></params></methodCall>")
	return b.String()
}

// TestLoginThrottleXMLRPC: every call of a multicall counts, so one
// request cannot carry more guesses than the limit; a multicall too large
// to count is refused; a call that logs in is given back.
func TestLoginThrottleXMLRPC(t *testing.T) {
	l := newLoginEdge(t, throttleSpec(10, 100))
	const xml = "text/xml"
	big := l.do("192.0.2.1", "POST", "/xmlrpc.php", xml, rpcMulticall(200, "admin")) // just under MaxPrefix
	small := l.do("192.0.2.2", "POST", "/xmlrpc.php", xml, rpcMulticall(8, "admin"))
	over := l.do("192.0.2.2", "POST", "/xmlrpc.php", xml, rpcMulticall(3, "admin"))
	huge := l.do("192.0.2.3", "POST", "/xmlrpc.php", xml, rpcMulticall(1000, "admin"))
	mixed := l.do("192.0.2.4", "POST", "/xmlrpc.php", xml, strings.Replace(rpcMulticall(3, "admin"), "admin", "jane", 1))
	var single []int
	for range 3 {
		single = append(single, l.do("192.0.2.5", "POST", "/xmlrpc.php", xml, rpcCall("wp.getUsersBlogs", "admin", "pw:"+rightPassword)).status)
	}
	for range 10 {
		single = append(single, l.do("192.0.2.5", "POST", "/xmlrpc.php", xml, rpcCall("wp.getUsersBlogs", "admin", "pw:no")).status)
	}
	single = append(single, l.do("192.0.2.5", "POST", "/xmlrpc.php", xml, rpcCall("wp.getUsersBlogs", "admin", "pw:no")).status)
	pingback := l.do("192.0.2.1", "POST", "/xmlrpc.php", xml, rpcCall("pingback.ping", "http://a.test/", "http://b.test/"))

	got := []int{big.status, small.status, over.status, huge.status, mixed.status, pingback.status}
	if diff := cmp.Diff([]int{429, 200, 429, 413, 400, 200}, got); diff != "" {
		t.Errorf("statuses: multicall of 200, of 8, 3 more, too large, mixed users, pingback from a blocked address (-want +got):\n%s", diff)
	}
	wantSingle := []int{200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 429}
	if diff := cmp.Diff(wantSingle, single); diff != "" {
		t.Errorf("single calls: 3 logins, 10 faults, 1 more (-want +got):\n%s", diff)
	}
	if n := l.wp.triedSoFar(); n != 8+3+10 {
		t.Errorf("the node saw %d passwords, want %d", n, 8+3+10)
	}
	if !strings.Contains(huge.body, "system.multicall larger than the edge reads") {
		t.Errorf("413 body %q", huge.body)
	}
}

// TestLoginThrottleBasic: application-password failures are known from the
// node's 401; over the limit the next request is refused.
func TestLoginThrottleBasic(t *testing.T) {
	l := newLoginEdge(t, throttleSpec(3, 100))
	basic := func(client, pw string) int {
		req := httptest.NewRequest("GET", "/", nil)
		req.SetBasicAuth("admin", pw)
		return l.do(client, "GET", "/wp-json/wp/v2/users/me", "", "", "Authorization", req.Header.Get("Authorization")).status
	}
	var got []int
	for range 5 {
		got = append(got, basic("192.0.2.1", rightPassword)) // successes are not counted
	}
	for range 4 {
		got = append(got, basic("192.0.2.1", "guess"))
	}
	got = append(got, basic("192.0.2.2", rightPassword))
	if diff := cmp.Diff([]int{200, 200, 200, 200, 200, 401, 401, 401, 429, 200}, got); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
}

// TestLoginBodyReachesNode: the edge reads only the start of a login body,
// and the node still gets all of it, byte for byte, however it is sent.
func TestLoginBodyReachesNode(t *testing.T) {
	l := newLoginEdge(t, throttleSpec(100, 100))
	long := "log=admin&pwd=x&pad=" + strings.Repeat("p", 3*throttle.MaxPrefix)
	single := rpcCall("metaWeblog.newPost", "1", "admin", "pw:x", strings.Repeat("é", throttle.MaxPrefix))
	for _, tt := range []struct {
		name, path, body string
		chunked          bool
	}{
		{"short form", "/wp-login.php", "log=admin&pwd=x", false},
		{"form longer than the prefix", "/wp-login.php", long, false},
		{"chunked form", "/wp-login.php", long, true},
		{"xmlrpc call longer than the prefix", "/xmlrpc.php", single, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader = strings.NewReader(tt.body)
			if tt.chunked {
				body = io.MultiReader(body) // unknown length: chunked
			}
			req, _ := http.NewRequest("POST", l.url+tt.path, body)
			req.Header.Set("X-Forwarded-For", "192.0.2.1")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			l.wp.mu.Lock()
			got := l.wp.lastBody
			l.wp.mu.Unlock()
			if resp.StatusCode != 200 || got != sha256.Sum256([]byte(tt.body)) {
				t.Errorf("status %d; the node's body differs from the one sent: %v", resp.StatusCode, got != sha256.Sum256([]byte(tt.body)))
			}
		})
	}
}

func TestLoginMetricsAndStatus(t *testing.T) {
	l := newLoginEdge(t, throttleSpec(1, 100))
	l.login("192.0.2.1", "admin", "guess")
	l.login("192.0.2.1", "admin", "guess")
	b := scrape(t, l.e)
	for _, line := range []string{
		`scalepress_edge_login_requests_total{edge="edge-1",kind="wp-login"} 2`,
		`scalepress_edge_login_attempts_total{edge="edge-1"} 1`,
		`scalepress_edge_login_throttled_total{by="address",edge="edge-1"} 1`,
		`scalepress_edge_login_blocks_total{by="address",edge="edge-1"} 1`,
		`scalepress_edge_login_blocked{by="address",edge="edge-1"} 1`,
		`scalepress_edge_login_tracked{edge="edge-1",table="address"} 1`,
	} {
		if !strings.Contains(b, line+"\n") {
			t.Errorf("metrics lack %q", line)
		}
	}
	st := l.e.Status()
	if st.Logins == nil || len(st.Logins.Recent) != 1 || st.Logins.Recent[0].User != "admin" {
		t.Errorf("status login_throttle = %+v", st.Logins)
	}
}

func TestLoginThrottleOff(t *testing.T) {
	l := newLoginEdge(t, nil)
	for range 50 {
		if s := l.login("192.0.2.1", "admin", "guess"); s != 200 {
			t.Fatalf("status %d with throttling off", s)
		}
	}
}

// TestLoginBlocksReported: the blocks that start are sent to the
// controller's event log with the edge's token, at most
// api.MaxEdgeEvents one by one and the rest counted.
func TestLoginBlocksReported(t *testing.T) {
	got := make(chan api.EdgeEvents, 4)
	ctl := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev api.EdgeEvents
		if r.Header.Get("Authorization") != "Bearer edge-1.token" || json.NewDecoder(r.Body).Decode(&ev) != nil {
			http.Error(w, "no", http.StatusBadRequest)
			return
		}
		got <- ev
	}))
	t.Cleanup(ctl.Close)
	l := newLoginEdge(t, throttleSpec(1, 100))
	l.e.spec.EventsURL, l.e.spec.ControlToken = ctl.URL, "edge-1.token"
	l.e.logins.reportEvery = 10 * time.Millisecond
	for i := range api.MaxEdgeEvents + 3 {
		client := fmt.Sprintf("192.0.2.%d", i+1)
		l.login(client, "admin", "guess")
		l.login(client, "admin", "guess")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.e.reportLogins(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	ev := <-got
	if len(ev.LoginBlocks) != api.MaxEdgeEvents || ev.More != 3 {
		t.Fatalf("report: %d blocks, %d more; want %d and 3", len(ev.LoginBlocks), ev.More, api.MaxEdgeEvents)
	}
	want := api.LoginBlock{By: "address", Address: "192.0.2.1", User: "admin", Count: 2}
	first := ev.LoginBlocks[0]
	first.Time, first.Until = time.Time{}, time.Time{}
	if diff := cmp.Diff(want, first); diff != "" {
		t.Errorf("first block (-want +got):\n%s", diff)
	}
}
