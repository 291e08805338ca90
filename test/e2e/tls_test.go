package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/test/tools"
)

// pebble is Let's Encrypt's test CA, on loopback.
type pebble struct {
	dir     string // https://.../dir
	caFile  string // the root of pebble's own HTTPS listener
	mgmt    string // management API (its issuing roots)
	mu      sync.Mutex
	out     bytes.Buffer
	listenT *tls.Config
}

func (p *pebble) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

// issued counts the certificates pebble issued.
func (p *pebble) issued() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Count(p.out.String(), "Issued certificate serial")
}

// root is pebble's issuing root, which the site's chain must verify against.
func (p *pebble) root(t *testing.T) *x509.CertPool {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: p.listenT}}
	resp, err := c.Get(p.mgmt + "/roots/0")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("pebble root: %s", b)
	}
	return pool
}

// startPebble runs pebble on ip with certificates valid for validity,
// resolving names with dns (the stack's own DNS role) and validating
// challenges on the edges' ports.
func startPebble(t *testing.T, ip, dns string, httpPort, tlsPort int, validity time.Duration) *pebble {
	t.Helper()
	dir := t.TempDir()
	// pebble's own HTTPS listener needs a certificate for ip.
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caT := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pebble listener root"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, caT, caT, &caKey.PublicKey, caKey)
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	lt := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: ip}, IPAddresses: []net.IP{net.ParseIP(ip)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, _ := x509.CreateCertificate(rand.Reader, lt, ca, &key.PublicKey, caKey)
	kd, _ := x509.MarshalPKCS8PrivateKey(key)
	write := func(name string, typ string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := &pebble{caFile: write("ca.pem", "CERTIFICATE", caDER)}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	p.listenT = &tls.Config{RootCAs: pool}
	certFile, keyFile := write("cert.pem", "CERTIFICATE", der), write("key.pem", "PRIVATE KEY", kd)
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress": ip + ":14000", "managementListenAddress": ip + ":15000",
		"certificate": certFile, "privateKey": keyFile, "httpPort": httpPort, "tlsPort": tlsPort,
		"ocspResponderURL": "", "externalAccountBindingRequired": false, "keyAlgorithm": "ecdsa",
		"retryAfter": map[string]int{"authz": 1, "order": 1},
		"profiles":   map[string]any{"default": map[string]any{"description": "short-lived", "validityPeriod": int(validity.Seconds())}},
	}}
	b, _ := json.Marshal(cfg)
	cfgFile := filepath.Join(dir, "pebble.json")
	os.WriteFile(cfgFile, b, 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, tools.Path(t, "pebble"), "-config", cfgFile, "-dnsserver", dns)
	// No random sleeps before validation, no random nonce rejections:
	// the test is about scalepress, not about retrying pebble's chaos.
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0")
	cmd.Stdout, cmd.Stderr = p, p
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
		if t.Failed() {
			t.Logf("---- pebble output\n%s", p.out.String())
		}
	})
	p.dir = "https://" + ip + ":14000/dir"
	p.mgmt = "https://" + ip + ":15000"
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: p.listenT}}
	for i := 0; ; i++ {
		resp, err := c.Get(p.dir)
		if err == nil {
			resp.Body.Close()
			break
		}
		if i > 100 {
			t.Fatalf("pebble does not answer: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return p
}

// tlsClient talks to the site by name at one edge's HTTPS address,
// verifying the chain against roots.
func tlsClient(roots *x509.CertPool, httpsAddr string, jar http.CookieJar) *http.Client {
	return &http.Client{Timeout: 60 * time.Second, Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, httpsAddr)
			}}}
}

