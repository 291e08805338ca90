package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// TLS is HTTPS at every edge (docs/adr/0013-edge-tls.md): certificates from
// files, or obtained and renewed over ACME, and what plain HTTP does.
type TLS struct {
	// HTTPSAddr is where every edge serves HTTPS (edges[].https_addr
	// overrides it per edge).
	HTTPSAddr string `yaml:"https_addr"`
	// RedirectHTTP answers plain-HTTP requests with 308 to https (ACME
	// challenges and the edge's own paths excepted).
	RedirectHTTP bool `yaml:"redirect_http"`
	// HSTS is the Strict-Transport-Security max-age sent over HTTPS; 0 = not sent.
	HSTS time.Duration `yaml:"hsts"`
	// HTTP3 also serves HTTP/3 (QUIC, UDP) on the HTTPS address and
	// advertises it with Alt-Svc.
	HTTP3 bool `yaml:"http3"`
	// MaxStreams is HTTP/2's (and HTTP/3's) concurrent streams per connection.
	MaxStreams int `yaml:"max_streams"`
	// Certificates are files, reloaded when they change.
	Certificates []CertFile `yaml:"certificates"`
	// ACME obtains and renews certificates automatically.
	ACME ACME `yaml:"acme"`
}

// CertFile is a certificate chain and its key, PEM files.
type CertFile struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// ACME is automatic certificates (HTTP-01 and TLS-ALPN-01).
type ACME struct {
	Email        string   `yaml:"email"`
	DirectoryURL string   `yaml:"directory_url"`
	CAFile       string   `yaml:"ca_file"`
	Names        []string `yaml:"names"`
	// CheckInterval is how often each edge looks at its certificates'
	// expiry (renewal starts when a third of the lifetime is left).
	CheckInterval time.Duration `yaml:"check_interval"`
}

// LetsEncrypt is the default ACME directory.
const LetsEncrypt = "https://acme-v02.api.letsencrypt.org/directory"

func defaultTLS() TLS {
	return TLS{
		HTTPSAddr: "127.0.0.1:8443", RedirectHTTP: true, MaxStreams: 100, Certificates: []CertFile{},
		ACME: ACME{DirectoryURL: LetsEncrypt, Names: []string{}, CheckInterval: 10 * time.Minute},
	}
}

// Enabled reports whether TLS is configured: certificate files or ACME names.
func (t TLS) Enabled() bool { return len(t.Certificates) > 0 || len(t.ACME.Names) > 0 }

// EdgeHTTPSAddr is the HTTPS address of edge i ("" when TLS is off).
func (c *Config) EdgeHTTPSAddr(i int) string {
	if !c.TLS.Enabled() {
		return ""
	}
	if a := c.Edges[i].HTTPSAddr; a != "" {
		return a
	}
	return c.TLS.HTTPSAddr
}

