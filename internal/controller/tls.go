package controller

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/config"
	"github.com/scalepress/scalepress/internal/token"
)

// prepareTLS makes the ACME storage every edge shares: DIR/tls/acme, 0700,
// owned by the user the edges run as (they write the account, certificates,
// locks and challenge tokens there; nobody else reads the keys).
func (c *Controller) prepareTLS() error {
	if len(c.cfg.TLS.ACME.Names) == 0 {
		return nil
	}
	dir := c.layout.ACME()
	for _, d := range []string{dir[:len(dir)-len("/acme")], dir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("tls: %w", err)
		}
		if err := os.Chmod(d, 0o700); err != nil {
			return fmt.Errorf("tls: %w", err)
		}
	}
	if c.asRoot {
		if err := os.Chown(dir[:len(dir)-len("/acme")], c.roleUser.UID, c.roleUser.GID); err != nil {
			return fmt.Errorf("tls: %w", err)
		}
		if err := chownTree(dir, c.roleUser); err != nil {
			return fmt.Errorf("tls: %w", err)
		}
	}
	return nil
}

// edgeTLS is the TLS part of edge i's spec, nil when TLS is off.
func (c *Controller) edgeTLS(i int) (*api.TLSSpec, error) {
	t := c.cfg.TLS
	if !t.Enabled() {
		return nil, nil
	}
	s := &api.TLSSpec{
		Addr: c.cfg.EdgeHTTPSAddr(i), RedirectHTTP: t.RedirectHTTP, HSTS: int64(t.HSTS / time.Second),
		HTTP3: t.HTTP3, MaxStreams: t.MaxStreams, TicketKey: c.secrets.Key(token.TLSTicket).Hex(),
	}
	for k, f := range t.Certificates {
		if c.onNomad(config.RoleEdge) {
			// Rendered beside its spec from the job's variable
			// (edgecerts.go): the controller's paths are not on its host.
			f.CertFile, f.KeyFile = edgeCertFile(k)
		}
		s.Certificates = append(s.Certificates, api.CertFileSpec{CertFile: f.CertFile, KeyFile: f.KeyFile})
	}
	if a := t.ACME; len(a.Names) > 0 {
		s.ACME = &api.ACMESpec{Email: a.Email, DirectoryURL: a.DirectoryURL, Names: a.Names,
			Storage: c.layout.ACME(), CheckInterval: a.CheckInterval.String()}
		if a.CAFile != "" {
			b, err := os.ReadFile(a.CAFile)
			if err != nil {
				return nil, fmt.Errorf("tls.acme.ca_file: %w", err)
			}
			s.ACME.CAPEM = string(b)
		}
	}
	return s, nil
}

// httpsTo is a client for the controller's own checks of the edges over
// HTTPS: it names the site (SNI) and wants a certificate for it, but does
// not verify the chain (a test CA, a certificate for a name whose DNS does
// not point here yet): whether the edge serves is the question.
func (c *Controller) httpsTo(name string) *http.Client {
	return &http.Client{
		Timeout:       5 * time.Second,
		CheckRedirect: c.http.CheckRedirect,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{ServerName: name, InsecureSkipVerify: true}, //nolint:gosec // see above
			DisableKeepAlives: true,
		},
	}
}

// tlsEvents records the certificate events an edge reported
// (handleEdgeEvents checked their number and size).
func (c *Controller) tlsEvents(id string, evs []api.TLSEvent) {
	for _, ev := range evs {
		inputs := map[string]any{"edge": id}
		if ev.Alert {
			inputs["level"] = "alert"
		}
		c.eventWith(api.EventKindTLS, "", inputs, "%s: %s", id, ev.Message)
	}
}

// tlsStatus is the status document's tls object: the HTTPS URL and the
// certificates the edges serve (asked of each edge; nil when TLS is off).
func (c *Controller) tlsStatus() *api.TLSStatus {
	if !c.cfg.TLS.Enabled() {
		return nil
	}
	st := &api.TLSStatus{HTTPSURL: c.cfg.SiteURL(), Certificates: []api.CertStatus{}}
	seen := map[string]bool{}
	for i, e := range c.cfg.Edges {
		if c.onNomad(config.RoleEdge) {
			// Its status page answers on its host's loopback only: what
			// it serves is asked of its HTTPS port (edgecerts.go).
			for _, cs := range c.servedCerts(i) {
				if k := fmt.Sprint(cs.Names, cs.NotAfter); !seen[k] {
					seen[k] = true
					st.Certificates = append(st.Certificates, cs)
				}
			}
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		var es struct {
			TLS *struct {
				Certificates []api.CertStatus `json:"certificates"`
			} `json:"tls"`
		}
		err := api.NewClient("http://"+e.Addr+api.EdgePathStatus).Get(ctx, "", &es)
		cancel()
		if err != nil || es.TLS == nil {
			continue
		}
		for _, cs := range es.TLS.Certificates {
			k := fmt.Sprint(cs.Names, cs.NotAfter)
			if !seen[k] {
				seen[k] = true
				st.Certificates = append(st.Certificates, cs)
			}
		}
	}
	return st
}
