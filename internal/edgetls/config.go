// Package edgetls is what an edge needs to terminate TLS
// (docs/adr/0013-edge-tls.md): certificates from files, reloaded when they
// change; certificates obtained and renewed over ACME (certmagic, with its
// storage shared by every edge so that one obtains and the others load);
// session ticket keys every edge derives from one purpose key, so a session
// resumes at any edge; and the server-side tls.Config (TLS 1.2+, AEAD
// suites with forward secrecy, no SNI or an unknown name refused).
package edgetls

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/scalepress/scalepress/internal/token"
)

// Config is what New builds a Manager from.
type Config struct {
	// Certificates are PEM files, checked for changes every ReloadInterval.
	Certificates []CertFile
	// ACME, when not nil, obtains and renews certificates for its names.
	ACME *ACME
	// TicketKey derives the session ticket keys (every edge holds the same
	// key, so tickets resume anywhere); zero: crypto/tls's own per-process
	// keys.
	TicketKey token.Key
	// TicketPeriod is how long one ticket key encrypts; tickets stay
	// valid for one period more.
	TicketPeriod time.Duration
	// ReloadInterval is how often certificate files are checked.
	ReloadInterval time.Duration
	// Event reports what an operator should know (a reload that failed, a
	// certificate obtained or failing, one about to expire); alert marks
	// the ones that need action. Nil: only logged.
	Event  func(alert bool, msg string)
	Logger *slog.Logger
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time
}

// pathOK: an absolute path, or a file name below the working directory
// (an edge on Nomad runs in its task's secrets/, where its certificates
// are rendered: docs/adr/0033-tls-for-edges-on-nomad.md).
func pathOK(p string) bool { return filepath.IsAbs(p) || filepath.IsLocal(p) }

// CertFile is a PEM certificate chain and its key.
type CertFile struct {
	CertFile string
	KeyFile  string
}

// ACME is automatic certificates.
type ACME struct {
	Email        string
	DirectoryURL string
	// Roots are trusted for the ACME server itself (nil: the system's).
	Roots *x509.CertPool
	Names []string
	// Storage is the directory shared by every edge: account, certificates,
	// locks and challenge tokens.
	Storage string
	// CheckInterval is how often certificates are checked for renewal.
	CheckInterval time.Duration
	// HTTPPort and TLSPort are where this edge answers challenges (its
	// HTTP and HTTPS ports); ListenHost their IP. The CA connects to port
	// 80 and 443 of the names: these differ only behind a port mapping
	// or in tests.
	ListenHost        string
	HTTPPort, TLSPort int
}

// DefaultConfig returns a Config without certificates.
func DefaultConfig() Config {
	return Config{TicketPeriod: 12 * time.Hour, ReloadInterval: 2 * time.Second}
}

// Validate names the field that is wrong.
func (c Config) Validate() error {
	if len(c.Certificates) == 0 && (c.ACME == nil || len(c.ACME.Names) == 0) {
		return errors.New("edgetls: no certificates and no acme names")
	}
	for i, f := range c.Certificates {
		if !pathOK(f.CertFile) || !pathOK(f.KeyFile) {
			return fmt.Errorf("edgetls: certificates[%d]: cert_file and key_file must be absolute paths or names in the working directory", i)
		}
	}
	if c.TicketPeriod < time.Second {
		return fmt.Errorf("edgetls: ticket_period %s: at least 1s", c.TicketPeriod)
	}
	if c.ReloadInterval <= 0 {
		return fmt.Errorf("edgetls: reload_interval %s: must be positive", c.ReloadInterval)
	}
	if a := c.ACME; a != nil {
		switch {
		case a.DirectoryURL == "":
			return errors.New("edgetls: acme.directory_url: empty")
		case a.Storage == "" || !filepath.IsAbs(a.Storage):
			return fmt.Errorf("edgetls: acme.storage %q: must be an absolute path", a.Storage)
		case a.CheckInterval <= 0:
			return fmt.Errorf("edgetls: acme.check_interval %s: must be positive", a.CheckInterval)
		}
	}
	return nil
}
