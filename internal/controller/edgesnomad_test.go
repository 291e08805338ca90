package controller

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/config"
	"github.com/scalepress/scalepress/internal/nomadlaunch"
	"github.com/scalepress/scalepress/internal/statedir"
	"github.com/scalepress/scalepress/internal/token"
)

// TestEdgeRoleJobs: with scheduler.roles edge, each edge is a job of its
// own on its address's host in its region (not scheduler.role_meta's:
// that is for the roles that move), on its port, dropping to the
// role user when the port needs no root; every secret of its spec (the
// forwarding key, the purge secret, its control token) is in the spec,
// which goes to the job's variable, and none is in the job.
func TestEdgeRoleJobs(t *testing.T) {
	cfg := config.Default()
	cfg.Scheduler.Kind, cfg.Scheduler.Address, cfg.Scheduler.Job = config.SchedulerNomad, "http://127.0.0.1:4646", "sp"
	cfg.Scheduler.Roles = []string{config.RoleEdge}
	cfg.Scheduler.RoleMeta = map[string]string{"scalepress_role": "front"}
	cfg.Edges = []config.Edge{
		{ID: "edge-eu", Region: "eu", Addr: "10.77.0.13:8080"},
		{ID: "edge-us", Region: "us", Addr: "10.77.0.14:80"},
	}
	c, err := New(cfg, t.TempDir(), "test", slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.secrets = statedir.Secrets{RootKey: token.NewKey(), PurgeSecret: "purge-secret-of-wordpress"}
	c.bin.Self = "/usr/local/bin/scalepress"
	type got struct {
		Job, HostIP string
		Port        int
		Meta        map[string]string
		Args        string
	}
	want := []got{
		{"sp-edge-edge-eu", "10.77.0.13", 8080, map[string]string{"scalepress_region": "eu"},
			"edge --spec ${NOMAD_SECRETS_DIR}/role.json --addr ${NOMAD_IP_http}:${NOMAD_PORT_http} --keep ${NOMAD_ALLOC_DIR}/data/upstreams.json --user scalepress"},
		{"sp-edge-edge-us", "10.77.0.14", 80, map[string]string{"scalepress_region": "us"},
			"edge --spec ${NOMAD_SECRETS_DIR}/role.json --addr ${NOMAD_IP_http}:${NOMAD_PORT_http} --keep ${NOMAD_ALLOC_DIR}/data/upstreams.json"},
	}
	for i := range cfg.Edges {
		rj, err := c.edgeRoleJob(i)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want[i], got{rj.Job, rj.HostIP, rj.Port, rj.NodeMeta, strings.Join(rj.Args, " ")}); diff != "" {
			t.Errorf("edge %d (-want +got):\n%s", i, diff)
		}
		spec, err := c.edgeSpec(i)
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(nomadlaunch.BuildRoleJob(c.nomadConfig(), rj))
		if err != nil {
			t.Fatal(err)
		}
		for name, secret := range map[string]string{"forward key": spec.ForwardKey, "purge secret": spec.PurgeSecret, "control token": spec.ControlToken} {
			if secret == "" {
				t.Errorf("edge %d: spec has no %s", i, name)
			} else if strings.Contains(string(b), secret) {
				t.Errorf("edge %d: the job holds the %s", i, name)
			}
		}
	}
}

// selfSignedPair writes a self-signed certificate for name and its key into
// dir and returns their paths and contents.
func selfSignedPair(t *testing.T, dir, name string) (certFile, keyFile, certPEM, keyPEM string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalPKCS8PrivateKey(key)
	certPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	keyPEM = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}))
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, []byte(certPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, []byte(keyPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, certPEM, keyPEM
}

// TestEdgeRoleJobsTLS: with tls.certificates, an edge on Nomad reserves
// its HTTPS port and renders each chain and key from its job's variable
// into its secrets/; its spec names those files (beside the spec), not the
// controller's paths. The items hold the PEM read from the files; neither
// the job nor the spec holds the key. A pair that does not load is an
// error naming the files, never their contents.
func TestEdgeRoleJobsTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, certPEM, keyPEM := selfSignedPair(t, dir, "www.site.test")
	cfg := config.Default()
	cfg.Scheduler.Kind, cfg.Scheduler.Address, cfg.Scheduler.Job = config.SchedulerNomad, "http://127.0.0.1:4646", "sp"
	cfg.Scheduler.Roles = []string{config.RoleEdge}
	cfg.Site.URL = "https://www.site.test"
	cfg.Edges = []config.Edge{{ID: "edge-eu", Region: "eu", Addr: "10.77.0.13:8080", HTTPSAddr: "10.77.0.13:8443"}}
	cfg.TLS.Certificates = []config.CertFile{{CertFile: certFile, KeyFile: keyFile}}
	c, err := New(cfg, t.TempDir(), "test", slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.secrets = statedir.Secrets{RootKey: token.NewKey(), PurgeSecret: "purge-secret-of-wordpress"}
	c.bin.Self = "/usr/local/bin/scalepress"
	rj, err := c.edgeRoleJob(0)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := c.edgeSpec(0)
	if err != nil {
		t.Fatal(err)
	}
	type got struct {
		HTTPSPort int
		Files     []nomadlaunch.SecretFile
		SpecAddr  string
		SpecFiles []api.CertFileSpec
	}
	want := got{8443, []nomadlaunch.SecretFile{{Item: "tls_cert_0", Name: "tls-cert-0.pem"}, {Item: "tls_key_0", Name: "tls-key-0.pem"}},
		"10.77.0.13:8443", []api.CertFileSpec{{CertFile: "tls-cert-0.pem", KeyFile: "tls-key-0.pem"}}}
	if diff := cmp.Diff(want, got{rj.HTTPSPort, rj.Files, spec.TLS.Addr, spec.TLS.Certificates}); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	items, err := c.readEdgeCerts()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"tls_cert_0": certPEM, "tls_key_0": keyPEM}, items); diff != "" {
		t.Errorf("items (-want +got):\n%s", diff)
	}
	job, err := json.Marshal(nomadlaunch.BuildRoleJob(c.nomadConfig(), rj))
	if err != nil {
		t.Fatal(err)
	}
	specJSON, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	keyBody := strings.Split(keyPEM, "\n")[1] // the key's first line of base64
	for what, b := range map[string][]byte{"job": job, "spec": specJSON} {
		if strings.Contains(string(b), keyBody) || strings.Contains(string(b), "PRIVATE KEY") {
			t.Errorf("the %s holds the key", what)
		}
		if strings.Contains(string(b), dir) {
			t.Errorf("the %s names the controller's files (%s)", what, dir)
		}
	}

	// Half a rotation: another key beside the certificate.
	_, otherKey, _, otherPEM := selfSignedPair(t, dir, "other.test")
	c.cfg.TLS.Certificates[0].KeyFile = otherKey
	_, err = c.readEdgeCerts()
	if err == nil || !strings.Contains(err.Error(), "tls.certificates[0]: "+certFile+" and "+otherKey) {
		t.Fatalf("mismatched pair: %v", err)
	}
	if strings.Contains(err.Error(), strings.Split(otherPEM, "\n")[1]) || strings.Contains(err.Error(), "PRIVATE KEY") {
		t.Errorf("the error holds the key: %v", err)
	}
}

