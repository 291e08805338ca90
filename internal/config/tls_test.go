package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func selfSigned(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	kd, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), 0o600)
	return certFile, keyFile
}

func TestValidateTLS(t *testing.T) {
	dir := t.TempDir()
	cert, key := selfSigned(t, dir, "www.site.test")
	_, otherKey := selfSigned(t, dir, "other.test")
	garbage := filepath.Join(dir, "garbage.pem")
	os.WriteFile(garbage, []byte("hello"), 0o600)
	tests := []struct {
		name    string
		yaml    string
		wantErr string // "" = valid
	}{
		{"files", "site:\n  url: https://www.site.test:8443\ntls:\n  certificates:\n    - {cert_file: " + cert + ", key_file: " + key + "}\n", ""},
		{"acme", "tls:\n  acme:\n    email: a@b.test\n    names: [www.site.test]\n", ""},
		{"cert that does not parse", "site:\n  url: https://x.test\ntls:\n  certificates:\n    - {cert_file: " + garbage + ", key_file: " + key + "}\n",
			"tls.certificates[0].cert_file: " + garbage + ": no PEM certificate"},
		{"key that does not fit", "site:\n  url: https://x.test\ntls:\n  certificates:\n    - {cert_file: " + cert + ", key_file: " + otherKey + "}\n",
			"tls.certificates[0].key_file: " + otherKey + " does not fit " + cert},
		{"missing file", "site:\n  url: https://x.test\ntls:\n  certificates:\n    - {cert_file: /nonexistent.pem, key_file: " + key + "}\n",
			"tls.certificates[0].cert_file: open /nonexistent.pem"},
		{"relative path", "site:\n  url: https://x.test\ntls:\n  certificates:\n    - {cert_file: cert.pem, key_file: " + key + "}\n",
			"tls.certificates[0].cert_file: must be an absolute path"},
		{"files without site.url", "tls:\n  certificates:\n    - {cert_file: " + cert + ", key_file: " + key + "}\n", "site.url: must be set"},
		{"bad acme name", "tls:\n  acme:\n    names: [\"www.site.test/x\"]\n", "tls.acme.names[0]: must be a DNS name"},
		{"plain-http directory", "tls:\n  acme:\n    directory_url: http://ca.test/dir\n    names: [a.test]\n", "tls.acme.directory_url: must be an https:// URL"},
		{"https_addr shared by two edges", "edges:\n  - {id: edge-1, addr: 127.0.0.1:8080}\n  - {id: edge-2, addr: 127.0.0.2:8080}\ntls:\n  acme:\n    names: [a.test]\n",
			"edges[1].https_addr: address 127.0.0.1:8443 is already used by another edge"},
		{"https_addr per edge", "edges:\n  - {id: edge-1, addr: 127.0.0.1:8080}\n  - {id: edge-2, addr: 127.0.0.2:8080, https_addr: 127.0.0.2:8443}\ntls:\n  acme:\n    names: [a.test]\n", ""},
		{"https_addr collides with an edge's http addr", "edges:\n  - {id: edge-1, addr: 127.0.0.1:8443}\ntls:\n  acme:\n    names: [a.test]\n",
			"edges[0].https_addr: address 127.0.0.1:8443 is already used by edges[0].addr"},
		{"max_streams", "tls:\n  max_streams: 0\n  acme:\n    names: [a.test]\n", "tls.max_streams: must be 1 to 1000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("cfg.yaml", []byte(tt.yaml))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one with %q", err, tt.wantErr)
			}
		})
	}
}

// TestValidateTLSEdgesOnNomad: edges run by Nomad serve HTTPS from
// tls.certificates (the controller delivers the files through each edge
// job's variable), on their own host's IP; ACME stays refused, and files
// a Nomad Variable cannot hold are refused naming tls.certificates.
func TestValidateTLSEdgesOnNomad(t *testing.T) {
	dir := t.TempDir()
	cert, key := selfSigned(t, dir, "www.site.test")
	big := filepath.Join(dir, "big.pem") // a chain padded past the bound: the size is checked first
	pad := strings.Repeat("# padding\n", MaxNomadCertBytes/10)
	b, _ := os.ReadFile(cert)
	os.WriteFile(big, append([]byte(pad), b...), 0o600)
	const nomad = "scheduler:\n  kind: nomad\n  roles: [edge]\nsite:\n  url: https://www.site.test\n"
	edge := func(https string) string {
		return "edges:\n  - {id: edge-1, region: default, addr: '10.1.0.2:80'" + https + "}\n"
	}
	certs := func(c string) string {
		return "tls:\n  certificates:\n    - {cert_file: " + c + ", key_file: " + key + "}\n"
	}
	tests := []struct {
		name, yaml, wantErr string
	}{
		{"certificates", nomad + edge(", https_addr: '10.1.0.2:443'") + certs(cert), ""},
		{"https on tls.https_addr's loopback", nomad + edge("") + certs(cert),
			`edges[0].https_addr: an edge on Nomad serves HTTPS on its host's IP, 10.1.0.2, on a port other than addr's: got "127.0.0.1:8443"`},
		{"https on another IP", nomad + edge(", https_addr: '10.1.0.3:443'") + certs(cert), "edges[0].https_addr: an edge on Nomad serves HTTPS on its host's IP"},
		{"more than a variable holds", nomad + edge(", https_addr: '10.1.0.2:443'") + certs(big),
			"tls.certificates: edges on Nomad get the certificate files through a Nomad Variable"},
		{"acme", nomad + edge(", https_addr: '10.1.0.2:443'") + "tls:\n  acme: {names: [www.site.test]}\n",
			"tls.acme.names: edges on Nomad (scheduler.roles: edge) cannot share the ACME storage across hosts: use tls.certificates"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("cfg.yaml", []byte(tt.yaml))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one with %q", err, tt.wantErr)
			}
		})
	}
}

func TestSiteURLWithTLS(t *testing.T) {
	c := Default()
	c.TLS.ACME.Names = []string{"www.site.test"}
	if got, want := c.SiteURL(), "https://www.site.test:8443"; got != want {
		t.Errorf("SiteURL = %s, want %s", got, want)
	}
	c.TLS.HTTPSAddr = "127.0.0.1:443"
	if got, want := c.SiteURL(), "https://www.site.test"; got != want {
		t.Errorf("SiteURL = %s, want %s", got, want)
	}
}
