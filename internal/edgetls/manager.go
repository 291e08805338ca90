package edgetls

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
)

// Errors a handshake is refused with (counted by reason).
var (
	ErrNoSNI       = errors.New("edgetls: the client sent no server name (SNI)")
	ErrUnknownName = errors.New("edgetls: no certificate for this name")
)

// Manager holds an edge's certificates and its tls.Config.
type Manager struct {
	cfg    Config
	logger *slog.Logger
	now    func() time.Time
	tls    *tls.Config

	files   []*fileCert               // owned by Run after New
	byName  atomic.Pointer[certIndex] // the file certificates in use
	acme    *acmeManager              // nil without ACME
	refused [2]atomic.Int64           // no SNI, unknown name

	mu      sync.Mutex
	alerted map[string]bool // certificates (by serial) an expiry alert was sent for
}

// New loads the certificate files (an error names the file that does not
// parse or whose key does not fit) and prepares ACME; Run starts the work.
func New(cfg Config) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Manager{cfg: cfg, logger: cfg.Logger, now: cfg.Now, alerted: map[string]bool{}}
	if m.logger == nil {
		m.logger = slog.New(slog.DiscardHandler)
	}
	if m.now == nil {
		m.now = time.Now
	}
	var certs []*tls.Certificate
	for _, f := range cfg.Certificates {
		fc := &fileCert{files: f}
		if err := fc.load(); err != nil {
			return nil, fmt.Errorf("edgetls: %w", err)
		}
		m.files = append(m.files, fc)
		certs = append(certs, fc.cert)
	}
	idx := indexOf(certs)
	m.byName.Store(&idx)
	m.tls = &tls.Config{
		MinVersion: tls.VersionTLS12,
		// TLS 1.2: AEAD with ECDHE only (TLS 1.3's suites are all AEAD
		// and not configurable).
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: m.getCertificate,
	}
	if cfg.ACME != nil && len(cfg.ACME.Names) > 0 {
		a, err := newACME(*cfg.ACME, m.logger, m.event)
		if err != nil {
			return nil, err
		}
		m.acme = a
		m.tls.NextProtos = append(m.tls.NextProtos, acmeTLS1)
	}
	if !cfg.TicketKey.IsZero() {
		setTicketKeys(m.tls, cfg.TicketKey, cfg.TicketPeriod, m.now())
	}
	return m, nil
}

// TLSConfig is the server config: one for the life of the Manager (ticket
// keys and certificates change inside it). Callers add protocols with
// Clone only where the ticket keys need not follow (HTTP/3).
func (m *Manager) TLSConfig() *tls.Config { return m.tls }

// getCertificate picks the certificate for a ClientHello: a file
// certificate for the name, else ACME's (which also answers TLS-ALPN-01
// challenges). No SNI, or a name no certificate covers, fails the handshake:
// a client is never shown another site's certificate.
func (m *Manager) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if name == "" {
		m.refused[0].Add(1)
		return nil, ErrNoSNI
	}
	if c := (*m.byName.Load()).lookup(name); c != nil {
		return c, nil
	}
	if m.acme != nil && m.acme.covers(name) {
		return m.acme.getCertificate(hello)
	}
	m.refused[1].Add(1)
	return nil, ErrUnknownName
}

// Refused counts handshakes refused for no SNI and for an unknown name.
func (m *Manager) Refused() (noSNI, unknown int64) {
	return m.refused[0].Load(), m.refused[1].Load()
}

// HandleHTTPChallenge answers an ACME HTTP-01 challenge request (from any
// edge's order: the tokens are in the shared storage) and reports whether
// r was one.
func (m *Manager) HandleHTTPChallenge(w http.ResponseWriter, r *http.Request) bool {
	if m.acme == nil {
		return false
	}
	return m.acme.issuer.HandleHTTPChallenge(w, r)
}

// IsChallenge reports whether r is an ACME HTTP-01 challenge request.
func IsChallenge(r *http.Request) bool { return certmagic.LooksLikeHTTPChallenge(r) }

