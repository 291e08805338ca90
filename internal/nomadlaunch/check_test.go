package nomadlaunch

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeDeleted counts the variables fakeACL deleted.
var fakeDeleted atomic.Int32

// fakeACL is a Nomad API with ACLs on, as far as Check asks: the token
// "full" may do everything, "no-vars" everything but the variables,
// "no-submit" everything but planning a job; any other token is unknown.
func fakeACL(w http.ResponseWriter, r *http.Request) {
	tok := r.Header.Get("X-Nomad-Token")
	deny := func(body string) { w.WriteHeader(http.StatusForbidden); fmt.Fprint(w, body) }
	switch {
	case r.URL.Path == "/v1/status/leader":
		fmt.Fprint(w, `"10.0.0.1:4647"`)
	case tok != "full" && tok != "no-vars" && tok != "no-submit":
		if tok == "" {
			deny("Permission denied")
		} else {
			deny("ACL token not found")
		}
	case strings.HasPrefix(r.URL.Path, "/v1/var/"):
		switch {
		case tok == "no-vars":
			deny("Permission denied")
		case r.Method == http.MethodPut:
			fmt.Fprintf(w, `{"Path": %q, "ModifyIndex": 7}`, strings.TrimPrefix(r.URL.Path, "/v1/var/"))
		case r.Method == http.MethodDelete:
			fakeDeleted.Add(1)
			w.WriteHeader(http.StatusNoContent)
		default:
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, "variable not found")
		}
	case r.URL.Path == "/v1/jobs" && r.Method == http.MethodPut && tok == "no-submit":
		deny("Permission denied")
	case strings.HasSuffix(r.URL.Path, "/plan"):
		if tok == "no-submit" {
			deny("Permission denied")
			return
		}
		fmt.Fprint(w, `{}`)
	case strings.HasPrefix(r.URL.Path, "/v1/job/"):
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, "job not found")
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

// TestCheck: each way a configuration cannot work with Nomad fails the
// check in one line naming the scheduler setting to fix; a token that may
// do it all, over verified TLS, passes. The fake is an HTTPS server on
// 127.0.0.1 (httptest's certificate, for 127.0.0.1).
func TestCheck(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(fakeACL))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	srv.StartTLS()
	defer srv.Close()
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	writeFile(t, ca, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})))
	wrongCA := filepath.Join(dir, "wrong-ca.pem")
	writeFile(t, wrongCA, selfSigned(t))
	token := func(s string) string {
		p := filepath.Join(dir, "token-"+s)
		writeFile(t, p, s+"\n")
		return p
	}
	plainAddr := strings.Replace(srv.URL, "https://", "http://", 1)

	cases := []struct {
		name                string
		addr, ca, tokenFile string
		want                []string // in the error, in order; nil: no error
		wantNot             string
	}{
		{"all allowed", srv.URL, ca, token("full"), nil, ""},
		{"no token", srv.URL, ca, "", []string{"scheduler.token_file is not set", "Nomad at " + srv.URL, "403", PolicyFile}, ""},
		{"unknown token", srv.URL, ca, token("stale"), []string{"scheduler.token_file:", "does not know the token", "403 ACL token not found"}, ""},
		{"no variables", srv.URL, ca, token("no-vars"), []string{"scheduler.token_file:", "refused the token", "read variable nomad/jobs/scalepress-nodes", "403 Permission denied", PolicyFile}, ""},
		{"no submit-job", srv.URL, ca, token("no-submit"), []string{"scheduler.token_file:", "plan job scalepress-nodes (submit-job)", "403"}, ""},
		{"wrong CA", srv.URL, wrongCA, token("full"), []string{"scheduler.ca_file: TLS verification", wrongCA, "reach Nomad", "certificate signed by unknown authority"}, "Get "},
		{"no CA", srv.URL, "", token("full"), []string{"scheduler.ca_file: TLS verification", "system's roots"}, ""},
		{"http to https", plainAddr, "", token("full"), []string{"scheduler.address:", "speaks HTTPS"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig()
			c.Address, c.CAFile, c.TokenFile = tc.addr, tc.ca, tc.tokenFile
			err := c.Check(context.Background())
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Check passed, want an error with %q", tc.want)
			}
			msg := err.Error()
			t.Log(msg)
			if strings.Contains(msg, "\n") {
				t.Errorf("error is not one line: %q", msg)
			}
			rest := msg
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("error %q: want %q (after what came before)", msg, w)
				}
				rest = rest[i+len(w):]
			}
			if tc.wantNot != "" && strings.Contains(msg, tc.wantNot) {
				t.Errorf("error %q holds %q", msg, tc.wantNot)
			}
		})
	}
}

