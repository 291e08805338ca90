package edgetls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scalepress/scalepress/internal/token"
)

// testCA issues certificates for tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newCA(t testing.TB) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test root"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return &testCA{cert: c, key: key, pool: pool}
}

var serial = struct {
	sync.Mutex
	n int64
}{n: 100}

// issue returns PEM certificate and key for names, valid for life.
func (ca *testCA) issue(t testing.TB, life time.Duration, names ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial.Lock()
	serial.n++
	sn := serial.n
	serial.Unlock()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(sn), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(life),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalPKCS8PrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd})
}

func writeFiles(t testing.TB, dir string, certPEM, keyPEM []byte) CertFile {
	t.Helper()
	f := CertFile{CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem")}
	for p, b := range map[string][]byte{f.CertFile: certPEM, f.KeyFile: keyPEM} {
		if err := os.WriteFile(p+".tmp", b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(p+".tmp", p); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

type events struct {
	mu  sync.Mutex
	got []string
}

func (e *events) add(alert bool, msg string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	prefix := "info: "
	if alert {
		prefix = "alert: "
	}
	e.got = append(e.got, prefix+msg)
}

func (e *events) list() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.got...)
}

func newManager(t *testing.T, ev *events, files ...CertFile) *Manager {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Certificates = files
	cfg.TicketKey = token.NewKey()
	if ev != nil {
		cfg.Event = ev.add
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// serve runs a TLS server with m's config on loopback and returns its address.
func serve(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if err := c.(*tls.Conn).Handshake(); err == nil {
					c.Write([]byte("ok"))
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// dial handshakes with addr and returns the leaf's first name.
func dial(addr string, cfg *tls.Config) (string, tls.ConnectionState, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return "", tls.ConnectionState{}, err
	}
	defer c.Close()
	b := make([]byte, 2)
	c.Read(b)
	st := c.ConnectionState()
	return st.PeerCertificates[0].DNSNames[0] + " " + st.PeerCertificates[0].SerialNumber.String(), st, nil
}

func TestHandshakes(t *testing.T) {
	ca := newCA(t)
	c1, k1 := ca.issue(t, time.Hour, "www.site.test", "site.test")
	c2, k2 := ca.issue(t, time.Hour, "*.other.test")
	m := newManager(t, nil, writeFiles(t, t.TempDir(), c1, k1), writeFiles(t, t.TempDir(), c2, k2))
	addr := serve(t, m.TLSConfig())
	tests := []struct {
		name    string
		cfg     *tls.Config
		want    string // first name of the certificate served; "" = refused
		wantErr string
	}{
		{name: "exact name", cfg: &tls.Config{ServerName: "www.site.test"}, want: "www.site.test"},
		{name: "second name", cfg: &tls.Config{ServerName: "site.test"}, want: "www.site.test"},
		{name: "case and trailing dot", cfg: &tls.Config{ServerName: "WWW.Site.Test."}, want: "www.site.test"},
		{name: "wildcard", cfg: &tls.Config{ServerName: "a.other.test"}, want: "*.other.test"},
		{name: "wildcard is one label", cfg: &tls.Config{ServerName: "a.b.other.test", InsecureSkipVerify: true}, wantErr: "internal error"},
		{name: "unknown name", cfg: &tls.Config{ServerName: "evil.test", InsecureSkipVerify: true}, wantErr: "internal error"},
		{name: "no SNI", cfg: &tls.Config{InsecureSkipVerify: true}, wantErr: "internal error"},
		{name: "TLS 1.0 only", cfg: &tls.Config{ServerName: "www.site.test", MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10}, wantErr: "protocol version"},
		{name: "TLS 1.1 only", cfg: &tls.Config{ServerName: "www.site.test", MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}, wantErr: "protocol version"},
		{name: "TLS 1.2 CBC suites only", cfg: &tls.Config{ServerName: "www.site.test", MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA}}, wantErr: "handshake failure"},
		{name: "TLS 1.2 AEAD", cfg: &tls.Config{ServerName: "www.site.test", MaxVersion: tls.VersionTLS12}, want: "www.site.test"},
		{name: "still serves after the refusals", cfg: &tls.Config{ServerName: "www.site.test"}, want: "www.site.test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.cfg.RootCAs == nil {
				tt.cfg.RootCAs = ca.pool
			}
			got, _, err := dial(addr, tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("handshake error = %v, want one with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if name, _, _ := strings.Cut(got, " "); name != tt.want {
				t.Errorf("served %s, want %s", got, tt.want)
			}
		})
	}
	if noSNI, unknown := m.Refused(); noSNI != 1 || unknown != 2 {
		t.Errorf("Refused() = %d no SNI, %d unknown; want 1, 2", noSNI, unknown)
	}
}

func TestNewNamesTheBadFile(t *testing.T) {
	ca := newCA(t)
	c1, k1 := ca.issue(t, time.Hour, "www.site.test")
	_, k2 := ca.issue(t, time.Hour, "www.site.test")
	dir := t.TempDir()
	good := writeFiles(t, dir, c1, k1)
	garbage := filepath.Join(dir, "garbage.pem")
	os.WriteFile(garbage, []byte("not a certificate\n"), 0o600)
	otherKey := filepath.Join(dir, "other-key.pem")
	os.WriteFile(otherKey, k2, 0o600)
	tests := []struct {
		name string
		f    CertFile
		want string
	}{
		{"cert does not parse", CertFile{CertFile: garbage, KeyFile: good.KeyFile}, garbage + ": no PEM certificate"},
		{"key does not fit", CertFile{CertFile: good.CertFile, KeyFile: otherKey}, otherKey + " does not fit " + good.CertFile},
		{"key missing", CertFile{CertFile: good.CertFile, KeyFile: filepath.Join(dir, "none.pem")}, filepath.Join(dir, "none.pem")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Certificates = []CertFile{tt.f}
			_, err := New(cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: %v, want an error with %q", err, tt.want)
			}
		})
	}
}

// TestReload: a changed pair replaces the one in use; a bad one keeps it
// and is reported once it stayed the same over two checks.
func TestReload(t *testing.T) {
	ca := newCA(t)
	dir := t.TempDir()
	c1, k1 := ca.issue(t, time.Hour, "www.site.test")
	ev := &events{}
	m := newManager(t, ev, writeFiles(t, dir, c1, k1))
	addr := serve(t, m.TLSConfig())
	cfg := &tls.Config{ServerName: "www.site.test", RootCAs: ca.pool}
	first, _, err := dial(addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.reloadFiles() // nothing changed
	if got, _, _ := dial(addr, cfg); got != first {
		t.Fatalf("served %s after a check without change, want %s", got, first)
	}

	// A rotation: the new pair is served from the next check on.
	c2, k2 := ca.issue(t, time.Hour, "www.site.test")
	writeFiles(t, dir, c2, k2)
	m.reloadFiles()
	second, _, err := dial(addr, cfg)
	if err != nil || second == first {
		t.Fatalf("after rotation: %s, %v; want a new certificate", second, err)
	}

	// Half a rotation (new cert, old key), then garbage: the second
	// certificate stays in use; each bad state is reported once, and
	// only once it is seen twice.
	c3, _ := ca.issue(t, time.Hour, "www.site.test")
	os.WriteFile(filepath.Join(dir, "cert.pem"), c3, 0o600)
	m.reloadFiles()
	if got := ev.list(); len(got) != 1 {
		t.Fatalf("events after one check of a mismatched pair: %q, want only the rotation's", got)
	}
	m.reloadFiles()
	m.reloadFiles()
	os.WriteFile(filepath.Join(dir, "cert.pem"), []byte("garbage"), 0o600)
	m.reloadFiles()
	m.reloadFiles()
	if got, _, err := dial(addr, cfg); err != nil || got != second {
		t.Fatalf("after bad files: %s, %v; want %s still", got, err, second)
	}
	got := ev.list()
	want := []string{
		"info: tls: certificate " + filepath.Join(dir, "cert.pem") + " reloaded",
		"alert: tls: certificate reload failed, the edge keeps serving the previous one: " + filepath.Join(dir, "key.pem") + " does not fit",
		"alert: tls: certificate reload failed, the edge keeps serving the previous one: " + filepath.Join(dir, "cert.pem") + ": no PEM certificate",
	}
	if len(got) != len(want) {
		t.Fatalf("events %q, want %d", got, len(want))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("event %d = %q, want prefix %q", i, got[i], want[i])
		}
	}
}

// TestTicketsResumeAcrossEdges: two edges with the same ticket key resume
// each other's sessions; an edge with another key does not.
func TestTicketsResumeAcrossEdges(t *testing.T) {
	ca := newCA(t)
	c1, k1 := ca.issue(t, time.Hour, "www.site.test")
	f := writeFiles(t, t.TempDir(), c1, k1)
	key := token.NewKey()
	mk := func(k token.Key) string {
		cfg := DefaultConfig()
		cfg.Certificates = []CertFile{f}
		cfg.TicketKey = k
		m, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return serve(t, m.TLSConfig())
	}
	a, b, other := mk(key), mk(key), mk(token.NewKey())
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		cache := tls.NewLRUClientSessionCache(8)
		cfg := &tls.Config{ServerName: "www.site.test", RootCAs: ca.pool, ClientSessionCache: cache, MaxVersion: v}
		var got []bool
		for _, addr := range []string{a, b, other} {
			_, st, err := dial(addr, cfg)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, st.DidResume)
		}
		if diff := cmp.Diff([]bool{false, true, false}, got); diff != "" {
			t.Errorf("TLS %x resumed at (edge a, edge b, other key) (-want +got):\n%s", v, diff)
		}
	}
}

