package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/forward"
	"github.com/scalepress/scalepress/internal/token"
)

// The request path's defences (docs/adr/0009-trust-model.md): slow request
// bodies hold no PHP worker, one client cannot take every worker, names no
// node serves are never served by another way, PHP never runs from
// uploads, and a node believes forwarded headers only from an edge.
//
// Block 83: the edge 127.83.0.1:8080, nodes 127.83.1.N; test clients send
// from 127.83.9.N (every 127/8 address is the loopback).
const reqBlock = 83

var (
	reqAttacker = "127.83.9.1" // stalls bodies through the edge
	reqDirect   = "127.83.9.2" // stalls bodies directly at a node
	reqVisitor  = "127.83.9.3" // the one who must keep getting pages
	reqProxy    = "127.83.9.7" // a trusted front proxy
)

// probePHP prints what PHP believes about the request.
const probePHP = `<?php
header('Cache-Control: no-store');
header('Content-Type: application/json');
echo json_encode([
  'remote_addr' => $_SERVER['REMOTE_ADDR'] ?? '',
  'https' => $_SERVER['HTTPS'] ?? '',
  'xff' => $_SERVER['HTTP_X_FORWARDED_FOR'] ?? '',
  'xfp' => $_SERVER['HTTP_X_FORWARDED_PROTO'] ?? '',
  'via_edge' => $_SERVER['SCALEPRESS_VIA_EDGE'] ?? '',
  'signature' => $_SERVER['HTTP_X_SCALEPRESS_EDGE'] ?? '',
  'is_ssl' => false,
]);
`

type probe struct {
	RemoteAddr string `json:"remote_addr"`
	HTTPS      string `json:"https"`
	XFF        string `json:"xff"`
	XFP        string `json:"xfp"`
	ViaEdge    string `json:"via_edge"`
	Signature  string `json:"signature"`
}