// TestTLSStatusEdgesOnNomad: status's tls block for edges on Nomad (whose
// status page answers on their own host only) lists what each edge serves
// on its HTTPS address for the certificates delivered to it, once however
// many edges serve it; an edge that does not answer is left out.
func TestTLSStatusEdgesOnNomad(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, certPEM, keyPEM := selfSignedPair(t, dir, "www.site.test")
	pair, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
		names = append(names, h.ServerName)
		return &pair, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conn.(*tls.Conn).Handshake()
			conn.Close()
		}
	}()
	down, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never handshakes
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	cfg := config.Default()
	cfg.Scheduler.Kind, cfg.Scheduler.Address, cfg.Scheduler.Job = config.SchedulerNomad, "http://127.0.0.1:4646", "sp"
	cfg.Scheduler.Roles = []string{config.RoleEdge}
	cfg.Site.URL = "https://www.site.test"
	cfg.Edges = []config.Edge{
		{ID: "edge-1", Region: "eu", Addr: "127.0.0.1:1", HTTPSAddr: ln.Addr().String()},
		{ID: "edge-2", Region: "eu", Addr: "127.0.0.1:2", HTTPSAddr: ln.Addr().String()},
		{ID: "edge-3", Region: "us", Addr: "127.0.0.1:3", HTTPSAddr: down.Addr().String()},
	}
	cfg.TLS.Certificates = []config.CertFile{{CertFile: certFile, KeyFile: keyFile}}
	c, err := New(cfg, t.TempDir(), "test", slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.roles = &nomadRoles{edgeTLS: edgeTLSState{items: map[string]string{"tls_cert_0": certPEM, "tls_key_0": keyPEM}}}
	st := c.tlsStatus()
	leaf := pair.Leaf
	want := &api.TLSStatus{HTTPSURL: "https://www.site.test", Certificates: []api.CertStatus{{Names: []string{"www.site.test"},
		Issuer: leaf.Issuer.String(), NotAfter: leaf.NotAfter.UTC().Format(time.RFC3339), Source: "file"}}}
	if diff := cmp.Diff(want, st); diff != "" {
		t.Errorf("status tls (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"www.site.test", "www.site.test"}, names); diff != "" {
		t.Errorf("server names asked (-want +got):\n%s", diff)
	}
}

// TestCertWatch: a fault reading the certificate files is reported when
// the next check reads the same (a rotation writes two files, one after the
// other: one check between them is not a fault), once; files that load
// again, or another fault, start afresh. A delivery failure is logged when
// it differs from the previous one.
func TestCertWatch(t *testing.T) {
	half, garbage := errors.New("key.pem does not fit cert.pem"), errors.New("cert.pem: no PEM certificate")
	var w certWatch
	var got []bool
	for _, err := range []error{half, nil, half, half, half, garbage, garbage, nil, garbage} {
		if err == nil {
			w.readOK()
			continue
		}
		got = append(got, w.readFailed(err))
	}
	if diff := cmp.Diff([]bool{false, false, true, false, false, true, false}, got); diff != "" {
		t.Errorf("reports (-want +got):\n%s", diff)
	}
	down := errors.New("write variable: connection refused")
	got = nil
	for _, err := range []error{down, down, nil, down, half} {
		got = append(got, w.deliverFailed(err))
	}
	if diff := cmp.Diff([]bool{true, false, false, true, true}, got); diff != "" {
		t.Errorf("logged (-want +got):\n%s", diff)
	}
}
