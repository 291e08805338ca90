package edge

import (
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/test/tools"
)

var h2specSummary = regexp.MustCompile(`(\d+) tests, (\d+) passed, (\d+) skipped, (\d+) failed`)

// h2spec runs h2spec (HTTP/2 conformance) against a TLS server on port and
// returns how many tests passed, and its output.
func h2spec(t *testing.T, port string) (int, string) {
	t.Helper()
	out, _ := exec.Command(tools.Path(t, "h2spec"), "-h", "localhost", "-p", port, "-t", "-k", "-o", "2").CombinedOutput()
	m := h2specSummary.FindSubmatch(out)
	if m == nil {
		t.Fatalf("h2spec printed no summary:\n%s", out)
	}
	n, _ := strconv.Atoi(string(m[2]))
	return n, string(m[0])
}

// TestH2Spec: the edge passes at least as many of h2spec's HTTP/2
// conformance tests as Go's own HTTP/2 server with the same certificate.
func TestH2Spec(t *testing.T) {
	f := startTLSEdge(t, api.TLSSpec{}, api.HTTPSpec{}, echoBackend())
	_, port, _ := splitHostPort(f.https)
	edgePassed, edgeSummary := h2spec(t, port)

	pair, err := tls.LoadX509KeyPair(filepath.Join(f.certDir, "cert.pem"), filepath.Join(f.certDir, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	ref := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	ref.EnableHTTP2 = true
	ref.Config.ErrorLog = log.New(io.Discard, "", 0)
	ref.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	ref.StartTLS()
	defer ref.Close()
	_, refPort, _ := splitHostPort(ref.Listener.Addr().String())
	refPassed, refSummary := h2spec(t, refPort)
	t.Logf("h2spec: edge %s; Go's net/http %s", edgeSummary, refSummary)
	if edgePassed < refPassed {
		t.Errorf("the edge passes %d h2spec tests, Go's own server %d", edgePassed, refPassed)
	}
}

var splitHostPort = net.SplitHostPort
