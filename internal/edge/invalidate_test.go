package edge

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scalepress/scalepress/internal/api"
)

// TestUnsafeMethodInvalidates: through the edge, a non-error answer to an
// unsafe method removes the URL, and the URL its Location names on the
// same host, from the cache (RFC 9111 §4.4); an error answer removes
// nothing. CDN-Cache-Control, meant for this cache (RFC 9213), never
// reaches the client.
func TestUnsafeMethodInvalidates(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("CDN-Cache-Control", "max-age=600")
		switch {
		case r.Method == "GET":
			w.Header().Set("Content-Type", "text/html; charset=UTF-8")
			io.WriteString(w, "<html>page</html>")
		case r.URL.Path == "/forbidden/":
			w.WriteHeader(http.StatusForbidden)
		case r.URL.Path == "/wp-comments-post.php":
			w.Header().Set("Location", "http://"+r.Host+"/hello/#comment-1")
			w.WriteHeader(http.StatusFound)
		default:
			io.WriteString(w, "posted")
		}
	}))
	defer origin.Close()
	s := newEdgeSpec(t, api.EdgeSpec{ID: "edge-1", Addr: "127.0.0.1:0", Cache: &api.CacheSpec{Enabled: true, DefaultTTL: "1m"}}, origin)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(method, path string) string {
		var body io.Reader
		if method != "GET" {
			body = strings.NewReader("comment=hi")
		}
		req, _ := http.NewRequest(method, s.URL+path, body)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if v := resp.Header.Get("CDN-Cache-Control"); v != "" {
			t.Errorf("%s %s: CDN-Cache-Control %q reached the client", method, path, v)
		}
		return method + " " + path + " " + resp.Status + " " + resp.Header.Get(api.HeaderCache)
	}
	var got []string
	for _, step := range []struct{ method, path string }{
		{"GET", "/hello/"}, {"GET", "/hello/"},
		{"POST", "/hello/"}, {"GET", "/hello/"}, {"GET", "/hello/"},
		{"POST", "/forbidden/"}, {"GET", "/hello/"},
		{"PUT", "/forbidden/"}, {"GET", "/hello/"},
		{"POST", "/wp-comments-post.php"}, {"GET", "/hello/"},
		{"DELETE", "/hello/"}, {"GET", "/hello/"},
		{"OPTIONS", "/hello/"}, {"GET", "/hello/"},
	} {
		got = append(got, do(step.method, step.path))
	}
	want := []string{
		"GET /hello/ 200 OK MISS", "GET /hello/ 200 OK HIT",
		"POST /hello/ 200 OK BYPASS", "GET /hello/ 200 OK MISS", "GET /hello/ 200 OK HIT",
		"POST /forbidden/ 403 Forbidden BYPASS", "GET /hello/ 200 OK HIT",
		"PUT /forbidden/ 403 Forbidden BYPASS", "GET /hello/ 200 OK HIT",
		"POST /wp-comments-post.php 302 Found BYPASS", "GET /hello/ 200 OK MISS",
		"DELETE /hello/ 200 OK BYPASS", "GET /hello/ 200 OK MISS",
		"OPTIONS /hello/ 200 OK BYPASS", "GET /hello/ 200 OK HIT",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("requests mismatch (-want +got):\n%s", diff)
	}
}