// TestTLSACME is a user putting the site on HTTPS with ACME (Pebble as the
// CA, the stack's own geo DNS resolving the name to the two edges): `up`
// obtains one certificate for both edges, the chain verifies, WordPress
// builds https links and Secure cookies, plain HTTP redirects, the
// certificate is renewed before it expires and both edges serve the renewal.
func TestTLSACME(t *testing.T) {
	const block = 69
	s := newStack(t, block, 1)
	edgeA, edgeB := fmt.Sprintf("127.%d.0.1", block), fmt.Sprintf("127.%d.0.2", block)
	dnsAddr := fmt.Sprintf("127.%d.0.53:5353", block)
	const validity = 90 * time.Second
	pb := startPebble(t, fmt.Sprintf("127.%d.0.60", block), dnsAddr, 8080, 8443, validity)
	// A second name served from files, next to the ACME one.
	files := newFileCA(t)
	files.issue(t, "files.example.test")

	cfg := stackConfig(block, 1)
	oneEdge := fmt.Sprintf("edges:\n  - id: edge-1\n    region: default\n    addr: 127.%d.0.1:8080\n", block)
	if !strings.Contains(cfg, oneEdge) {
		t.Fatalf("stackConfig changed; update TestTLSACME:\n%s", cfg)
	}
	cfg = strings.Replace(cfg, oneEdge, fmt.Sprintf(`edges:
  - {id: edge-1, region: default, addr: %[1]s:8080, https_addr: %[1]s:8443}
  - {id: edge-2, region: default, addr: %[2]s:8080, https_addr: %[2]s:8443}
`, edgeA, edgeB), 1)
	cfg += fmt.Sprintf(`dns:
  enabled: true
  addr: %[1]s
  zone: example.test.
  geo_names: [www]
  health: {interval: 1s, timeout: 1s, rise: 1, fall: 2}
tls:
  redirect_http: true
  hsts: 1h
  http3: true
  certificates:
    - {cert_file: %[4]s, key_file: %[5]s}
  acme:
    email: ops@example.test
    directory_url: %[2]s
    ca_file: %[3]s
    names: [www.example.test]
    check_interval: 2s
`, dnsAddr, pb.dir, pb.caFile, files.certFile, files.keyFile)
	if err := os.WriteFile(s.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	took := s.up(t)
	t.Logf("up --detach with ACME took %s; pebble issued %d", took.Round(time.Millisecond), pb.issued())
	roots := pb.root(t)
	const site = "https://www.example.test:8443"

	t.Run("status has tls", func(t *testing.T) {
		st := s.status(t)
		if st.TLS == nil || st.TLS.HTTPSURL != site || st.SiteURL != site {
			t.Fatalf("status tls %+v, site_url %s; want https_url %s", st.TLS, st.SiteURL, site)
		}
		if len(st.TLS.Certificates) == 0 || st.TLS.Certificates[0].Names[0] != "www.example.test" || !strings.Contains(st.TLS.Certificates[0].Issuer, "Pebble") {
			t.Errorf("status certificates %+v, want one for www.example.test from Pebble", st.TLS.Certificates)
		}
	})

	t.Run("one certificate for both edges", func(t *testing.T) {
		// One edge obtained, the other waited on the storage lock and
		// loaded it: one "obtained (renewal: false)" event in all.
		// (Pebble's count is not the measure: its renewal info may start
		// a renewal right away, see the renewal test.)
		var initial []string
		for i := 0; i < 20 && len(initial) == 0; i++ { // the edge posts its events as they happen
			if i > 0 {
				time.Sleep(250 * time.Millisecond)
			}
			for _, e := range tlsEvents(t, s) {
				if strings.Contains(e.Message, "acme certificate obtained for www.example.test (renewal: false)") {
					initial = append(initial, e.Message)
				}
			}
		}
		if len(initial) != 1 {
			t.Errorf("initial orders %q, want one for two edges", initial)
		}
		sameCertificate(t, roots, site, edgeA, edgeB)
	})

	t.Run("WordPress pages carry https links", func(t *testing.T) {
		resp, err := tlsClient(roots, edgeA+":8443", nil).Get(site + "/?s=hello")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body := string(b)
		if resp.StatusCode != 200 || resp.Proto != "HTTP/2.0" {
			t.Fatalf("%d %s", resp.StatusCode, resp.Proto)
		}
		if !strings.Contains(body, site+"/") || strings.Contains(body, "http://www.example.test") {
			t.Errorf("page links are not all %s/...:\n%.2000s", site, body)
		}
		if h := resp.Header.Get("Strict-Transport-Security"); h != "max-age=3600" {
			t.Errorf("HSTS %q", h)
		}
	})

	t.Run("HTTPS/1.1 cache hits are served by the fast path", func(t *testing.T) {
		// ADR 0034: an http/1.1 TLS connection gets hitfront's parser and
		// writer; its hits count in the edge's fast-path counter (h2 and
		// the plain port's internal paths do not add n of them).
		metrics := "http://" + edgeA + ":8080" + api.EdgePathMetrics
		c := tlsClient(roots, edgeA+":8443", nil)
		tr := c.Transport.(*http.Transport)
		tr.ForceAttemptHTTP2 = false
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		get := func() *http.Response {
			t.Helper()
			resp, err := c.Get(site + "/")
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp
		}
		for i := 0; get().Header.Get("X-Cache") != "HIT"; i++ {
			if i == 20 {
				t.Fatal("the home page over HTTPS/1.1 is not a cache hit after 20 requests")
			}
			time.Sleep(100 * time.Millisecond)
		}
		before := metric(t, metrics, "scalepress_edge_fast_path_total", `event="served"`)
		const n = 20
		for range n {
			resp := get()
			if resp.StatusCode != 200 || resp.Proto != "HTTP/1.1" || resp.Header.Get("X-Cache") != "HIT" {
				t.Fatalf("%d %s X-Cache %q, want a 200 HTTP/1.1 HIT", resp.StatusCode, resp.Proto, resp.Header.Get("X-Cache"))
			}
			if h := resp.Header.Get("Strict-Transport-Security"); h != "max-age=3600" {
				t.Fatalf("HSTS %q on a fast-path hit, want max-age=3600", h)
			}
		}
		if got := metric(t, metrics, "scalepress_edge_fast_path_total", `event="served"`) - before; got < n {
			t.Errorf("the fast path served %v of %d HTTPS/1.1 hits", got, n)
		}
	})

	t.Run("plain HTTP redirects", func(t *testing.T) {
		req, _ := http.NewRequest("GET", "http://"+edgeA+":8080/sample-page/?x=1", nil)
		req.Host = "www.example.test:8080"
		c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 308 || resp.Header.Get("Location") != site+"/sample-page/?x=1" {
			t.Errorf("%d Location %q, want 308 %s/sample-page/?x=1", resp.StatusCode, resp.Header.Get("Location"), site)
		}
	})

	t.Run("admin logs in over HTTPS with Secure cookies", func(t *testing.T) {
		pw, err := os.ReadFile(filepath.Join(s.dir, "secrets", "admin-password"))
		if err != nil {
			t.Fatal(err)
		}
		jar, _ := cookiejar.New(nil)
		c := tlsClient(roots, edgeA+":8443", jar)
		resp, err := c.Get(site + "/wp-login.php")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		form := url.Values{"log": {"admin"}, "pwd": {strings.TrimSpace(string(pw))}, "wp-submit": {"Log In"},
			"redirect_to": {site + "/wp-admin/"}, "testcookie": {"1"}}
		resp, err = c.Post(site+"/wp-login.php", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 302 || resp.Header.Get("Location") != site+"/wp-admin/" {
			t.Fatalf("login: %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		secure := map[string]bool{}
		for _, ck := range resp.Cookies() {
			if strings.HasPrefix(ck.Name, "wordpress_") && ck.Value != "" && ck.MaxAge >= 0 {
				secure[strings.SplitN(ck.Name, "_", 3)[1]] = ck.Secure
			}
		}
		if !secure["sec"] || !secure["logged"] {
			t.Errorf("auth cookies (name part -> Secure) %v: want wordpress_sec_* and wordpress_logged_in_* Secure", secure)
		}
		resp, err = c.Get(site + "/wp-admin/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), "Dashboard") {
			t.Errorf("wp-admin after login: %d", resp.StatusCode)
		}
	})

	t.Run("HTTP/3", func(t *testing.T) {
		tr := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "www.example.test"}}
		defer tr.Close()
		req, _ := http.NewRequest("GET", "https://"+edgeB+":8443/", nil)
		req.Host = "www.example.test:8443"
		resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Proto != "HTTP/3.0" || !strings.Contains(string(b), site+"/") {
			t.Errorf("HTTP/3: %d %s", resp.StatusCode, resp.Proto)
		}
	})

	t.Run("the ACME storage is the edges' user's only", func(t *testing.T) {
		for _, d := range []string{filepath.Join(s.dir, "tls"), filepath.Join(s.dir, "tls", "acme")} {
			fi, err := os.Stat(d)
			if err != nil {
				t.Fatal(err)
			}
			st := fi.Sys().(*syscall.Stat_t)
			u, err := user.Lookup("scalepress")
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o700 || fmt.Sprint(st.Uid) != u.Uid {
				t.Errorf("%s: mode %v uid %d, want 0700 owned by scalepress (%s)", d, fi.Mode().Perm(), st.Uid, u.Uid)
			}
		}
	})

	t.Run("file certificate rotated without dropping a request", func(t *testing.T) {
		pool := roots.Clone()
		pool.AddCert(files.ca)
		get := func() (*x509.Certificate, error) {
			c := tlsClient(pool, edgeA+":8443", nil)
			c.Transport.(*http.Transport).DisableKeepAlives = true // a handshake per request
			resp, err := c.Get("https://files.example.test:8443/wp-includes/css/dashicons.min.css")
			if err != nil {
				return nil, err
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return nil, fmt.Errorf("status %d", resp.StatusCode)
			}
			return resp.TLS.PeerCertificates[0], nil
		}
		old, err := get()
		if err != nil {
			t.Fatal(err)
		}
		var (
			mu     sync.Mutex
			n      int
			failed []error
			stop   = make(chan struct{})
			done   = make(chan struct{})
		)
		go func() {
			defer close(done)
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, err := get()
				mu.Lock()
				n++
				if err != nil {
					failed = append(failed, err)
				}
				mu.Unlock()
			}
		}()
		files.issue(t, "files.example.test")
		for i := 0; ; i++ {
			c, err := get()
			if err == nil && c.SerialNumber.Cmp(old.SerialNumber) != 0 {
				break
			}
			if i > 300 {
				t.Fatal("the rotated certificate is not served")
			}
			time.Sleep(100 * time.Millisecond)
		}
		close(stop)
		<-done
		t.Logf("%d requests during the rotation", n)
		if len(failed) > 0 {
			t.Errorf("%d of %d requests failed during the rotation, first: %v", len(failed), n, failed[0])
		}
	})

	t.Run("renewed before expiry, the same for both edges", func(t *testing.T) {
		first := func(a string) *x509.Certificate {
			resp, err := tlsClient(roots, a+":8443", nil).Get(site + "/")
			if err != nil {
				t.Fatalf("edge %s: %v", a, err)
			}
			resp.Body.Close()
			return resp.TLS.PeerCertificates[0]
		}
		old := first(edgeA)
		deadline := old.NotAfter
		for _, a := range []string{edgeA, edgeB} {
			for {
				c := first(a)
				if c.SerialNumber.Cmp(old.SerialNumber) != 0 {
					t.Logf("edge %s serves a renewed certificate %s before the old one expires at %s", a, time.Until(deadline).Round(time.Second), deadline.Format(time.TimeOnly))
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("edge %s still serves the old certificate past its expiry", a)
				}
				time.Sleep(time.Second)
			}
		}
		// Both edges end up on the same certificate from the shared
		// storage. How many orders the renewal took is logged, not
		// asserted: Pebble's renewal info (ARI) suggests a window of
		// +-24 h around two thirds of the lifetime, clipped to the
		// lifetime, so for a 90 s certificate "any time from issuance",
		// and certmagic may renew a just-renewed certificate at a random
		// point of that window. Each renewal is still one order under the
		// storage lock (the initial obtain above shows one for two edges).
		sameCertificate(t, roots, site, edgeA, edgeB)
		t.Logf("pebble issued %d certificates in all", pb.issued())
	})

	t.Run("certificate events", func(t *testing.T) {
		var got []string
		for _, e := range tlsEvents(t, s) {
			got = append(got, e.Message)
		}
		if !strings.Contains(strings.Join(got, "\n"), "acme certificate obtained for www.example.test (renewal: true)") {
			t.Errorf("tls events %q, want the renewal", got)
		}
	})
}

// TestTLSBadCertificate: `up` refuses a certificate file that does not
// parse, or a key that does not fit it, with exit 2 naming the file, and
// starts nothing.
func TestTLSBadCertificate(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "fullchain.pem")
	os.WriteFile(garbage, []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"), 0o644)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	kd, _ := x509.MarshalPKCS8PrivateKey(key)
	keyFile := filepath.Join(dir, "key.pem")
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), 0o600)
	// A good certificate for another key.
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), DNSNames: []string{"www.example.test"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &other.PublicKey, other)
	otherCert := filepath.Join(dir, "other.pem")
	os.WriteFile(otherCert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	for _, tt := range []struct{ name, cert, want string }{
		{"does not parse", garbage, "tls.certificates[0].cert_file: " + garbage},
		{"key does not fit", otherCert, "tls.certificates[0].key_file: " + keyFile + " does not fit " + otherCert},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := filepath.Join(dir, "scalepress.yaml")
			os.WriteFile(cfg, []byte(fmt.Sprintf("site:\n  url: https://www.example.test\ntls:\n  certificates:\n    - {cert_file: %s, key_file: %s}\n", tt.cert, keyFile)), 0o644)
			r := runBin(t, "up", "--detach", "--config", cfg, "--dir", filepath.Join(dir, "state"))
			if r.code != 2 || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("up: exit %d, stderr %q; want exit 2 naming %q", r.code, r.stderr, tt.want)
			}
			if _, err := os.Stat(filepath.Join(dir, "state", "run", "controller.pid")); err == nil {
				t.Error("up started a controller")
			}
		})
	}
}

