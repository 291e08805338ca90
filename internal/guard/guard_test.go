package guard

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scalepress/scalepress/internal/token"
)

func TestAllowedHosts(t *testing.T) {
	tests := []struct {
		name, addr string
		extra      []string
		want       []string
	}{
		{"loopback", "127.0.0.1:9090", nil, []string{"127.0.0.1:9090", "localhost:9090", "[::1]:9090"}},
		{"other loopback", "127.42.0.1:9090", nil, []string{"127.42.0.1:9090", "localhost:9090", "127.0.0.1:9090", "[::1]:9090"}},
		{"public", "10.0.0.5:9090", []string{"ctl.example:9090"}, []string{"10.0.0.5:9090", "ctl.example:9090"}},
		{"unspecified", ":9090", nil, []string{":9090", "localhost:9090", "127.0.0.1:9090", "[::1]:9090"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, AllowedHosts(tt.addr, tt.extra...)); d != "" {
				t.Fatal(d)
			}
		})
	}
}

func TestHosts(t *testing.T) {
	h := Hosts(AllowedHosts("127.0.4.1:8080"), slog.New(slog.DiscardHandler), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	for host, want := range map[string]int{
		"127.0.4.1:8080":        200,
		"LOCALHOST:8080":        200,
		"attacker.example:8080": 403, // DNS rebinding: the page's own name
		"127.0.4.1":             403,
		"":                      403,
	} {
		r := httptest.NewRequest("GET", "/v1/status", nil)
		r.Host = host
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != want {
			t.Errorf("Host %q: %d, want %d", host, w.Code, want)
		}
		if want == 403 && !strings.Contains(w.Body.String(), "not this server's address") {
			t.Errorf("Host %q: reason %q", host, w.Body.String())
		}
	}
}

func TestAuthenticate(t *testing.T) {
	k := token.NewKey().Derive(token.Files)
	r := httptest.NewRequest("POST", "/", nil)
	if _, err := Authenticate(k, r); err != ErrNoToken {
		t.Fatalf("no header: %v", err)
	}
	token.SetBearer(r.Header, "node-1.AAAA")
	if _, err := Authenticate(k, r); err != ErrBadToken {
		t.Fatalf("forged: %v", err)
	}
	token.SetBearer(r.Header, k.Issue("node-1"))
	if id, err := Authenticate(k, r); err != nil || id != "node-1" {
		t.Fatalf("good token: %q %v", id, err)
	}
	w := httptest.NewRecorder()
	Unauthorized(w, r, nil, "files", ErrBadToken)
	if w.Code != 401 || w.Header().Get("WWW-Authenticate") == "" {
		t.Fatalf("Unauthorized: %d %v", w.Code, w.Header())
	}
}

func TestContentType(t *testing.T) {
	for ct, ok := range map[string]bool{
		"application/json":                  true,
		"application/json; charset=utf-8":   true,
		"text/plain":                        false, // a cross-site form can send this
		"application/x-www-form-urlencoded": false,
		"":                                  false,
		"application/jsonx":                 false,
	} {
		r := httptest.NewRequest("POST", "/", nil)
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		if err := ContentType(r, "application/json"); (err == nil) != ok {
			t.Errorf("%q: err %v, want ok=%v", ct, err, ok)
		}
	}
}
