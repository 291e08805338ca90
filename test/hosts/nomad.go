package hosts

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scalepress/scalepress/test/tools"
)

// NomadOptions configures StartNomad.
type NomadOptions struct {
	// Datacenter of every agent; "" means "dc1".
	Datacenter string
	// Meta is the node meta of each client, by host name (e.g.
	// {"h2": {"region": "eu"}}).
	Meta map[string]map[string]string
	// ReadyWithin bounds the wait for the leader and every client to be
	// ready; 0 means 60 s.
	ReadyWithin time.Duration
	// ACL turns ACLs on in every agent (acl { enabled = true }): the
	// fixture bootstraps them through the API and keeps the management
	// token in Nomad.Management (its own requests send it); Nomad.Token
	// makes narrower tokens.
	ACL bool
	// TLS turns on TLS for HTTP and RPC in every agent, with a CA made for
	// the test (Nomad.TLS) and each agent's own certificate:
	// verify_server_hostname (server.global.nomad, client.global.nomad)
	// and verify_https_client, so an API caller needs a client
	// certificate too (Nomad.TLS.API). Addr and Local are https://.
	TLS bool
}

// NomadTLS is what NomadOptions.TLS made.
type NomadTLS struct {
	// CA signed every certificate below; CA.File is what API callers
	// trust (scheduler.ca_file).
	CA *CA
	// API is a client certificate for API callers (scheduler.cert_file
	// and key_file): Nomad verifies HTTPS clients.
	API Leaf
}

// Nomad is a running Nomad cluster.
type Nomad struct {
	// Addr is the server's HTTP API inside the test subnet
	// ("http://10.77.0.11:4646"): use it from inside a host.
	Addr string
	// Local is a forward to Addr on 127.0.0.1 in the root namespace, for
	// programs that run there (the scalepress CLI, curl).
	Local  string
	Server *Proc
	// Clients are the client agents, by host name.
	Clients map[string]*Proc
	// Management is the management token's secret (NomadOptions.ACL),
	// "" with ACLs off.
	Management string
	// TLS is the CA and API client certificate (NomadOptions.TLS), nil
	// without TLS.
	TLS *NomadTLS
	// via is the host the fixture reaches the API from.
	via    *Host
	server *Host
	client *http.Client // via's, with TLS when on
}

// nomadPorts are Nomad's default ports; each host has its own port space.
const (
	nomadHTTPPort = 4646
	nomadRPCPort  = 4647
)