// TestTicketKeys: a period's keys are its own first, then the previous and
// the next; the next period still decrypts this one's tickets, the one
// after does not.
func TestTicketKeys(t *testing.T) {
	k := token.NewKey()
	p := 12 * time.Hour
	t0 := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	now, next, after := ticketKeys(k, p, t0), ticketKeys(k, p, t0.Add(p)), ticketKeys(k, p, t0.Add(2*p))
	if now[0] != next[1] {
		t.Fatal("the next period does not hold this period's key second")
	}
	for _, key := range after {
		if key == now[0] {
			t.Fatal("two periods later, this period's key is still accepted")
		}
	}
	if now[2] != next[0] {
		t.Error("this period does not accept the next period's key (a clock ahead)")
	}
	if other := ticketKeys(token.NewKey(), p, t0); other[0] == now[0] {
		t.Error("another purpose key gives the same ticket key")
	}
	if got, want := nextRotation(p, t0), time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("nextRotation = %s, want %s", got, want)
	}
}

// TestExpiryAlert: a certificate under a sixth of its life left is an
// alert, once.
func TestExpiryAlert(t *testing.T) {
	ca := newCA(t)
	c1, k1 := ca.issue(t, 6*time.Minute, "www.site.test") // made a minute ago: 7 min life
	ev := &events{}
	m := newManager(t, ev, writeFiles(t, t.TempDir(), c1, k1))
	now := time.Now()
	m.now = func() time.Time { return now }
	m.checkExpiry()
	if got := ev.list(); len(got) != 0 {
		t.Fatalf("events with 6 of 7 minutes left: %q", got)
	}
	now = now.Add(5 * time.Minute)
	m.checkExpiry()
	m.checkExpiry()
	got := ev.list()
	if len(got) != 1 || !strings.HasPrefix(got[0], "alert: tls: certificate for www.site.test expires at") {
		t.Fatalf("events with a minute left: %q, want one alert", got)
	}
}