// TestCheckClientCert: a Nomad that verifies HTTPS clients refuses a
// configuration without a client certificate, naming scheduler.cert_file.
func TestCheckClientCert(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(fakeACL))
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	writeFile(t, ca, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})))
	c := testConfig()
	c.Address, c.CAFile = srv.URL, ca
	err := c.Check(context.Background())
	if err == nil || !strings.HasPrefix(err.Error(), "scheduler.cert_file is not set and Nomad at "+srv.URL+" asks for a client certificate") {
		t.Fatalf("Check without a client certificate: %v", err)
	}
}

// TestHomeReadForbidden: a token that may not read the controller's
// variable is an error naming scheduler.token_file, never "no variable"
// (which would start a new site over the running one).
func TestHomeReadForbidden(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(fakeACL))
	defer srv.Close()
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	writeFile(t, tok, "no-vars")
	c := testConfig()
	c.Address, c.TokenFile = srv.URL, tok
	s, err := NewHomeStore(c)
	if err != nil {
		t.Fatal(err)
	}
	_, ok, err := s.Read(context.Background())
	if err == nil || ok || !strings.Contains(err.Error(), "scheduler.token_file:") || !strings.Contains(err.Error(), "403") {
		t.Fatalf("Read with a token refused on the path: ok %v, err %v; want a 403 naming scheduler.token_file", ok, err)
	}
	writeFile(t, tok, "full")
	if s, err = NewHomeStore(c); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.Read(context.Background()); err != nil || ok {
		t.Fatalf("Read of no variable: ok %v, err %v; want none, no error", ok, err)
	}
}

// selfSigned is a CA certificate (PEM) that signed nothing the fake serves.
func selfSigned(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "another CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestSubmitForbidden: past the check (a policy changed meanwhile), a
// refused write still names scheduler.token_file in one line.
func TestSubmitForbidden(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(fakeACL))
	defer srv.Close()
	tok := filepath.Join(t.TempDir(), "token")
	writeFile(t, tok, "no-vars")
	c := testConfig()
	c.Address, c.TokenFile = srv.URL, tok
	l, err := New(c, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = l.Submit(context.Background(), []byte(`{}`))
	want := "scheduler.token_file: Nomad at " + srv.URL + " refused the token in " + tok + ": write variable nomad/jobs/scalepress-nodes: 403 Permission denied"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("Submit with a token refused on the variable: %v, want it to start with %q", err, want)
	}
}

// TestSubmitRegisterRefused: when the job cannot be registered (and none
// runs), the variable just written, the spec's secrets, is deleted again:
// nothing of a refused start stays in Nomad.
func TestSubmitRegisterRefused(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(fakeACL))
	defer srv.Close()
	tok := filepath.Join(t.TempDir(), "token")
	writeFile(t, tok, "no-submit")
	c := testConfig()
	c.Address, c.TokenFile = srv.URL, tok
	l, err := New(c, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	before := fakeDeleted.Load()
	_, err = l.Submit(context.Background(), []byte(`{}`))
	if err == nil || !strings.Contains(err.Error(), "scheduler.token_file:") || !strings.Contains(err.Error(), "register job scalepress-nodes: 403") {
		t.Fatalf("Submit with a token refused on the job: %v", err)
	}
	if got := fakeDeleted.Load() - before; got != 1 {
		t.Errorf("variables deleted after the refused register: %d, want 1", got)
	}
}
