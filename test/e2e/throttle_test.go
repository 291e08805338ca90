package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Login throttling at the edge (docs/adr/0014-login-throttling.md) against
// real WordPress.
//
// Block 70: the edge 127.70.0.1:8080; clients send from 127.70.9.N.
const throttleBlock = 70

// loginClient is a browser (cookie jar: wp-login.php wants its test
// cookie) whose connections come from src, and which does not follow
// redirects, so that a login's 302 is seen.
func loginClient(src string) *http.Client {
	jar, _ := cookiejar.New(nil)
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 2 * time.Second}
	return &http.Client{Jar: jar, Timeout: 60 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

type loginAnswer struct {
	status     int
	retryAfter string
	body       string
	loggedIn   bool // a wordpress_logged_in_ cookie was set
}

func postLogin(t *testing.T, c *http.Client, site, user, password string) loginAnswer {
	t.Helper()
	if resp, err := c.Get(site + "/wp-login.php"); err == nil { // the test cookie
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	form := url.Values{"log": {user}, "pwd": {password}, "wp-submit": {"Log In"}, "redirect_to": {site + "/wp-admin/"}, "testcookie": {"1"}}
	resp, err := c.PostForm(site+"/wp-login.php", form)
	if err != nil {
		t.Fatalf("POST wp-login.php: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := loginAnswer{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), body: string(b)}
	for _, ck := range resp.Cookies() {
		if strings.HasPrefix(ck.Name, "wordpress_logged_in_") {
			a.loggedIn = true
		}
	}
	return a
}

// xmlrpcMulticall is system.multicall of n wp.getUsersBlogs calls with
// wrong passwords for user.
func xmlrpcMulticall(n int, user string) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0"?><methodCall><methodName>system.multicall</methodName><params><param><value><array><data>`)
	for i := range n {
		fmt.Fprintf(&b, `<value><struct><member><name>methodName</name><value><string>wp.getUsersBlogs</string></value></member>`+
			`<member><name>params</name><value><array><data><value><string>%s</string></value><value><string>guess-%d</string></value></data></array></value></member></struct></value>`, user, i)
	}
	b.WriteString(`</data></array></value></param></params></methodCall>`)
	return b.String()
}

func TestLoginThrottle(t *testing.T) {
	const perAddress = 4
	s := newStack(t, throttleBlock, 1)
	cfg := stackConfig(throttleBlock, 1) + fmt.Sprintf(`http:
  login_throttle:
    per_address: %d
    per_user: 1000
    window: 20s
    block: 20s
`, perAddress)
	if err := os.WriteFile(s.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	s.up(t)
	password := adminPassword(t, s)
	attacker := loginClient("127.70.9.1")

	t.Run("the N+1th wrong password in the window gets 429", func(t *testing.T) {
		for i := range perAddress {
			a := postLogin(t, attacker, s.site, "admin", fmt.Sprintf("wrong-%d", i))
			if a.status != http.StatusOK || a.loggedIn || !strings.Contains(a.body, "login_error") {
				t.Fatalf("wrong password %d: status %d, logged in %v; want WordPress's form with its error (%.300q)", i+1, a.status, a.loggedIn, a.body)
			}
		}
		a := postLogin(t, attacker, s.site, "admin", "wrong-again")
		if a.status != http.StatusTooManyRequests || !strings.HasPrefix(a.body, "429 too many login attempts") {
			t.Fatalf("wrong password %d: status %d %.300q, want 429 from the edge", perAddress+1, a.status, a.body)
		}
		if n, err := strconv.Atoi(a.retryAfter); err != nil || n < 1 || n > 20 {
			t.Errorf("Retry-After %q, want 1-20 s", a.retryAfter)
		}
		if a := postLogin(t, attacker, s.site, "admin", password); a.status != http.StatusTooManyRequests || a.loggedIn {
			t.Errorf("right password from the blocked address: status %d, logged in %v; want 429", a.status, a.loggedIn)
		}
	})

	t.Run("another address is not affected", func(t *testing.T) {
		a := postLogin(t, loginClient("127.70.9.2"), s.site, "admin", password)
		if a.status != http.StatusFound || !a.loggedIn {
			t.Errorf("login from 127.70.9.2: status %d, logged in %v; want 302 with the login cookie (%.300q)", a.status, a.loggedIn, a.body)
		}
	})

	t.Run("xmlrpc multicall: each call counts", func(t *testing.T) {
		c := loginClient("127.70.9.3")
		post := func(body string) (int, string) {
			resp, err := c.Post(s.site+"/xmlrpc.php", "text/xml", strings.NewReader(body))
			if err != nil {
				t.Fatalf("POST xmlrpc.php: %v", err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		status, body := post(xmlrpcMulticall(perAddress-1, "admin"))
		if status != http.StatusOK || strings.Count(body, "<name>faultCode</name>") != perAddress-1 {
			t.Fatalf("multicall of %d wrong passwords: status %d, want 200 with a fault each (%.300q)", perAddress-1, status, body)
		}
		status, body = post(xmlrpcMulticall(200, "admin"))
		if status != http.StatusTooManyRequests {
			t.Errorf("multicall of 200 guesses: status %d (%d faults from WordPress), want 429 before PHP", status, strings.Count(body, "<name>faultCode</name>"))
		}
		status, body = post(xmlrpcMulticall(2, "admin"))
		if status != http.StatusTooManyRequests {
			t.Errorf("multicall of 2 more (%d counted of %d): status %d %.200q, want 429", perAddress-1, perAddress, status, body)
		}
	})

	t.Run("metrics count the blocks", func(t *testing.T) {
		resp, err := http.Get(s.site + "/_scalepress/edge/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for _, line := range []string{
			`scalepress_edge_login_blocks_total{by="address",edge="edge-1"} 2`,
			`scalepress_edge_login_throttled_total{by="address",edge="edge-1"} 4`,
		} {
			if !strings.Contains(string(b), line+"\n") {
				t.Errorf("metrics lack %q", line)
			}
		}
	})

	t.Run("the blocks are events, without a password", func(t *testing.T) {
		// The edge reports every 10 s; the block below outlasts that.
		deadline := time.Now().Add(30 * time.Second)
		var ev result
		for time.Now().Before(deadline) {
			if ev = s.cli(t, "events"); strings.Contains(ev.stdout, "login attempts for address 127.70.9.3") {
				break
			}
			time.Sleep(time.Second)
		}
		for _, want := range []string{"login attempts for address 127.70.9.1 blocked", "after 5 failures", "login attempts for address 127.70.9.3 blocked"} {
			if !strings.Contains(ev.stdout, want) {
				t.Errorf("scalepress events does not say %q:\n%s", want, ev.stdout)
			}
		}
		if strings.Contains(ev.stdout, "wrong-") || strings.Contains(ev.stdout, "guess-") || strings.Contains(ev.stdout, password) {
			t.Errorf("a password is in the events:\n%s", ev.stdout)
		}
		logs, _ := filepath.Glob(filepath.Join(s.dir, "logs", "*.log"))
		for _, l := range logs {
			b, _ := os.ReadFile(l)
			if strings.Contains(string(b), "wrong-") || strings.Contains(string(b), "guess-1") || strings.Contains(string(b), password) {
				t.Errorf("a password is in %s", l)
			}
		}
		if b, _ := os.ReadFile(filepath.Join(s.dir, "logs", "edge-1.log")); !strings.Contains(string(b), `"login throttled"`) && !strings.Contains(string(b), "login throttled") {
			t.Errorf("the edge's log has no block")
		}
	})

	t.Run("the right password works after the block", func(t *testing.T) {
		a := postLogin(t, attacker, s.site, "admin", "wrong-again")
		wait, _ := strconv.Atoi(a.retryAfter)
		if a.status != http.StatusTooManyRequests || wait < 1 {
			t.Fatalf("still blocked? status %d, Retry-After %q", a.status, a.retryAfter)
		}
		time.Sleep(time.Duration(wait)*time.Second + 500*time.Millisecond) // the block is the edge's clock, not ours
		if a := postLogin(t, attacker, s.site, "admin", password); a.status != http.StatusFound || !a.loggedIn {
			t.Errorf("right password after the block: status %d, logged in %v (%.300q)", a.status, a.loggedIn, a.body)
		}
	})
}