// fileCA issues certificate files the edges read (the directory and files
// are readable by the edges' user).
type fileCA struct {
	ca                *x509.Certificate
	key               *ecdsa.PrivateKey
	certFile, keyFile string
	serial            int64
}

func newFileCA(t *testing.T) *fileCA {
	t.Helper()
	// Not t.TempDir: its parent is 0700, and the edges' user must get in.
	dir, err := os.MkdirTemp("", "scalepress-e2e-certs-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "file test root"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	ca, _ := x509.ParseCertificate(der)
	return &fileCA{ca: ca, key: key, certFile: filepath.Join(dir, "fullchain.pem"), keyFile: filepath.Join(dir, "key.pem"), serial: 100}
}

// issue writes a new key and certificate for name, each file replaced
// atomically, the key first (as a deploy script would).
func (f *fileCA) issue(t *testing.T, name string) {
	t.Helper()
	f.serial++
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(f.serial), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, f.ca, &key.PublicKey, f.key)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalPKCS8PrivateKey(key)
	for _, w := range []struct {
		path, typ string
		b         []byte
	}{{f.keyFile, "PRIVATE KEY", kd}, {f.certFile, "CERTIFICATE", der}} {
		if err := os.WriteFile(w.path+".tmp", pem.EncodeToMemory(&pem.Block{Type: w.typ, Bytes: w.b}), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(w.path+".tmp", w.path); err != nil {
			t.Fatal(err)
		}
	}
}

// tlsEvents are the controller's tls events.
func tlsEvents(t *testing.T, s *stack) []api.Event {
	t.Helper()
	var evs api.Events
	resp, err := http.Get(s.api + api.APIPathEvents)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&evs); err != nil {
		t.Fatal(err)
	}
	var out []api.Event
	for _, e := range evs.Events {
		if e.Kind == api.EventKindTLS {
			out = append(out, e)
		}
	}
	return out
}

// sameCertificate waits until every edge serves the same certificate for
// site (a renewal reaches the edges one check apart), with a chain that
// verifies against roots.
func sameCertificate(t *testing.T, roots *x509.CertPool, site string, edges ...string) {
	t.Helper()
	for i := 0; ; i++ {
		serials := map[string]bool{}
		for _, a := range edges {
			resp, err := tlsClient(roots, a+":8443", nil).Get(site + "/")
			if err != nil {
				t.Fatalf("edge %s: %v", a, err) // also: a chain that does not verify
			}
			resp.Body.Close()
			serials[resp.TLS.PeerCertificates[0].SerialNumber.String()] = true
		}
		if len(serials) == 1 {
			return
		}
		if i > 30 {
			t.Fatalf("the edges serve different certificates: %v", serials)
		}
		time.Sleep(time.Second)
	}
}