// StartNomad starts a Nomad server in server and a client in each of
// clients (tools.Path(t, "nomad"), v1.6.3), and waits until the server has a
// leader and every client is ready with raw_exec healthy.
//
// Clients run raw_exec without cgroups (so no task shares the machine-wide
// /sys/fs/cgroup/freezer/nomad), with a cgroup parent named for this
// topology (/sys/fs/cgroup/cpuset/nomad-PREFIX-HOST, removed at cleanup),
// the drivers and cloud fingerprints that cannot work here denied, a data
// dir of their own under t.TempDir() (all hosts share one filesystem), and
// network_interface eth0 so that tasks bind their host's address.
func StartNomad(t testing.TB, n *Net, server *Host, clients []*Host, opts NomadOptions) *Nomad {
	t.Helper()
	bin := tools.Path(t, "nomad")
	if opts.Datacenter == "" {
		opts.Datacenter = "dc1"
	}
	if opts.ReadyWithin == 0 {
		opts.ReadyWithin = 60 * time.Second
	}
	for name := range opts.Meta {
		if !slices.ContainsFunc(clients, func(h *Host) bool { return h.Name == name }) {
			t.Fatalf("hosts: NomadOptions.Meta: %q is not one of the clients", name)
		}
	}
	dir := t.TempDir()
	start := time.Now()
	scheme := "http://"
	if opts.TLS {
		scheme = "https://"
	}
	nm := &Nomad{
		Addr:    scheme + netip.AddrPortFrom(server.Addr, nomadHTTPPort).String(),
		Clients: map[string]*Proc{},
		via:     server,
		server:  server,
	}
	if n.Client != nil {
		nm.via = n.Client
	}
	nm.client = nm.via.HTTPClient()
	if opts.TLS {
		nm.TLS = &NomadTLS{CA: NewCA(t, "nomad")}
		nm.TLS.API = nm.TLS.CA.Issue(t, "api", nil, nil)
		nm.client = &http.Client{
			Transport: &http.Transport{
				Proxy:       nil,
				DialContext: nm.via.DialContext,
				TLSClientConfig: &tls.Config{
					RootCAs: nm.TLS.CA.Pool, Certificates: []tls.Certificate{nm.TLS.API.Pair},
					MinVersion: tls.VersionTLS12,
				},
				MaxIdleConnsPerHost: 4,
				IdleConnTimeout:     30 * time.Second,
			},
			Timeout: 30 * time.Second,
		}
		t.Cleanup(nm.client.CloseIdleConnections) // before the topology's cleanup: sockets hold namespaces
	}

	serverHCL := nomadCommon(server, dir, opts.Datacenter) + nm.security(t, server, "server", opts) + `
server {
  enabled          = true
  bootstrap_expect = 1
}
`
	nm.Server = startNomadAgent(t, bin, server, dir, serverHCL)

	ctx, cancel := context.WithTimeout(context.Background(), opts.ReadyWithin)
	defer cancel()
	// The clients start once the server has a leader: a client whose first
	// registration fails (no leader yet, or the server's RPC port not open
	// yet) retries only 15-30 s later (Nomad's registerRetryIntv plus a
	// random stagger), which made the same cluster ready in 2 s one run
	// and in 26 s the next.
	if err := nm.waitLeader(ctx); err != nil {
		t.Fatalf("hosts: nomad: %v", err)
	}

	rpc := netip.AddrPortFrom(server.Addr, nomadRPCPort).String()
	for _, c := range clients {
		var meta strings.Builder
		for _, k := range slices.Sorted(maps.Keys(opts.Meta[c.Name])) {
			fmt.Fprintf(&meta, "    %q = %q\n", k, opts.Meta[c.Name][k])
		}
		clientHCL := nomadCommon(c, dir, opts.Datacenter) + nm.security(t, c, "client", opts) + fmt.Sprintf(`
client {
  enabled           = true
  servers           = [%q]
  network_interface = "eth0"
  cgroup_parent     = %q
  meta {
%s  }
  options {
    "driver.denylist"      = "docker,podman,qemu,java,exec"
    "fingerprint.denylist" = "env_aws,env_gce,env_azure,env_digitalocean"
  }
}

plugin "raw_exec" {
  config {
    enabled    = true
    no_cgroups = true
  }
}
`, rpc, "/nomad-"+n.prefix+"-"+c.Name, meta.String())
		nm.Clients[c.Name] = startNomadAgent(t, bin, c, dir, clientHCL)
	}

	if opts.ACL {
		if err := nm.bootstrapACL(ctx); err != nil {
			t.Fatalf("hosts: nomad: %v", err)
		}
	}
	want := make([]string, 0, len(clients))
	for _, c := range clients {
		want = append(want, c.Name)
	}
	if err := nm.waitReady(ctx, want); err != nil {
		t.Fatalf("hosts: nomad: %v", err)
	}
	nm.Local = scheme + nm.via.Forward(t, strings.TrimPrefix(nm.Addr, scheme))
	t.Logf("hosts: nomad: server on %s, %d clients ready in %v (ACL %v, TLS %v)", server.Name, len(clients), time.Since(start).Round(time.Millisecond), opts.ACL, opts.TLS)
	return nm
}

// nomadCommon is the part of an agent's configuration every agent shares.
func nomadCommon(h *Host, dir, dc string) string {
	return fmt.Sprintf(`name                 = %q
datacenter           = %q
data_dir             = %q
bind_addr            = %q
disable_update_check = true
log_level            = "INFO"

consul {
  auto_advertise   = false
  server_auto_join = false
  client_auto_join = false
}
`, h.Name, dc, filepath.Join(dir, "data-"+h.Name), h.Addr.String())
}