// TestCertificateNames: a certificate given by name (an edge on Nomad, run
// in its task's secrets/ where its certificates are rendered) is read from
// the working directory and reloaded from there; a name that leaves it,
// or an empty one, is refused.
func TestCertificateNames(t *testing.T) {
	ca := newCA(t)
	dir := t.TempDir()
	c1, k1 := ca.issue(t, time.Hour, "www.site.test")
	writeFiles(t, dir, c1, k1)
	t.Chdir(dir)
	m := newManager(t, nil, CertFile{CertFile: "cert.pem", KeyFile: "key.pem"})
	addr := serve(t, m.TLSConfig())
	cfg := &tls.Config{ServerName: "www.site.test", RootCAs: ca.pool}
	first, _, err := dial(addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c2, k2 := ca.issue(t, time.Hour, "www.site.test")
	writeFiles(t, dir, c2, k2)
	m.reloadFiles()
	if second, _, err := dial(addr, cfg); err != nil || second == first {
		t.Fatalf("after rotation: %s, %v; want a new certificate", second, err)
	}
	for _, name := range []string{"../key.pem", ""} {
		c := DefaultConfig()
		c.Certificates = []CertFile{{CertFile: "cert.pem", KeyFile: name}}
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "absolute paths or names in the working directory") {
			t.Errorf("key_file %q: %v", name, err)
		}
	}
}
