package edgetls

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"strings"
)

// fileCert is one configured pair of files and what was loaded from them.
type fileCert struct {
	files CertFile
	cert  *tls.Certificate // in use; nil before the first good load
	// certPEM and keyPEM are the bytes cert was loaded from; badCert and
	// badKey the last contents that failed (reported once, not every check).
	certPEM, keyPEM []byte
	badCert, badKey []byte
	failedOnce      bool
}

// loadPair parses a certificate chain and its key, naming the file at fault.
func loadPair(f CertFile, certPEM, keyPEM []byte) (*tls.Certificate, error) {
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		if _, perr := x509ParseFirst(certPEM); perr != nil {
			return nil, fmt.Errorf("%s: %v", f.CertFile, perr)
		}
		return nil, fmt.Errorf("%s does not fit %s: %v", f.KeyFile, f.CertFile, err)
	}
	if len(c.Leaf.DNSNames) == 0 {
		return nil, fmt.Errorf("%s: the certificate names no DNS name (subjectAltName)", f.CertFile)
	}
	return &c, nil
}

func x509ParseFirst(certPEM []byte) (*x509.Certificate, error) {
	for {
		var b *pem.Block
		b, certPEM = pem.Decode(certPEM)
		if b == nil {
			return nil, fmt.Errorf("no PEM certificate")
		}
		if b.Type == "CERTIFICATE" {
			return x509.ParseCertificate(b.Bytes)
		}
	}
}

// load reads the files the first time: any failure is returned.
func (fc *fileCert) load() error {
	certPEM, err := os.ReadFile(fc.files.CertFile)
	if err != nil {
		return err
	}
	keyPEM, err := os.ReadFile(fc.files.KeyFile)
	if err != nil {
		return err
	}
	cert, err := loadPair(fc.files, certPEM, keyPEM)
	if err != nil {
		return err
	}
	fc.cert, fc.certPEM, fc.keyPEM = cert, certPEM, keyPEM
	return nil
}

// check reads the files again. It returns the certificate to use (the new
// one, or the old one when nothing changed or the new contents fail), and,
// once per bad contents that stayed the same over two checks (a rotation
// writes two files, not at once), the error to report.
func (fc *fileCert) check() (changed bool, report error) {
	certPEM, err1 := os.ReadFile(fc.files.CertFile)
	keyPEM, err2 := os.ReadFile(fc.files.KeyFile)
	if err1 == nil && err2 == nil && bytes.Equal(certPEM, fc.certPEM) && bytes.Equal(keyPEM, fc.keyPEM) {
		fc.badCert, fc.badKey, fc.failedOnce = nil, nil, false
		return false, nil
	}
	var cert *tls.Certificate
	err := err1
	if err == nil {
		err = err2
	}
	if err == nil {
		cert, err = loadPair(fc.files, certPEM, keyPEM)
	}
	if err == nil {
		fc.cert, fc.certPEM, fc.keyPEM = cert, certPEM, keyPEM
		fc.badCert, fc.badKey, fc.failedOnce = nil, nil, false
		return true, nil
	}
	same := bytes.Equal(certPEM, fc.badCert) && bytes.Equal(keyPEM, fc.badKey)
	fc.badCert, fc.badKey = certPEM, keyPEM
	if !same {
		fc.failedOnce = false
		return false, nil // seen once: maybe half of a rotation
	}
	if fc.failedOnce {
		return false, nil // reported already
	}
	fc.failedOnce = true
	return false, err
}

// certIndex maps names to certificates: exact names and "*.rest" wildcards.
type certIndex map[string]*tls.Certificate

func indexOf(certs []*tls.Certificate) certIndex {
	idx := certIndex{}
	for _, c := range certs {
		for _, n := range c.Leaf.DNSNames {
			n = strings.ToLower(n)
			if _, dup := idx[n]; !dup { // the first configured wins
				idx[n] = c
			}
		}
	}
	return idx
}

// lookup finds the certificate for an SNI name (already lowercased).
func (idx certIndex) lookup(name string) *tls.Certificate {
	if c := idx[name]; c != nil {
		return c
	}
	if _, rest, ok := strings.Cut(name, "."); ok {
		return idx["*."+rest]
	}
	return nil
}
