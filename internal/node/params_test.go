package node

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/forward"
	"github.com/scalepress/scalepress/internal/token"
)

func TestParamsBelieveOnlySignedForwarding(t *testing.T) {
	key := token.NewKey().Derive(token.Forward)
	v, err := forward.NewVerifier(key)
	if err != nil {
		t.Fatal(err)
	}
	edge, _ := forward.NewSigner("edge-1", key)
	stranger, _ := forward.NewSigner("edge-1", token.NewKey().Derive(token.Forward))
	a := &Agent{spec: api.NodeSpec{Docroot: "/srv/site"}, edges: v, logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	type want struct {
		Via, Remote, HTTPS, Port string
		Headers                  []string // forwarded headers left for PHP (HTTP_X_FORWARDED_*)
	}
	sign := func(s *forward.Signer, at time.Time) func(r *http.Request) {
		return func(r *http.Request) { s.Sign(r.Header, r.Method, r.Host, r.RequestURI, at) }
	}
	now := time.Now()
	tests := []struct {
		name   string
		xff    string
		host   string
		sign   func(r *http.Request)
		change func(r *http.Request) // after signing
		want   want
	}{
		{"signed by the edge", "203.0.113.9", "site.test:8080", sign(edge, now), nil,
			want{"1", "203.0.113.9", "on", "8080", []string{"X-Forwarded-For", "X-Forwarded-Proto"}}},
		{"the edge's client is the last entry", "198.51.100.1, 203.0.113.9", "site.test", sign(edge, now), nil,
			want{"1", "203.0.113.9", "on", "80", []string{"X-Forwarded-For", "X-Forwarded-Proto"}}},
		{"not an address", "evil", "site.test", sign(edge, now), nil,
			want{"1", "", "on", "80", []string{"X-Forwarded-For", "X-Forwarded-Proto"}}},
		{"unsigned", "203.0.113.9", "site.test:8080", nil, nil, want{"", "", "", "8080", nil}},
		{"another key", "203.0.113.9", "site.test", sign(stranger, now), nil, want{"", "", "", "80", nil}},
		{"replayed after 2 minutes", "203.0.113.9", "site.test", sign(edge, now.Add(-2*time.Minute)), nil, want{"", "", "", "80", nil}},
		{"client address changed", "203.0.113.9", "site.test", sign(edge, now),
			func(r *http.Request) { r.Header.Set("X-Forwarded-For", "192.0.2.66") }, want{"", "", "", "80", nil}},
		{"proto changed", "203.0.113.9", "site.test", sign(edge, now),
			func(r *http.Request) { r.Header.Set("X-Forwarded-Proto", "http") }, want{"", "", "", "80", nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "http://"+tt.host+"/hello/", nil)
			r.RemoteAddr = "127.0.0.1:5555"
			r.Header.Set("X-Forwarded-For", tt.xff)
			r.Header.Set("X-Forwarded-Proto", "https")
			r.Header.Set("X-Real-Ip", "192.0.2.1")
			if tt.sign != nil {
				tt.sign(r)
			}
			if tt.change != nil {
				tt.change(r)
			}
			fw := a.forwarded(r)
			p := a.params(r, route{kind: routePHP, script: "/index.php"}, "/srv/site/index.php", fw)
			got := want{Via: p["SCALEPRESS_VIA_EDGE"], Remote: p["REMOTE_ADDR"], HTTPS: p["HTTPS"], Port: p["SERVER_PORT"]}
			for _, h := range []string{"X-Forwarded-For", "X-Forwarded-Proto", "X-Real-Ip", api.HeaderEdge} {
				if r.Header.Get(h) != "" && h != "X-Real-Ip" && h != api.HeaderEdge {
					got.Headers = append(got.Headers, h)
				}
			}
			if r.Header.Get(api.HeaderEdge) != "" {
				t.Errorf("the signature is passed to PHP")
			}
			if (r.Header.Get("X-Real-Ip") != "") != (tt.want.Via == "1") {
				t.Errorf("X-Real-Ip kept = %v for a request believed = %v", r.Header.Get("X-Real-Ip") != "", tt.want.Via == "1")
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if p["SCRIPT_FILENAME"] != "/srv/site/index.php" || p["SCRIPT_NAME"] != "/index.php" {
				t.Errorf("script params %q %q", p["SCRIPT_FILENAME"], p["SCRIPT_NAME"])
			}
		})
	}
}
