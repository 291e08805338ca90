package hosts

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestNomadCluster: a server in h1 and clients in h2..h4 run a raw_exec job
// with distinct_hosts whose tasks bind their host's address and answer the
// client namespace; the job is scaled from 2 to 3 once its deployment is
// done. Node meta reaches the tasks.
func TestNomadCluster(t *testing.T) {
	LockE2E(t)
	var n *Net
	var pids []int
	// Registered before New, so it runs after New's cleanup.
	t.Cleanup(func() { assertRemoved(t, n, pids) })
	n = New(t, DefaultConfig())
	meta := map[string]map[string]string{"h2": {"region": "eu"}, "h3": {"region": "us"}, "h4": {"region": "us"}}
	start := time.Now()
	nm := StartNomad(t, n, n.Host(t, "h1"), n.Hosts[1:], NomadOptions{Meta: meta})
	t.Logf("cluster ready after %v", time.Since(start).Round(time.Millisecond))

	// The root namespace reaches the API through the forward only.
	var leader string
	if err := getJSON(t, &http.Client{Transport: &http.Transport{Proxy: nil}}, nm.Local+"/v1/status/leader", &leader); err != nil {
		t.Fatal(err)
	}
	if leader != "10.77.0.11:4647" {
		t.Fatalf("leader through the forward: %q", leader)
	}

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	job := map[string]any{
		"ID": "web", "Name": "web", "Type": "service", "Datacenters": []string{"dc1"},
		"Constraints": []map[string]string{{"Operand": "distinct_hosts", "RTarget": "true"}},
		"TaskGroups": []map[string]any{{
			"Name": "g", "Count": 2,
			// Healthy after 0.5 s running (no checks), so the deployment
			// ends and the scale request is accepted.
			"Update":   map[string]any{"MinHealthyTime": int64(500 * time.Millisecond), "HealthyDeadline": int64(time.Minute)},
			"Networks": []map[string]any{{"DynamicPorts": []map[string]string{{"Label": "http"}}}},
			"Services": []map[string]any{{"Name": "web", "PortLabel": "http", "Provider": "nomad"}},
			"Tasks": []map[string]any{{
				"Name": "serve", "Driver": "raw_exec",
				"Config": map[string]any{
					"command": self,
					"args":    []string{"${NOMAD_IP_http}:${NOMAD_PORT_http}", "served-by-${node.unique.name}-${meta.region}"},
				},
				"Env":       map[string]string{helperEnv: "serve"},
				"Resources": map[string]int{"CPU": 50, "MemoryMB": 64},
			}},
		}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	submitted := time.Now()
	if err := nm.SubmitJob(ctx, job); err != nil {
		t.Fatal(err)
	}
	got := answers(ctx, t, nm, n, 2)
	t.Logf("job web: 2 tasks answering %v after submit", time.Since(submitted).Round(time.Millisecond))
	if len(got) != 2 || got[0] == got[1] {
		t.Fatalf("answers from 2 tasks: %v, want two distinct hosts", got)
	}
	// Nomad refuses to scale during the first deployment.
	if err := nm.WaitDeployment(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	t.Logf("job web: deployment successful %v after submit", time.Since(submitted).Round(time.Millisecond))
	scaled := time.Now()
	if err := nm.Scale(ctx, "web", "g", 3); err != nil {
		t.Fatal(err)
	}
	got = answers(ctx, t, nm, n, 3)
	t.Logf("job web: 3 tasks answering %v after the scale request", time.Since(scaled).Round(time.Millisecond))
	pids = pidsIn(namespaceInodes(t, n))
	want := []string{"h2 served-by-h2-eu", "h3 served-by-h3-us", "h4 served-by-h4-us"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("answers from the client namespace, as \"host-of-address body\" (-want +got):\n%s", diff)
	}
}

// answers waits until service web has count registrations and returns, for
// each, "HOST BODY": the host whose address it registered and what a GET
// from the client namespace answered, sorted.
func answers(ctx context.Context, t testing.TB, nm *Nomad, n *Net, count int) []string {
	t.Helper()
	type registration struct {
		Address string
		Port    int
	}
	var regs []registration
	for len(regs) != count {
		if err := nm.Get(ctx, "/v1/service/web", &regs); err != nil {
			t.Fatal(err)
		}
		if len(regs) != count {
			select {
			case <-ctx.Done():
				t.Fatalf("service web: %d registrations, want %d", len(regs), count)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	byAddr := map[string]string{}
	for _, h := range n.Hosts {
		byAddr[h.Addr.String()] = h.Name
	}
	var got []string
	for _, r := range regs {
		a, err := netip.ParseAddr(r.Address)
		if err != nil {
			t.Fatal(err)
		}
		body := waitGet(t, n.Client.HTTPClient(), "http://"+netip.AddrPortFrom(a, uint16(r.Port)).String()+"/", 20*time.Second)
		got = append(got, byAddr[r.Address]+" "+body)
	}
	slices.Sort(got)
	return got
}

func getJSON(t testing.TB, c *http.Client, url string, v any) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	body, err := get(ctx, c, url)
	if err != nil {
		return err
	}
	return jsonUnmarshal(body, v)
}

func jsonUnmarshal(s string, v any) error {
	if err := json.NewDecoder(strings.NewReader(s)).Decode(v); err != nil {
		return fmt.Errorf("decode %q: %w", s, err)
	}
	return nil
}

// namespaceInodes returns the inodes of n's namespaces.
func namespaceInodes(t testing.TB, n *Net) map[uint64]bool {
	t.Helper()
	inodes := map[uint64]bool{}
	for _, ns := range namespacesWith(t, n.Prefix()+"-") {
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(netnsDir, ns), &st); err != nil {
			t.Fatal(err)
		}
		inodes[st.Ino] = true
	}
	return inodes
}

// assertRemoved checks, after n's cleanup, that no namespace, process (of
// pids, listed before cleanup) or cgroup directory of n is left.
func assertRemoved(t testing.TB, n *Net, pids []int) {
	t.Helper()
	if n == nil {
		return
	}
	if left := namespacesWith(t, n.Prefix()+"-"); len(left) > 0 {
		t.Errorf("namespaces left: %v", left)
	}
	if left := alivePids(pids); len(left) > 0 {
		t.Errorf("processes left: %v", left)
	}
	if left, _ := filepath.Glob(filepath.Join(cgroupRoot, "*", "nomad-"+n.Prefix()+"-*")); len(left) > 0 {
		t.Errorf("cgroup directories left: %v", left)
	}
	t.Logf("after cleanup: none of %d processes, no namespace and no cgroup directory of %s left", len(pids), n.Prefix())
}

// TestNomadACLTLS: with NomadOptions ACL and TLS, the API answers only over
// HTTPS to a client that trusts the test's CA and shows a certificate it
// signed, refuses a request without a token (403), and a token Token made
// can do what its policy grants and nothing else.
func TestNomadACLTLS(t *testing.T) {
	LockE2E(t)
	n := New(t, Config{Hosts: []string{"h1", "h2"}, Client: true})
	nm := StartNomad(t, n, n.Host(t, "h1"), n.Hosts[1:], NomadOptions{ACL: true, TLS: true})
	if nm.Management == "" || nm.TLS == nil || !strings.HasPrefix(nm.Addr, "https://") {
		t.Fatalf("fixture: management %q, TLS %v, Addr %s", nm.Management, nm.TLS, nm.Addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Plain HTTP to the HTTPS port is refused.
	plain := strings.Replace(nm.Addr, "https://", "http://", 1)
	if body, err := get(ctx, n.Client.HTTPClient(), plain+"/v1/status/leader"); err == nil {
		t.Errorf("plain HTTP answered: %.200s", body)
	}
	// A client that does not trust the CA fails the handshake.
	if _, err := get(ctx, n.Client.HTTPClient(), nm.Addr+"/v1/status/leader"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("HTTPS without the CA: %v, want a certificate error", err)
	}
	// Without a token: 403.
	anon := *nm
	anon.Management = ""
	if err := anon.Get(ctx, "/v1/nodes", new([]nomadNode)); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("GET /v1/nodes without a token: %v, want 403", err)
	}
	// A token with node read only reads nodes, and submits no job.
	tok := nm.Token(t, "nodes-only", `node { policy = "read" }`)
	narrow := anon
	narrow.Management = tok
	var nodes []nomadNode
	if err := narrow.Get(ctx, "/v1/nodes", &nodes); err != nil || len(nodes) != 1 {
		t.Errorf("GET /v1/nodes with the node-read token: %v, %d nodes", err, len(nodes))
	}
	if err := narrow.Get(ctx, "/v1/jobs", new([]any)); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("GET /v1/jobs with the node-read token: %v, want 403", err)
	}
}
