package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// browser is a user with a cookie jar.
type browser struct {
	t      *testing.T
	client *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, client: &http.Client{Jar: jar, Timeout: 60 * time.Second}}
}

type page struct {
	status int
	header http.Header
	body   string
	url    string
}

func (b *browser) do(method, u string, body io.Reader, hdr map[string]string) page {
	b.t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		b.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatalf("%s %s: read body: %v", method, u, err)
	}
	return page{status: resp.StatusCode, header: resp.Header, body: string(data), url: resp.Request.URL.String()}
}

func (b *browser) get(u string) page { return b.do("GET", u, nil, nil) }

// login signs in through wp-login.php like a browser does.
func (b *browser) login(site, user, password string) page {
	b.t.Helper()
	b.get(site + "/wp-login.php") // sets the test cookie
	form := url.Values{
		"log": {user}, "pwd": {password}, "wp-submit": {"Log In"},
		"redirect_to": {site + "/wp-admin/"}, "testcookie": {"1"},
	}
	return b.do("POST", site+"/wp-login.php", strings.NewReader(form.Encode()),
		map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
}

// restNonce asks WordPress for a REST nonce for the logged-in user.
func (b *browser) restNonce(site string) string {
	b.t.Helper()
	p := b.get(site + "/wp-admin/admin-ajax.php?action=rest-nonce")
	if p.status != 200 || !regexp.MustCompile(`^[0-9a-f]{10}$`).MatchString(strings.TrimSpace(p.body)) {
		b.t.Fatalf("rest-nonce: %d %q", p.status, p.body)
	}
	return strings.TrimSpace(p.body)
}

type post struct {
	ID   int    `json:"id"`
	Link string `json:"link"`
}

// publish creates a published post through the REST API (cookie + nonce).
func (b *browser) publish(site, nonce, title, content string) post {
	b.t.Helper()
	body, _ := json.Marshal(map[string]string{"title": title, "content": content, "status": "publish"})
	p := b.do("POST", site+"/wp-json/wp/v2/posts", strings.NewReader(string(body)),
		map[string]string{"Content-Type": "application/json", "X-WP-Nonce": nonce})
	if p.status != http.StatusCreated {
		b.t.Fatalf("publish: status %d: %.500s", p.status, p.body)
	}
	var out post
	if err := json.Unmarshal([]byte(p.body), &out); err != nil || out.ID == 0 {
		b.t.Fatalf("publish: bad answer %v: %.300s", err, p.body)
	}
	return out
}

func mustContain(t *testing.T, what string, p page, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(p.body, s) {
			t.Fatalf("%s (status %d, %s) does not contain %q; body starts %.400q", what, p.status, p.url, s, p.body)
		}
	}
}

func uniqueTitle(prefix string) string {
	return fmt.Sprintf("%s %d", prefix, time.Now().UnixNano())
}
