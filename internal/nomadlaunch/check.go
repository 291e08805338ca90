package nomadlaunch

// The check `up` makes before it writes anything to Nomad: that this
// configuration reaches Nomad (address, TLS) and that its token may do
// what scalepress does there, each failure in one line naming the
// scheduler setting to fix.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	nomad "github.com/hashicorp/nomad/api"
)

// PolicyFile is the ACL policy the token needs, in the repository.
const PolicyFile = "deploy/nomad/scalepress-policy.hcl"

// Check asks Nomad, without changing anything there, whether the
// controller can work with it: the API answers over the configured TLS,
// and the token reads the job's and the controller's variables, reads the
// job and may submit it (a plan). Writes and deletes of the variables
// cannot be tried without a trace; the policy grants them with read.
func (c Config) Check(ctx context.Context) error {
	nc, err := c.client()
	if err != nil {
		return err
	}
	q := func() *nomad.QueryOptions { return (&nomad.QueryOptions{}).WithContext(ctx) }
	var leader string
	if _, err := nc.Raw().Query("/v1/status/leader", &leader, q()); err != nil {
		return c.Explain("reach Nomad", err)
	}
	for _, path := range []string{VariablePath(c.Job), HomeVariablePath(c.Job)} {
		// Raw, not Variables().Read: that reads a 403 as "no variable".
		var v nomad.Variable
		if _, err := nc.Raw().Query("/v1/var/"+path, &v, q()); err != nil && !isStatus(err, http.StatusNotFound) {
			return c.Explain("read variable "+path+" (variables read, write and destroy on it)", err)
		}
	}
	if _, _, err := nc.Jobs().Info(c.Job, q()); err != nil && !isStatus(err, http.StatusNotFound) {
		return c.Explain("read job "+c.Job+" (read-job)", err)
	}
	if _, _, err := nc.Jobs().Plan(Job(c, 0), false, (&nomad.WriteOptions{}).WithContext(ctx)); err != nil {
		return c.Explain("plan job "+c.Job+" (submit-job)", err)
	}
	return nil
}

// isStatus reports whether err is Nomad's answer with HTTP status code.
func isStatus(err error, code int) bool {
	var ue nomad.UnexpectedResponseError
	return errors.As(err, &ue) && ue.StatusCode() == code
}

// Explain turns err, from doing what on c's Nomad, into one line that
// names the scheduler setting to look at: scheduler.token_file for a
// refused token (403), scheduler.ca_file for a certificate that does not
// verify, scheduler.cert_file for a client certificate Nomad wants or
// refuses, scheduler.address for plain HTTP to an HTTPS port. Other
// errors are returned as "nomad: what: err".
func (c Config) Explain(what string, err error) error {
	at := "Nomad at " + c.Address
	var ue nomad.UnexpectedResponseError
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	msg := err.Error()
	switch {
	case errors.As(err, &ue) && ue.StatusCode() == http.StatusForbidden:
		body := strings.TrimSpace(ue.Body())
		switch {
		case c.TokenFile == "":
			return fmt.Errorf("scheduler.token_file is not set and %s has ACLs on: %s: 403 %s (give scalepress a token with the policy in %s)", at, what, body, PolicyFile)
		case strings.Contains(body, "ACL token not found"):
			return fmt.Errorf("scheduler.token_file: %s does not know the token in %s: %s: 403 %s", at, c.TokenFile, what, body)
		default:
			return fmt.Errorf("scheduler.token_file: %s refused the token in %s: %s: 403 %s (its policy needs what %s grants)", at, c.TokenFile, what, body, PolicyFile)
		}
	case errors.As(err, &ue) && ue.StatusCode() == http.StatusBadRequest && strings.Contains(ue.Body(), "HTTPS server"):
		return fmt.Errorf("scheduler.address: %s speaks HTTPS: use https:// (and scheduler.ca_file): %s", at, what)
	case errors.As(err, &unknownCA), errors.As(err, &hostErr), errors.As(err, &invalid), errors.As(err, &verify):
		ca := "the system's roots (scheduler.ca_file is not set)"
		if c.CAFile != "" {
			ca = c.CAFile
		}
		return fmt.Errorf("scheduler.ca_file: TLS verification of the certificate of %s failed against %s: %s: %v", at, ca, what, unwrapURL(err))
	case strings.Contains(msg, "certificate required"), strings.Contains(msg, "bad certificate"), strings.Contains(msg, "unknown certificate authority"):
		if c.CertFile == "" {
			return fmt.Errorf("scheduler.cert_file is not set and %s asks for a client certificate (verify_https_client): %s: %v", at, what, unwrapURL(err))
		}
		return fmt.Errorf("scheduler.cert_file: %s refused the client certificate %s: %s: %v", at, c.CertFile, what, unwrapURL(err))
	case strings.Contains(msg, "server gave HTTP response to HTTPS client"):
		return fmt.Errorf("scheduler.address: %s speaks plain HTTP: use http://: %s", at, what)
	}
	return fmt.Errorf("nomad: %s: %w", what, err)
}

// unwrapURL drops net/http's "Get URL:" wrapper: the address is named
// already.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