// validateTLS checks the tls section. Certificate files are read: `up`
// refuses a file that does not parse or a key that does not match, naming
// the file.
func (c *Config) validateTLS(bad func(field, format string, args ...any), checkAddr func(field, addr string)) {
	t := c.TLS
	for i, e := range c.Edges {
		if e.HTTPSAddr != "" {
			checkAddr(fmt.Sprintf("edges[%d].https_addr", i), e.HTTPSAddr)
		}
	}
	if !t.Enabled() {
		return
	}
	checkAddr("tls.https_addr", t.HTTPSAddr)
	if len(t.ACME.Names) == 0 && c.Site.URL == "" {
		// The default would be https://IP:port, and a client sends no
		// server name (SNI) for an IP: the edge could not pick a certificate.
		bad("site.url", "must be set (https://NAME[:PORT], a name the certificates cover) when tls.certificates is used")
	}
	if len(c.Edges) > 1 {
		seen := map[string]bool{}
		for i := range c.Edges {
			a := c.EdgeHTTPSAddr(i)
			if seen[a] {
				bad(fmt.Sprintf("edges[%d].https_addr", i), "address %s is already used by another edge: give each edge its own https_addr", a)
			}
			seen[a] = true
		}
	}
	if t.HSTS < 0 || t.HSTS > 2*365*24*time.Hour {
		bad("tls.hsts", "must be 0 (off) to 17520h, got %s", t.HSTS)
	}
	if t.MaxStreams < 1 || t.MaxStreams > 1000 {
		bad("tls.max_streams", "must be 1 to 1000, got %d", t.MaxStreams)
	}
	for i, cf := range t.Certificates {
		f := fmt.Sprintf("tls.certificates[%d]", i)
		if !filepath.IsAbs(cf.CertFile) {
			bad(f+".cert_file", "must be an absolute path, got %q", cf.CertFile)
			continue
		}
		if !filepath.IsAbs(cf.KeyFile) {
			bad(f+".key_file", "must be an absolute path, got %q", cf.KeyFile)
			continue
		}
		if field, err := CheckCertFile(cf); err != nil {
			bad(f+"."+field, "%v", err)
		}
	}
	a := t.ACME
	if len(a.Names) == 0 {
		return
	}
	u, err := url.Parse(a.DirectoryURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		bad("tls.acme.directory_url", "must be an https:// URL, got %q", a.DirectoryURL)
	}
	if a.Email != "" && (!strings.Contains(a.Email, "@") || strings.ContainsAny(a.Email, " \t\r\n'\"")) {
		bad("tls.acme.email", "must be an e-mail address, got %q", a.Email)
	}
	if a.CAFile != "" {
		if !filepath.IsAbs(a.CAFile) {
			bad("tls.acme.ca_file", "must be an absolute path, got %q", a.CAFile)
		} else if b, err := os.ReadFile(a.CAFile); err != nil {
			bad("tls.acme.ca_file", "%v", err)
		} else if !x509.NewCertPool().AppendCertsFromPEM(b) {
			bad("tls.acme.ca_file", "%s holds no PEM certificate", a.CAFile)
		}
	}
	for i, n := range a.Names {
		if !validHostname(n) {
			bad(fmt.Sprintf("tls.acme.names[%d]", i), "must be a DNS name such as www.example.org, got %q", n)
		}
	}
	if a.CheckInterval < time.Second || a.CheckInterval > 24*time.Hour {
		bad("tls.acme.check_interval", "must be 1s to 24h, got %s", a.CheckInterval)
	}
}

// CheckCertFile loads a certificate file and its key, and returns the field
// ("cert_file" or "key_file") and an error naming the file when they do not
// parse or do not match.
func CheckCertFile(cf CertFile) (string, error) {
	certPEM, err := os.ReadFile(cf.CertFile)
	if err != nil {
		return "cert_file", err
	}
	keyPEM, err := os.ReadFile(cf.KeyFile)
	if err != nil {
		return "key_file", err
	}
	if b, _ := pem.Decode(certPEM); b == nil || b.Type != "CERTIFICATE" {
		return "cert_file", fmt.Errorf("%s: no PEM certificate", cf.CertFile)
	} else if _, err := x509.ParseCertificate(b.Bytes); err != nil {
		return "cert_file", fmt.Errorf("%s: %v", cf.CertFile, err)
	}
	if b, _ := pem.Decode(keyPEM); b == nil || !strings.Contains(b.Type, "PRIVATE KEY") {
		return "key_file", fmt.Errorf("%s: no PEM private key", cf.KeyFile)
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		return "key_file", fmt.Errorf("%s does not fit %s: %v", cf.KeyFile, cf.CertFile, err)
	}
	return "", nil
}

// validHostname: letters, digits, hyphens and dots, a wildcard first label
// allowed, at most 253 characters.
func validHostname(n string) bool {
	if len(n) == 0 || len(n) > 253 || strings.HasSuffix(n, ".") {
		return false
	}
	for i, l := range strings.Split(n, ".") {
		if l == "*" && i == 0 {
			continue
		}
		if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range []byte(l) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}
