package node

import (
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/scalepress/scalepress/internal/api"
)

func TestParamsTrustOnlyTheEdge(t *testing.T) {
	a := &Agent{spec: api.NodeSpec{Docroot: "/srv/site"}, trusted: []netip.Addr{netip.MustParseAddr("127.0.0.1")}}
	tests := []struct {
		name       string
		peer       string
		xff        string
		host       string
		wantVia    bool
		wantRemote string // "" = not set by the agent (Forward uses the peer)
		wantPort   string
	}{
		{"from the edge", "127.0.0.1:5555", "203.0.113.9", "site.test:8080", true, "203.0.113.9", "8080"},
		{"edge appends the last hop", "127.0.0.1:5555", "198.51.100.1, 203.0.113.9", "site.test", true, "203.0.113.9", "80"},
		{"not an address", "127.0.0.1:5555", "evil", "site.test", true, "", "80"},
		{"direct client cannot claim", "10.9.9.9:4444", "203.0.113.9", "site.test:8080", false, "", "8080"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "http://"+tt.host+"/hello/", nil)
			r.RemoteAddr = tt.peer
			r.Header.Set("X-Forwarded-For", tt.xff)
			r.Header.Set("X-Forwarded-Proto", "https")
			p := a.params(r, route{kind: routePHP, script: "/index.php"})
			if got := p["SCALEPRESS_VIA_EDGE"] == "1"; got != tt.wantVia {
				t.Errorf("SCALEPRESS_VIA_EDGE = %v, want %v", got, tt.wantVia)
			}
			if got := p["REMOTE_ADDR"]; got != tt.wantRemote {
				t.Errorf("REMOTE_ADDR = %q, want %q", got, tt.wantRemote)
			}
			if got := p["SERVER_PORT"]; got != tt.wantPort {
				t.Errorf("SERVER_PORT = %q, want %q", got, tt.wantPort)
			}
			if p["SCRIPT_FILENAME"] != "/srv/site/index.php" || p["SCRIPT_NAME"] != "/index.php" {
				t.Errorf("script params %q %q", p["SCRIPT_FILENAME"], p["SCRIPT_NAME"])
			}
		})
	}
}
