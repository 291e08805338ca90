package s3store

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scalepress/scalepress/test/tools"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue writes a server certificate for 127.0.0.1 and its key to dir.
func (ca testCA) issue(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestHTTPSWithCAFile: an https endpoint whose certificate chains to the
// configured CA is used; one signed by another CA, or checked against the
// system's roots, is refused before any request is sent.
func TestHTTPSWithCAFile(t *testing.T) {
	ca, other := newTestCA(t, "scalepress test CA"), newTestCA(t, "another CA")
	certFile, keyFile := ca.issue(t, t.TempDir())
	gw := tools.StartVersitygwTLS(t, "127.0.0.1:0", certFile, keyFile)
	gw.MakeBucket(t, "files")
	tests := []struct {
		name    string
		ca      []byte
		wantErr string
	}{
		{"the endpoint's CA", ca.pem, ""},
		{"another CA", other.pem, "certificate"},
		{"the system's roots", nil, "certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Endpoint, cfg.Bucket, cfg.AccessKey, cfg.SecretKey, cfg.CAPEM = gw.Endpoint, "files", gw.AccessKey, gw.SecretKey, tt.ca
			c, err := New(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			err = c.Check(ctx)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				if err := c.Create(ctx, "x", []byte("over tls")); err != nil {
					t.Fatalf("Create over https: %v", err)
				}
				if b, err := c.ReadAll(ctx, "x"); err != nil || string(b) != "over tls" {
					t.Fatalf("ReadAll over https = %q, %v", b, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrUnreachable) {
				t.Fatalf("Check = %v, want a refused certificate", err)
			}
		})
	}
}
