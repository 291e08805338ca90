package controller

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeNode answers each path with its status; /?p=1 redirects (same site)
// to /hello/.
func fakeNode(t *testing.T, status map[string]int) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host != "www.example.test" {
			http.Error(w, "wrong host "+r.Host, http.StatusMisdirectedRequest)
			return
		}
		p := r.URL.RequestURI()
		if p == "/?p=1" {
			http.Redirect(w, r, "http://www.example.test/hello/", http.StatusMovedPermanently)
			return
		}
		code := status[p]
		if code == 0 {
			code = 200
		}
		w.WriteHeader(code)
		if code == 500 {
			w.Write([]byte("<html><body><p>There has been a critical error on this website.</p></body></html>"))
		}
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestSmokeCheck(t *testing.T) {
	paths := []string{"/", "/?p=1", "/wp-login.php", "/?rest_route=/"}
	live := fakeNode(t, nil)
	// How long a GET took is injected: the live node 100 ms for every
	// path, the canaries by path.
	took := map[string]map[string]time.Duration{}
	get := func(ctx context.Context, addr, host, path string) (int, time.Duration, string, error) {
		code, _, body, err := fetch(ctx, addr, host, path)
		d := 100 * time.Millisecond
		if m, ok := took[addr]; ok {
			d = m[path]
		}
		return code, d, body, err
	}
	slow := fakeNode(t, nil)
	took[slow] = map[string]time.Duration{"/": canarySlowFactor*100*time.Millisecond + canarySlack + time.Millisecond, "/wp-login.php": canarySlowFactor*100*time.Millisecond + canarySlack}
	logDir := t.TempDir()
	fatalLog := filepath.Join(logDir, "fatal.log")
	os.WriteFile(fatalLog, []byte("NOTICE: PHP message: PHP Warning:  x\nNOTICE: PHP message: PHP Fatal error:  Uncaught Error: Call to undefined function boom() in /docroot/wp-includes/general-template.php:5\n"), 0o644)
	cleanLog := filepath.Join(logDir, "clean.log")
	os.WriteFile(cleanLog, []byte("NOTICE: ready to handle connections\nNOTICE: PHP message: PHP Warning:  y\n"), 0o644)
	tests := []struct {
		name   string
		canary string
		logs   []string
		want   string // "" = passes
	}{
		{"healthy", fakeNode(t, nil), []string{cleanLog, filepath.Join(logDir, "missing.log")}, ""},
		{"a 500", fakeNode(t, map[string]int{"/wp-login.php": 500}), []string{cleanLog}, "GET /wp-login.php: status 500 There has been a critical error on this website."},
		{"a redirect to a 404", fakeNode(t, map[string]int{"/hello/": 404}), []string{cleanLog}, "GET /?p=1: status 404"},
		{"a fatal in the log", fakeNode(t, nil), []string{fatalLog}, "PHP Fatal error: Uncaught Error: Call to undefined function boom()"},
		{"too slow", slow, []string{cleanLog}, "GET / took 901ms, more than 900ms (the live release: 100ms)"},
		{"down", "127.0.0.1:1", nil, "GET /: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := smokeCheck(context.Background(), get, tt.canary, live, "www.example.test", paths, tt.logs)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("smokeCheck = %v, want it to pass", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("smokeCheck = %v, want it to say %q", err, tt.want)
			}
		})
	}
}