func startNomadAgent(t testing.TB, bin string, h *Host, dir, hcl string) *Proc {
	t.Helper()
	cfg := filepath.Join(dir, h.Name+".hcl")
	if err := os.WriteFile(cfg, []byte(hcl), 0o644); err != nil {
		t.Fatalf("hosts: nomad: %v", err)
	}
	return h.Start(t, bin, "agent", "-config", cfg)
}

// Get decodes the JSON answer to GET path (e.g. "/v1/nodes") into v,
// asking from inside the client namespace (or the server host).
func (nm *Nomad) Get(ctx context.Context, path string, v any) error {
	return nm.do(ctx, http.MethodGet, path, nil, v)
}

// Post sends body as JSON to path and decodes the answer into v (nil to
// discard it).
func (nm *Nomad) Post(ctx context.Context, path string, body, v any) error {
	return nm.do(ctx, http.MethodPost, path, body, v)
}

// SubmitJob registers (or updates) job, Nomad's JSON job document.
func (nm *Nomad) SubmitJob(ctx context.Context, job any) error {
	return nm.Put(ctx, "/v1/jobs", map[string]any{"Job": job}, nil)
}

// WaitDeployment waits until the latest deployment of job is successful.
// Nomad refuses to scale a job while a deployment is active ("job scaling
// blocked due to active deployment"); a job with a short
// Update.MinHealthyTime gets there in about a second.
func (nm *Nomad) WaitDeployment(ctx context.Context, job string) error {
	path := "/v1/job/" + url.PathEscape(job) + "/deployment"
	for {
		var d *struct{ Status, StatusDescription string }
		if err := nm.Get(ctx, path, &d); err != nil {
			return err
		}
		if d != nil {
			switch d.Status {
			case "successful":
				return nil
			case "failed", "cancelled":
				return fmt.Errorf("deployment of %s: %s: %s", job, d.Status, d.StatusDescription)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("deployment of %s: %w", job, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Scale sets the count of job's group through the job scale API.
func (nm *Nomad) Scale(ctx context.Context, job, group string, count int) error {
	body := map[string]any{"Count": count, "Target": map[string]string{"Group": group}}
	return nm.Post(ctx, "/v1/job/"+url.PathEscape(job)+"/scale", body, nil)
}

// Put sends body as JSON to path and decodes the answer into v (nil to
// discard it).
func (nm *Nomad) Put(ctx context.Context, path string, body, v any) error {
	return nm.do(ctx, http.MethodPut, path, body, v)
}

func (nm *Nomad) do(ctx context.Context, method, path string, body, v any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, nm.Addr+path, rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if nm.Management != "" {
		req.Header.Set("X-Nomad-Token", nm.Management)
	}
	resp, err := nm.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(b)))
	}
	if v == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	return nil
}

// agents returns every agent by host name.
func (nm *Nomad) agents() map[string]*Proc {
	all := maps.Clone(nm.Clients)
	all[nm.server.Name+" (server)"] = nm.Server
	return all
}

// nomadNode is the part of GET /v1/nodes the fixture reads.
type nomadNode struct {
	Name    string
	Status  string
	Drivers map[string]struct{ Healthy bool }
}

// waitLeader polls until the server (the only agent started yet) answers
// with a leader.
func (nm *Nomad) waitLeader(ctx context.Context) error {
	for {
		var leader string
		err := nm.Get(ctx, "/v1/status/leader", &leader)
		if err == nil && leader != "" {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("no leader yet")
		}
		select {
		case <-nm.Server.Done():
			return fmt.Errorf("server agent exited (%v) before it had a leader; its log: %s", nm.Server.Err(), nm.Server.Log)
		default:
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("server has no leader: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitReady polls until the server has a leader and every client in want
// is ready with raw_exec healthy.
func (nm *Nomad) waitReady(ctx context.Context, want []string) error {
	var last string
	for {
		var leader string
		var nodes []nomadNode
		err := nm.Get(ctx, "/v1/status/leader", &leader)
		if err == nil && leader == "" {
			err = fmt.Errorf("no leader yet")
		}
		if err == nil {
			err = nm.Get(ctx, "/v1/nodes", &nodes)
		}
		if err == nil {
			var ready []string
			for _, nd := range nodes {
				if nd.Status == "ready" && nd.Drivers["raw_exec"].Healthy {
					ready = append(ready, nd.Name)
				}
			}
			slices.Sort(ready)
			w := slices.Sorted(slices.Values(want))
			if slices.Equal(ready, w) {
				return nil
			}
			err = fmt.Errorf("ready clients %v, want %v", ready, w)
		}
		last = err.Error()
		for name, p := range nm.agents() {
			select {
			case <-p.Done():
				return fmt.Errorf("agent on %s exited (%v) before the cluster was ready; its log: %s", name, p.Err(), p.Log)
			default:
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready: %s", last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// security is the acl and tls blocks of an agent on h (role "server" or
// "client"), its certificate issued here: for role.global.nomad (what
// verify_server_hostname checks), localhost, h's address and 127.0.0.1.
func (nm *Nomad) security(t testing.TB, h *Host, role string, opts NomadOptions) string {
	t.Helper()
	var b strings.Builder
	if opts.ACL {
		b.WriteString("\nacl {\n  enabled = true\n}\n")
	}
	if opts.TLS {
		leaf := nm.TLS.CA.Issue(t, role+"-"+h.Name, []string{role + ".global.nomad", "localhost"},
			[]netip.Addr{h.Addr, netip.MustParseAddr("127.0.0.1")})
		fmt.Fprintf(&b, `
tls {
  http                   = true
  rpc                    = true
  ca_file                = %q
  cert_file              = %q
  key_file               = %q
  verify_server_hostname = true
  verify_https_client    = true
}
`, nm.TLS.CA.File, leaf.CertFile, leaf.KeyFile)
	}
	return b.String()
}

// bootstrapACL waits for a leader and bootstraps the ACL system: its
// management token is nm.Management from then on.
func (nm *Nomad) bootstrapACL(ctx context.Context) error {
	var last error
	for {
		var leader string
		err := nm.Get(ctx, "/v1/status/leader", &leader)
		if err == nil && leader == "" {
			err = fmt.Errorf("no leader yet")
		}
		if err == nil {
			var tok struct{ SecretID string }
			if err = nm.Post(ctx, "/v1/acl/bootstrap", nil, &tok); err == nil {
				if tok.SecretID == "" {
					return fmt.Errorf("acl bootstrap: no SecretID in the answer")
				}
				nm.Management = tok.SecretID
				return nil
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("acl bootstrap: %v", last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Token makes an ACL policy called name with rules (HCL, e.g. a file under
// deploy/nomad/) and a client token holding only that policy, and returns
// the token's secret. It needs NomadOptions.ACL.
func (nm *Nomad) Token(t testing.TB, name, rules string) string {
	t.Helper()
	if nm.Management == "" {
		t.Fatal("hosts: nomad: Token needs NomadOptions.ACL")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	policy := map[string]string{"Name": name, "Description": "made by the test", "Rules": rules}
	if err := nm.Post(ctx, "/v1/acl/policy/"+url.PathEscape(name), policy, nil); err != nil {
		t.Fatalf("hosts: nomad: policy %s: %v", name, err)
	}
	var tok struct{ SecretID string }
	body := map[string]any{"Name": name, "Type": "client", "Policies": []string{name}}
	if err := nm.Post(ctx, "/v1/acl/token", body, &tok); err != nil || tok.SecretID == "" {
		t.Fatalf("hosts: nomad: token for %s: %v (secret %q)", name, err, tok.SecretID)
	}
	return tok.SecretID
}