// clientFrom is an HTTP client whose connections come from the loopback
// address src.
func clientFrom(src string, timeout time.Duration) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 2 * time.Second}
	return &http.Client{Timeout: timeout, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func TestRequestPath(t *testing.T) {
	s := newStack(t, reqBlock, 2)
	cfg := stackConfig(reqBlock, 2) + fmt.Sprintf(`http:
  body_timeout: 6s
  client_concurrency: 4
  trusted_proxies: [%s/32]
`, reqProxy)
	if err := os.WriteFile(s.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	s.up(t)
	st := s.status(t)
	if len(st.Nodes) != 2 {
		t.Fatalf("want 2 nodes, got %+v", st.Nodes)
	}
	site := strings.TrimPrefix(s.site, "http://")
	// Files every node has: a probe, PHP in uploads, links into uploads.
	for _, n := range st.Nodes {
		d := n.Docroot
		for name, body := range map[string]string{
			"scalepress-probe.php":                   probePHP,
			"wp-content/uploads/2026/probe-evil.php": "<?php echo 'RAN-FROM-UPLOADS';",
		} {
			p := filepath.Join(d, name)
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		for name, target := range map[string]string{
			"wp-content/plugins/evil-link.php":  "../uploads/2026/probe-evil.php",
			"wp-content/plugins/evil-dir":       "../uploads/2026",
			"wp-content/plugins/probe-link.php": "../../scalepress-probe.php",
		} {
			os.Remove(filepath.Join(d, name))
			if err := os.Symlink(target, filepath.Join(d, name)); err != nil {
				t.Fatal(err)
			}
		}
	}

	t.Run("denied names are never served", func(t *testing.T) {
		names := []string{"x.sql", "x.log", ".htaccess", "x.phtml", "wp-config.php~", "x.php.bak"}
		// On node 1 only: its filesync agent sends them to the files
		// role, node 2 does not have them yet (and the edge's fallback
		// would fetch them from files).
		for _, name := range names {
			p := filepath.Join(st.Nodes[0].Docroot, "wp-content/uploads/2026/denied", name)
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, []byte("<?php echo 'SECRET-SOURCE'; // dump"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		c := clientFrom(reqVisitor, 5*time.Second)
		for range 3 { // both nodes, and after files has them
			for _, name := range append(names, "never-existed.sql") {
				resp, err := c.Get(s.site + "/wp-content/uploads/2026/denied/" + name)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusForbidden || strings.Contains(string(b), "SECRET") {
					t.Errorf("GET uploads/%s through the edge: %d %q, want 403", name, resp.StatusCode, b)
				}
			}
			time.Sleep(time.Second)
		}
	})

	t.Run("php never runs from uploads", func(t *testing.T) {
		c := clientFrom(reqVisitor, 10*time.Second)
		for _, tt := range []struct {
			path string
			want int
		}{
			{"/wp-content/uploads/2026/probe-evil.php", http.StatusForbidden},
			{"/wp-content/plugins/evil-link.php", http.StatusForbidden},
			{"/wp-content/plugins/evil-dir/probe-evil.php", http.StatusForbidden},
			{"/wp-content/plugins/probe-link.php", http.StatusOK}, // a link outside uploads runs
		} {
			for range 2 { // both nodes
				resp, err := c.Get(s.site + tt.path)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tt.want || strings.Contains(string(b), "RAN-FROM-UPLOADS") {
					t.Errorf("GET %s: %d %q, want %d and nothing run", tt.path, resp.StatusCode, b, tt.want)
				}
			}
		}
	})

	t.Run("forwarded headers only from an edge", func(t *testing.T) {
		node := "http://" + st.Nodes[0].Addr
		rootHex, err := os.ReadFile(filepath.Join(s.dir, "secrets", "root-key"))
		if err != nil {
			t.Fatal(err)
		}
		root, err := token.ParseKey(string(rootHex))
		if err != nil {
			t.Fatal(err)
		}
		signer, _ := forward.NewSigner("edge-1", root.Derive(token.Forward))
		forged := map[string]string{"X-Forwarded-For": "192.0.2.66", "X-Forwarded-Proto": "https"}
		sign := func(at time.Time) func(*http.Request) {
			return func(r *http.Request) { signer.Sign(r.Header, r.Method, r.Host, r.URL.RequestURI(), at) }
		}
		notBelieved := probe{RemoteAddr: reqDirect}
		tests := []struct {
			name   string
			base   string
			from   string
			header map[string]string
			sign   func(*http.Request)
			change func(*http.Request) // after signing
			want   probe
		}{
			{"direct, forged", node, reqDirect, forged, nil, nil, notBelieved},
			{"direct, garbage signature", node, reqDirect, map[string]string{"X-Forwarded-For": "192.0.2.66", "X-Forwarded-Proto": "https", api.HeaderEdge: "edge-1 1800000000 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}, nil, nil, notBelieved},
			{"direct, signature replayed with another client", node, reqDirect, forged, sign(time.Now()),
				func(r *http.Request) { r.Header.Set("X-Forwarded-For", "198.51.100.1") }, notBelieved},
			{"direct, signature replayed on another URL", node, reqDirect, forged, sign(time.Now()),
				func(r *http.Request) { r.URL.RawQuery = "other" }, notBelieved},
			{"direct, signature two minutes old", node, reqDirect, forged, sign(time.Now().Add(-2 * time.Minute)), nil, notBelieved},
			{"direct, signed with the forward key", node, reqDirect, forged, sign(time.Now()), nil,
				probe{RemoteAddr: "192.0.2.66", HTTPS: "on", XFF: "192.0.2.66", XFP: "https", ViaEdge: "1"}},
			{"through the edge, forged", s.site, reqVisitor, forged, nil, nil,
				probe{RemoteAddr: reqVisitor, XFF: reqVisitor, XFP: "http", ViaEdge: "1"}},
			{"through the edge from a trusted proxy", s.site, reqProxy, map[string]string{"X-Forwarded-For": "203.0.113.50", "X-Forwarded-Proto": "https"}, nil, nil,
				probe{RemoteAddr: "203.0.113.50", HTTPS: "on", XFF: "203.0.113.50", XFP: "https", ViaEdge: "1"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				req, _ := http.NewRequest("GET", tt.base+"/scalepress-probe.php?probe=1", nil)
				req.Host = site
				for k, v := range tt.header {
					req.Header.Set(k, v)
				}
				if tt.sign != nil {
					tt.sign(req)
				}
				if tt.change != nil {
					tt.change(req)
				}
				resp, err := clientFrom(tt.from, 10*time.Second).Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				var got probe
				if err := json.Unmarshal(b, &got); err != nil {
					t.Fatalf("%d %q: %v", resp.StatusCode, b, err)
				}
				if got != tt.want {
					t.Errorf("PHP saw %+v, want %+v", got, tt.want)
				}
			})
		}
	})

	t.Run("slow bodies hold no worker", func(t *testing.T) {
		// 2 × php_children never-finishing POSTs through the edge (from one
		// client, at its cap of 4) and as many directly at node 1.
		stall := func(from, addr string) net.Conn {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 2 * time.Second}
			nc, err := d.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(nc, "POST /wp-comments-post.php HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\ncomment=half", site)
			return nc
		}
		var stalled []net.Conn
		for range 4 {
			stalled = append(stalled, stall(reqAttacker, site))
		}
		for range 4 {
			stalled = append(stalled, stall(reqDirect, st.Nodes[0].Addr))
		}
		defer func() {
			for _, nc := range stalled {
				nc.Close()
			}
		}()
		t0 := time.Now()
		time.Sleep(300 * time.Millisecond) // the stalled requests are in

		// Over its cap, the attacker gets 429 at once.
		resp, err := clientFrom(reqAttacker, 5*time.Second).Get(s.site + "/?s=one-more")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(b), "http.client_concurrency") {
			t.Errorf("a 5th request from one client: %d Retry-After %q %q, want 429 with Retry-After and the reason", resp.StatusCode, resp.Header.Get("Retry-After"), b)
		}

		// Uncached pages keep answering through the edge and at node 1.
		c := clientFrom(reqVisitor, 3*time.Second)
		n := 0
		for i := 0; time.Since(t0) < 5*time.Second; i++ {
			for _, base := range []string{s.site, "http://" + st.Nodes[0].Addr} {
				req, _ := http.NewRequest("GET", fmt.Sprintf("%s/?s=still-here-%d", base, i), nil)
				req.Host = site
				resp, err := c.Do(req)
				if err != nil {
					t.Fatalf("GET %s while bodies stall: %v", req.URL, err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Fatalf("GET %s while bodies stall: %d, want 200", req.URL, resp.StatusCode)
				}
				n++
			}
		}
		t.Logf("%d uncached pages answered 200 while %d bodies stalled", n, len(stalled))

		// The stalled requests end with 408 after http.body_timeout (6s).
		var wg sync.WaitGroup
		for i, nc := range stalled {
			wg.Go(func() {
				nc.SetReadDeadline(time.Now().Add(20 * time.Second))
				resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
				if err != nil {
					t.Errorf("stalled POST %d: %v", i, err)
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusRequestTimeout || strings.Count(string(b), "\n") != 1 {
					t.Errorf("stalled POST %d: %d %q, want 408 with a one-line reason", i, resp.StatusCode, b)
				}
			})
		}
		wg.Wait()
		if d := time.Since(t0); d > 15*time.Second {
			t.Errorf("the stalled POSTs took %s to end, http.body_timeout is 6s", d)
		}
	})

	t.Run("an idle node stays healthy after a burst took every PHP worker", func(t *testing.T) {
		// A burst opens a kept-alive FastCGI connection per php-fpm child
		// (php_children: 2), and each pins its child until the agent closes
		// it, 30 s idle. Once no PHP request completed for 2 s, health is
		// a php-fpm ping: it must go over one of those connections, else
		// it waits for a child that never comes and the node fails its
		// checks (the edge ejects it, the controller replaces it).
		c := clientFrom(reqVisitor, 10*time.Second)
		for _, n := range st.Nodes {
			if err := os.WriteFile(filepath.Join(n.Docroot, "scalepress-slow.php"), []byte("<?php usleep(300000); echo 'slow';"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		for _, n := range st.Nodes {
			for i := range 4 {
				wg.Go(func() {
					req, _ := http.NewRequest("GET", fmt.Sprintf("http://%s/scalepress-slow.php?burst=%d", n.Addr, i), nil)
					req.Host = site
					resp, err := c.Do(req)
					if err != nil {
						t.Errorf("burst GET at %s: %v", n.ID, err)
						return
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 || string(b) != "slow" {
						t.Errorf("burst GET at %s: %d %q, want 200 \"slow\"", n.ID, resp.StatusCode, b)
					}
				})
			}
		}
		wg.Wait()
		// From 2 s on health is the ping; watch it to 6 s (edge checks
		// every 2 s, fall 3; the controller probes every second).
		for t0 := time.Now(); time.Since(t0) < 6*time.Second; time.Sleep(500 * time.Millisecond) {
			for _, n := range st.Nodes {
				resp, err := c.Get("http://" + n.Addr + api.NodePathStatus)
				if err != nil {
					t.Fatalf("%s status at +%s: %v", n.ID, time.Since(t0).Round(100*time.Millisecond), err)
				}
				var rep api.NodeReport
				err = json.NewDecoder(resp.Body).Decode(&rep)
				resp.Body.Close()
				if err != nil || !rep.PHPOK {
					t.Fatalf("%s at +%s after the burst: php_ok false (%v %s), want PHP answering its ping", n.ID, time.Since(t0).Round(100*time.Millisecond), err, rep.PHPError)
				}
			}
		}
		for _, n := range s.status(t).Nodes {
			if n.State != api.NodeInService {
				t.Errorf("%s is %s after the burst, want %s", n.ID, n.State, api.NodeInService)
			}
		}
		resp, err := c.Get(s.site + "/?s=after-the-burst")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("uncached page after the burst: %d, want 200", resp.StatusCode)
		}
	})
}
