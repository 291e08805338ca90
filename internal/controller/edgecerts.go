package controller

// Certificate files for the edges on Nomad (docs/adr/0033-tls-for-edges-on-nomad.md):
// the edges' hosts cannot read tls.certificates, the controller's files. The
// controller reads each chain and key and writes them as items of every
// edge job's variable (nomad/jobs/JOB-edge-ID, readable by that job's tasks
// only); the job renders each item into the task's secrets/ (0600), and the
// edge reads them from there as it reads certificate files on one machine,
// every 2 s. A renewed file reaches the variable on the controller's next
// check, the template renders it again in place, and the edge loads it: no
// restart, no connection dropped. The key is never in the job, its
// command line, its environment or a log.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"strings"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/nomadlaunch"
)

// edgeCertCheck is how often the controller reads the certificate files
// (the edges' own reload interval on one machine).
const edgeCertCheck = 2 * time.Second

// edgeTLSState is what the edges' variables hold now.
type edgeTLSState struct {
	// specs are the edges' specs as submitted, by job: a renewal writes
	// the same spec beside the new certificate.
	specs map[string][]byte
	// items are the certificate items every edge's variable holds.
	items map[string]string
}

// edgeCertFile is certificate k's rendered chain and key in the task's
// secrets/ (the names the edge's spec gives, relative to its spec).
func edgeCertFile(k int) (cert, key string) {
	return fmt.Sprintf("tls-cert-%d.pem", k), fmt.Sprintf("tls-key-%d.pem", k)
}

// edgeCertItem is certificate k's items in the edge job's variable.
func edgeCertItem(k int) (cert, key string) {
	return fmt.Sprintf("tls_cert_%d", k), fmt.Sprintf("tls_key_%d", k)
}

// edgeSecretFiles are what an edge job renders besides its spec.
func (c *Controller) edgeSecretFiles() []nomadlaunch.SecretFile {
	var fs []nomadlaunch.SecretFile
	for k := range c.cfg.TLS.Certificates {
		cf, kf := edgeCertFile(k)
		ci, ki := edgeCertItem(k)
		fs = append(fs, nomadlaunch.SecretFile{Item: ci, Name: cf}, nomadlaunch.SecretFile{Item: ki, Name: kf})
	}
	return fs
}

// readEdgeCerts reads every tls.certificates pair: the items to write, or
// an error naming the file at fault (never its contents).
func (c *Controller) readEdgeCerts() (map[string]string, error) {
	items := map[string]string{}
	for k, f := range c.cfg.TLS.Certificates {
		certPEM, err := os.ReadFile(f.CertFile)
		if err != nil {
			return nil, fmt.Errorf("tls.certificates[%d]: %w", k, err)
		}
		keyPEM, err := os.ReadFile(f.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls.certificates[%d]: %w", k, err)
		}
		// crypto/tls's errors name no key material.
		if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
			return nil, fmt.Errorf("tls.certificates[%d]: %s and %s: %v", k, f.CertFile, f.KeyFile, err)
		}
		ci, ki := edgeCertItem(k)
		items[ci], items[ki] = string(certPEM), string(keyPEM)
	}
	return items, nil
}

// submitEdge submits edge job rj with spec and the certificate items
// (none when TLS is off), and remembers both for renewals.
func (n *nomadRoles) submitEdge(ctx context.Context, rj nomadlaunch.RoleJob, spec api.EdgeSpec, items map[string]string) error {
	b, err := n.submitFiles(ctx, rj, spec, items)
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.edgeTLS.specs == nil {
		n.edgeTLS.specs = map[string][]byte{}
	}
	n.edgeTLS.specs[rj.Job] = b
	n.edgeTLS.items = items
	return nil
}

// watchEdgeCerts delivers changed certificate files to the edges on Nomad
// until ctx ends. Contents that do not load (a rotation half done: two
// files are not written at once) are left for the next check; when the
// same fault is read twice in a row, it is reported once, as an alert, and
// the edges keep serving the certificate they have.
func (c *Controller) watchEdgeCerts(ctx context.Context) {
	var w certWatch
	t := time.NewTicker(edgeCertCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		items, err := c.readEdgeCerts()
		if err != nil {
			if w.readFailed(err) {
				c.eventWith(api.EventKindTLS, "", map[string]any{"level": "alert"},
					"certificate files not delivered to the edges on Nomad (they keep serving the previous certificate): %v", err)
			}
			continue
		}
		w.readOK()
		err = c.deliverEdgeCerts(ctx, items)
		if errors.Is(err, nomadlaunch.ErrTakenOver) {
			return
		}
		if w.deliverFailed(err) && ctx.Err() == nil {
			c.logger.Warn("tls: deliver the certificate files to the edges on Nomad; retrying every check", "err", err)
		}
	}
}

