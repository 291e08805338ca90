package hosts

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/scalepress/scalepress/test/tools"
)

// S3 is a running versitygw (S3 API over a posix directory).
type S3 struct {
	// Endpoint is the S3 endpoint inside the test subnet
	// ("http://10.77.0.12:7070"): use it from inside a host.
	Endpoint string
	// Local is a forward to Endpoint on 127.0.0.1 in the root namespace.
	Local string
	// Region is the region requests are signed for.
	Region               string
	AccessKey, SecretKey string
	// Dir is the posix backend's directory (buckets are its subdirectories).
	Dir  string
	Proc *Proc
}

// VersitygwOptions configures StartVersitygw.
type VersitygwOptions struct {
	// Port is the listening port on the host's address; 0 means 7070.
	Port uint16
	// AccessKey and SecretKey of the root user; "" means random ones.
	AccessKey, SecretKey string
	// ReadyWithin bounds the wait for the port to answer; 0 means 20 s.
	ReadyWithin time.Duration
}

// StartVersitygw starts versitygw (tools.Path(t, "versitygw"), v1.8.0)
// with its posix backend in h, on h's address, with a data directory of its
// own under t.TempDir(), and waits until it answers HTTP. Local forwards
// through the client namespace when the topology has one. The keys are given
// through the environment, not the command line.
func StartVersitygw(t testing.TB, h *Host, opts VersitygwOptions) *S3 {
	t.Helper()
	bin := tools.Path(t, "versitygw")
	if opts.Port == 0 {
		opts.Port = 7070
	}
	if opts.AccessKey == "" {
		opts.AccessKey = "AK" + randomHex(t, 9)
	}
	if opts.SecretKey == "" {
		opts.SecretKey = randomHex(t, 20)
	}
	if opts.ReadyWithin == 0 {
		opts.ReadyWithin = 20 * time.Second
	}
	dir := filepath.Join(t.TempDir(), "versitygw-"+h.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("hosts: versitygw: %v", err)
	}
	listen := netip.AddrPortFrom(h.Addr, opts.Port).String()
	s := &S3{
		Endpoint:  "http://" + listen,
		Region:    "us-east-1",
		AccessKey: opts.AccessKey,
		SecretKey: opts.SecretKey,
		Dir:       dir,
	}
	start := time.Now()
	cmd := h.Command(context.Background(), bin, "--port", listen, "--region", s.Region, "--quiet", "posix", dir)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY_ID="+s.AccessKey, "ROOT_SECRET_ACCESS_KEY="+s.SecretKey)
	s.Proc = h.StartCmd(t, cmd)

	// Any HTTP answer (an unsigned request is refused with 403) means it serves.
	c := h.HTTPClient()
	ctx, cancel := context.WithTimeout(context.Background(), opts.ReadyWithin)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.Endpoint+"/", nil)
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("hosts: versitygw on %s did not answer within %v: %v", h.Name, opts.ReadyWithin, err)
		case <-s.Proc.Done():
			t.Fatalf("hosts: versitygw on %s exited: %v", h.Name, s.Proc.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	via := h
	if h.net.Client != nil {
		via = h.net.Client
	}
	s.Local = "http://" + via.Forward(t, listen)
	t.Logf("hosts: versitygw on %s ready in %v", h.Name, time.Since(start).Round(time.Millisecond))
	return s
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("hosts: %v", err)
	}
	return hex.EncodeToString(b)
}

// SiteStore makes the bucket "site", writes the gateway's keys into keys
// (a new directory, 0700; files 0600, as an operator keeps them) and
// returns the `files:` block's `store:` lines for a scalepress config
// that keeps the site tree there under the prefix "mh".
func (s *S3) SiteStore(t testing.TB, keys string) string {
	t.Helper()
	if err := os.Mkdir(filepath.Join(s.Dir, "site"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(keys, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{"access": s.AccessKey, "secret": s.SecretKey} {
		if err := os.WriteFile(filepath.Join(keys, name), []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return fmt.Sprintf("  store:\n    kind: s3\n    endpoint: %s\n    bucket: site\n    prefix: mh\n    region: %s\n    access_key_file: %s\n    secret_key_file: %s\n",
		s.Endpoint, s.Region, filepath.Join(keys, "access"), filepath.Join(keys, "secret"))
}