// Run reloads changed certificate files, rotates the ticket keys, manages
// the ACME certificates and reports certificates close to expiry, until ctx
// ends.
func (m *Manager) Run(ctx context.Context) error {
	if m.acme != nil {
		if err := m.acme.start(ctx); err != nil {
			return err
		}
		defer m.acme.stop()
	}
	reload := time.NewTicker(m.cfg.ReloadInterval)
	defer reload.Stop()
	var rotate <-chan time.Time
	var rot *time.Timer
	if !m.cfg.TicketKey.IsZero() {
		rot = time.NewTimer(nextRotation(m.cfg.TicketPeriod, m.now()).Sub(m.now()))
		defer rot.Stop()
		rotate = rot.C
	}
	expiry := time.NewTicker(m.expiryInterval())
	defer expiry.Stop()
	m.checkExpiry()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-reload.C:
			m.reloadFiles()
		case <-rotate:
			setTicketKeys(m.tls, m.cfg.TicketKey, m.cfg.TicketPeriod, m.now())
			d := nextRotation(m.cfg.TicketPeriod, m.now()).Sub(m.now())
			rot.Reset(d)
			m.logger.Info("session ticket keys rotated", "next_in", d.Round(time.Second))
		case <-expiry.C:
			m.checkExpiry()
		}
	}
}

func (m *Manager) expiryInterval() time.Duration {
	if m.acme != nil {
		return m.cfg.ACME.CheckInterval
	}
	return time.Hour
}

// reloadFiles rereads every certificate file; a pair that changed and
// loads replaces the one in use, one that fails keeps it (and is reported).
func (m *Manager) reloadFiles() {
	changed := false
	for _, fc := range m.files {
		ok, err := fc.check()
		if err != nil {
			m.event(true, fmt.Sprintf("tls: certificate reload failed, the edge keeps serving the previous one: %v", err))
		}
		if ok {
			changed = true
			m.event(false, fmt.Sprintf("tls: certificate %s reloaded (names %s, valid until %s)", fc.files.CertFile,
				strings.Join(fc.cert.Leaf.DNSNames, ","), fc.cert.Leaf.NotAfter.UTC().Format(time.RFC3339)))
		}
	}
	if changed {
		certs := make([]*tls.Certificate, 0, len(m.files))
		for _, fc := range m.files {
			certs = append(certs, fc.cert)
		}
		idx := indexOf(certs)
		m.byName.Store(&idx)
	}
}

// checkExpiry sends an alert once per certificate whose remaining validity
// is under a sixth of its lifetime (at most 14 days): ACME renews at a
// third, so an ACME certificate gets here only when renewal keeps failing.
func (m *Manager) checkExpiry() {
	now := m.now()
	for _, c := range m.Certificates() {
		leaf := c.leaf
		life := leaf.NotAfter.Sub(leaf.NotBefore)
		left := leaf.NotAfter.Sub(now)
		if left > min(life/6, 14*24*time.Hour) {
			continue
		}
		key := leaf.SerialNumber.String()
		m.mu.Lock()
		seen := m.alerted[key]
		m.alerted[key] = true
		m.mu.Unlock()
		if !seen {
			m.event(true, fmt.Sprintf("tls: certificate for %s expires at %s (%s left)", strings.Join(leaf.DNSNames, ","),
				leaf.NotAfter.UTC().Format(time.RFC3339), left.Round(time.Second)))
		}
	}
}

func (m *Manager) event(alert bool, msg string) {
	if alert {
		m.logger.Warn(msg)
	} else {
		m.logger.Info(msg)
	}
	if m.cfg.Event != nil {
		m.cfg.Event(alert, msg)
	}
}

// Cert is a certificate the edge serves.
type Cert struct {
	Names    []string
	Issuer   string
	NotAfter time.Time
	Source   string // "file" or "acme"
	leaf     *x509.Certificate
}

// Certificates returns the certificates in use, files first.
func (m *Manager) Certificates() []Cert {
	var out []Cert
	seen := map[*tls.Certificate]bool{}
	for _, c := range *m.byName.Load() {
		if seen[c] {
			continue
		}
		seen[c] = true
		out = append(out, certOf(c.Leaf, "file"))
	}
	if m.acme != nil {
		for _, leaf := range m.acme.leaves() {
			out = append(out, certOf(leaf, "acme"))
		}
	}
	slices.SortFunc(out, func(a, b Cert) int {
		return strings.Compare(a.Source+strings.Join(a.Names, ","), b.Source+strings.Join(b.Names, ","))
	})
	return out
}

func certOf(leaf *x509.Certificate, source string) Cert {
	return Cert{Names: leaf.DNSNames, Issuer: leaf.Issuer.String(), NotAfter: leaf.NotAfter, Source: source, leaf: leaf}
}