// certWatch is what watchEdgeCerts remembers between checks: the last
// fault reading the files and whether it was reported, the last delivery
// error logged.
type certWatch struct {
	bad, undelivered string
	reported         bool
}

// readFailed records a fault reading the files; true when it is to be
// reported: the same fault as the previous check's, not reported yet.
func (w *certWatch) readFailed(err error) bool {
	msg := err.Error()
	if msg != w.bad {
		w.bad, w.reported = msg, false
		return false // seen once: maybe half of a rotation
	}
	if w.reported {
		return false
	}
	w.reported = true
	return true
}

// readOK records files that load: a later fault starts afresh.
func (w *certWatch) readOK() { w.bad, w.reported = "", false }

// deliverFailed records a delivery's outcome; true when err is to be logged
// (a failure unlike the previous one: Nomad out of reach is logged once).
func (w *certWatch) deliverFailed(err error) bool {
	if err == nil {
		w.undelivered = ""
		return false
	}
	if err.Error() == w.undelivered {
		return false
	}
	w.undelivered = err.Error()
	return true
}

// deliverEdgeCerts writes items into every edge's variable when they differ
// from what the variables hold; what failed is tried again on the next
// check (the state changes only once every edge has them).
func (c *Controller) deliverEdgeCerts(ctx context.Context, items map[string]string) error {
	n := c.roles
	if n == nil {
		return nil
	}
	n.mu.Lock()
	same := maps.EqualFunc(items, n.edgeTLS.items, func(a, b string) bool { return a == b })
	specs := maps.Clone(n.edgeTLS.specs)
	n.mu.Unlock()
	if same {
		return nil
	}
	// Only the site's owner writes (ADR 31): a controller back from a
	// cut, with older files on its host, stands down here instead of
	// putting them back over its successor's.
	if err := c.fenceNomad(ctx); err != nil {
		return err
	}
	for i := range c.cfg.Edges {
		rj, err := c.edgeRoleJob(i)
		if err != nil {
			return err
		}
		spec, ok := specs[rj.Job]
		if !ok {
			continue // not submitted (yet)
		}
		if err := n.r.WriteItems(ctx, rj, spec, items); err != nil {
			return err
		}
	}
	n.mu.Lock()
	n.edgeTLS.items = items
	n.mu.Unlock()
	c.event(api.EventKindTLS, "", "certificate files changed: delivered to the %d edges on Nomad", len(specs))
	return nil
}

// servedCerts is what edge i on Nomad serves for the certificates the
// controller delivered: one handshake per certificate, by one of its names
// (a wildcard's with a label of ours), on the edge's HTTPS address, the
// chain not verified (a private CA, a name not yet pointed here): the
// status says what is served, the visitors' clients judge it. An edge that
// does not answer within a second is left out, as on one machine.
func (c *Controller) servedCerts(i int) []api.CertStatus {
	addr := c.cfg.EdgeHTTPSAddr(i)
	if c.roles == nil || addr == "" {
		return nil
	}
	c.roles.mu.Lock()
	items := c.roles.edgeTLS.items
	c.roles.mu.Unlock()
	var out []api.CertStatus
	for k := range c.cfg.TLS.Certificates {
		ci, _ := edgeCertItem(k)
		name := firstName([]byte(items[ci]))
		if name == "" {
			continue
		}
		d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: time.Second},
			Config: &tls.Config{ServerName: name, InsecureSkipVerify: true}} //nolint:gosec // see above
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := d.DialContext(ctx, "tcp", addr)
		cancel()
		if err != nil {
			continue
		}
		certs := conn.(*tls.Conn).ConnectionState().PeerCertificates
		conn.Close()
		if len(certs) == 0 {
			continue
		}
		leaf := certs[0]
		out = append(out, api.CertStatus{Names: leaf.DNSNames, Issuer: leaf.Issuer.String(),
			NotAfter: leaf.NotAfter.UTC().Format(time.RFC3339), Source: "file"})
	}
	return out
}

// firstName is a name to ask for the leaf of certPEM by (SNI): its first
// DNS name, a wildcard's first label replaced; "" when none parses.
func firstName(certPEM []byte) string {
	b, _ := pem.Decode(certPEM)
	if b == nil {
		return ""
	}
	leaf, err := x509.ParseCertificate(b.Bytes)
	if err != nil || len(leaf.DNSNames) == 0 {
		return ""
	}
	n := leaf.DNSNames[0]
	if rest, ok := strings.CutPrefix(n, "*."); ok {
		n = "status-check." + rest
	}
	return n
}
