package edgetls

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"strings"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

const acmeTLS1 = "acme-tls/1" // ALPN protocol of TLS-ALPN-01 (RFC 8737)

// acmeManager obtains and renews the certificates of the ACME names with
// certmagic. Every edge uses the same storage directory: certmagic takes a
// lock there per name before it orders, and whoever gets it second finds
// the certificate in storage and loads it instead of ordering again. The
// challenge tokens are kept there too, so any edge answers a challenge
// another edge's order started.
type acmeManager struct {
	cfg    ACME
	names  map[string]bool
	cache  *certmagic.Cache
	magic  *certmagic.Config
	issuer *certmagic.ACMEIssuer
	event  func(alert bool, msg string)
	logger *slog.Logger
}

func newACME(a ACME, logger *slog.Logger, event func(bool, string)) (*acmeManager, error) {
	zl := zap.New(newSlogCore(logger.Handler().WithAttrs([]slog.Attr{slog.String("component", "acme")})))
	m := &acmeManager{cfg: a, names: map[string]bool{}, event: event, logger: logger}
	for _, n := range a.Names {
		m.names[strings.ToLower(n)] = true
	}
	var magic *certmagic.Config
	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return magic, nil },
		RenewCheckInterval: a.CheckInterval,
		Logger:             zl,
	})
	magic = certmagic.New(m.cache, certmagic.Config{
		Storage: &certmagic.FileStorage{Path: a.Storage},
		Logger:  zl,
		OnEvent: m.onEvent,
	})
	m.issuer = certmagic.NewACMEIssuer(magic, certmagic.ACMEIssuer{
		CA: a.DirectoryURL, Email: a.Email, Agreed: true, TrustedRoots: a.Roots,
		ListenHost: a.ListenHost, AltHTTPPort: a.HTTPPort, AltTLSALPNPort: a.TLSPort,
		Logger: zl,
	})
	magic.Issuers = []certmagic.Issuer{m.issuer}
	m.magic = magic
	return m, nil
}

// start has certmagic load or obtain every name in the background (its own
// retries with backoff) and keep them renewed.
func (m *acmeManager) start(ctx context.Context) error {
	if err := m.magic.ManageAsync(ctx, m.cfg.Names); err != nil {
		return fmt.Errorf("edgetls: acme: %w", err)
	}
	return nil
}

func (m *acmeManager) stop() { m.cache.Stop() }

func (m *acmeManager) covers(name string) bool {
	if m.names[name] {
		return true
	}
	_, rest, ok := strings.Cut(name, ".")
	return ok && m.names["*."+rest]
}

func (m *acmeManager) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return m.magic.GetCertificate(hello)
}

// leaves are the managed certificates in the cache.
func (m *acmeManager) leaves() []*x509.Certificate {
	var out []*x509.Certificate
	for _, n := range m.cfg.Names {
		for _, c := range m.cache.AllMatchingCertificates(n) {
			if c.Leaf != nil {
				out = append(out, c.Leaf)
			}
		}
	}
	return dedupe(out)
}

func dedupe(in []*x509.Certificate) []*x509.Certificate {
	seen := map[string]bool{}
	out := in[:0]
	for _, c := range in {
		k := c.SerialNumber.String()
		if !seen[k] {
			seen[k] = true
			out = append(out, c)
		}
	}
	return out
}

// onEvent turns certmagic's events into the edge's: obtained, failed.
func (m *acmeManager) onEvent(_ context.Context, event string, data map[string]any) error {
	switch event {
	case "cert_obtained":
		m.event(false, fmt.Sprintf("tls: acme certificate obtained for %v (renewal: %v)", data["identifier"], data["renewal"]))
	case "cert_failed":
		m.event(true, fmt.Sprintf("tls: acme certificate for %v failed (renewal: %v, retried with backoff): %v", data["identifier"], data["renewal"], data["error"]))
	}
	return nil
}
