package multihost

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/test/hosts"
)

// policyFile is the ACL policy the docs give operators; the test's token
// holds exactly it, so the two cannot drift.
const policyFile = "../../deploy/nomad/scalepress-policy.hcl"

// TestNomadACLTLS runs the site of siteConfig (h1: Nomad server
// and `up`; h2, h3: Nomad clients running the nodes; local files store)
// against a Nomad with ACLs and TLS on (HTTPS and RPC, verify_server_hostname,
// verify_https_client), as a production cluster has them (issue 12).
//
// First, `up` with what an operator gets wrong fails at once, in one line
// naming the scheduler setting, and leaves nothing in Nomad (no job, no
// variable) and no process: no token_file (403), a CA that did not sign
// Nomad's certificate (TLS verification), a token whose policy lacks the
// variables block, and one that lacks submit-job. Then `up` with a token
// holding only deploy/nomad/scalepress-policy.hcl, scheduler.ca_file and a
// client certificate serves the site through the edge from the client
// namespace, `scale --min 2` places a second node, and `down` stops the
// job and deletes its variable.
func TestNomadACLTLS(t *testing.T) {
	bin := os.Getenv("SCALEPRESS_BIN")
	if bin == "" {
		t.Fatal("SCALEPRESS_BIN must name the scalepress binary (make multihost sets it)")
	}
	policy, err := os.ReadFile(policyFile)
	if err != nil {
		t.Fatal(err)
	}
	hosts.LockE2E(t)
	t0 := time.Now()
	n := hosts.New(t, hosts.Config{Hosts: []string{"h1", "h2", "h3"}, Client: true})
	h1, client := n.Host(t, "h1"), n.Client
	nodeHosts := n.Hosts[1:]

	base, err := os.MkdirTemp("", "sp-mh-sec-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	meta := map[string]map[string]string{}
	for _, h := range nodeHosts {
		d := filepath.Join(base, h.Name)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		meta[h.Name] = map[string]string{"scalepress_dir": d}
	}
	nm := hosts.StartNomad(t, n, h1, nodeHosts, hosts.NomadOptions{Meta: meta, ACL: true, TLS: true})
	t.Logf("topology and Nomad with ACLs and TLS: %s", time.Since(t0).Round(time.Millisecond))

	// Tokens: the documented policy, and two narrower ones.
	secrets := t.TempDir()
	tokenFile := func(name, rules string) string {
		p := filepath.Join(secrets, name+".token")
		if err := os.WriteFile(p, []byte(nm.Token(t, name, rules)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	full := tokenFile("scalepress", string(policy))
	noVars := tokenFile("scalepress-no-variables", withoutBlock(t, string(policy), "  variables {"))
	noSubmit := tokenFile("scalepress-no-submit", cut(t, string(policy), `"submit-job", `))
	wrongCA := hosts.NewCA(t, "not-nomads")

	apiFwd := client.Forward(t, h1.Addr.String()+":9090")
	h1a := h1.Addr.String()
	// config is siteConfig with one node (up to 2), the job name the
	// policy names, and the scheduler's security settings.
	config := func(token, ca string, clientCert bool) string {
		sched := "job: scalepress-nodes\n"
		if token != "" {
			sched += "  token_file: " + token + "\n"
		}
		if ca != "" {
			sched += "  ca_file: " + ca + "\n"
		}
		if clientCert {
			sched += fmt.Sprintf("  cert_file: %s\n  key_file: %s\n", nm.TLS.API.CertFile, nm.TLS.API.KeyFile)
		}
		cfg := siteConfig(h1a, apiFwd)
		for _, r := range [][2]string{
			{"  count: 2\n", "  count: 1\n"},
			{"  min: 2\n  max: 3\n", "  min: 1\n  max: 2\n"},
			{"address: http://" + h1a + ":4646\n", "address: https://" + h1a + ":4646\n"},
			{"job: sp-mh-nodes\n", sched},
		} {
			if !strings.Contains(cfg, r[0]) {
				t.Fatalf("siteConfig has no %q to change", r[0])
			}
			cfg = strings.Replace(cfg, r[0], r[1], 1)
		}
		return cfg
	}
	// newDir makes a state directory with cfg as its config.
	newDir := func(name, cfg string) string {
		d := filepath.Join(base, name)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "scalepress.yaml"), []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		return d
	}
	cli := func(dir string, timeout time.Duration, args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		out, err := h1.Command(ctx, bin, append(args, "--dir", dir)...).CombinedOutput()
		return string(out), err
	}
	// nothingInNomad checks that Nomad holds no job and no variable.
	nothingInNomad := func(after string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var jobs, vars []struct{ ID, Path string }
		if err := nm.Get(ctx, "/v1/jobs", &jobs); err != nil {
			t.Fatal(err)
		}
		if err := nm.Get(ctx, "/v1/vars", &vars); err != nil {
			t.Fatal(err)
		}
		if len(jobs)+len(vars) > 0 {
			t.Errorf("after %s: Nomad holds jobs %v and variables %v, want none", after, jobs, vars)
		}
	}

	// What an operator gets wrong: up fails at once, in one line naming
	// the setting, before anything is written to Nomad or started.
	for _, tc := range []struct {
		name string
		cfg  string
		want []string // all on one line of up's output
	}{
		{"no token_file", config("", nm.TLS.CA.File, true),
			[]string{"scheduler.token_file is not set", "Nomad at https://" + h1a + ":4646 has ACLs on", "403"}},
		{"wrong ca_file", config(full, wrongCA.File, true),
			[]string{"scheduler.ca_file: TLS verification", wrongCA.File, "certificate signed by unknown authority"}},
		{"token without variables", config(noVars, nm.TLS.CA.File, true),
			[]string{"scheduler.token_file:", "refused the token in " + noVars, "variable nomad/jobs/scalepress-nodes", "403 Permission denied"}},
		{"token without submit-job", config(noSubmit, nm.TLS.CA.File, true),
			[]string{"scheduler.token_file:", "refused the token in " + noSubmit, "(submit-job)", "403 Permission denied"}},
	} {
		dir := newDir("refused-"+strings.ReplaceAll(tc.name, " ", "-"), tc.cfg)
		t1 := time.Now()
		out, err := cli(dir, 2*time.Minute, "up", "--config", filepath.Join(dir, "scalepress.yaml"))
		if err == nil {
			t.Errorf("%s: up succeeded: %s", tc.name, out)
			cli(dir, 2*time.Minute, "down")
			continue
		}
		line := ""
		for l := range strings.SplitSeq(out, "\n") {
			if containsAll(l, tc.want) {
				line = l
			}
		}
		if line == "" {
			t.Errorf("%s: up failed (%v), no line of its output has all of %q:\n%s", tc.name, err, tc.want, out)
		}
		t.Logf("%s: up failed in %s: %s", tc.name, time.Since(t1).Round(time.Millisecond), line)
		nothingInNomad("up with " + tc.name)
		if left := procsUnder(dir); len(left) > 0 {
			t.Errorf("%s: processes left: %v", tc.name, left)
		}
	}

	// The site with the documented policy, the CA and a client certificate.
	dir := newDir("controller", config(full, nm.TLS.CA.File, true))
	t.Cleanup(func() {
		if out, err := cli(dir, 2*time.Minute, "down"); err != nil {
			t.Logf("down at cleanup: %v: %s", err, out)
		}
		if t.Failed() {
			logs, _ := filepath.Glob(filepath.Join(dir, "logs", "*.log"))
			for _, l := range logs {
				t.Logf("---- %s (tail)\n%s", l, tailFile(l, 3000))
			}
		}
	})
	tUp := time.Now()
	up := h1.Start(t, bin, "up", "--config", filepath.Join(dir, "scalepress.yaml"), "--dir", dir)
	site := "http://" + h1a + ":8080"
	web := client.HTTPClient()
	get := func(path string) (int, string) {
		resp, err := web.Get(site + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp.StatusCode, string(b)
	}
	for deadline := time.Now().Add(10 * time.Minute); ; {
		code, _ := get("/")
		if code == http.StatusOK {
			break
		}
		select {
		case <-up.Done():
			t.Fatalf("up exited before the site answered: %v", up.Err())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the site never answered 200 through the edge (last %d)", code)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("up to the first 200 with ACLs and TLS: %s", time.Since(tUp).Round(time.Millisecond))
	if code, body := get("/?s=nomadsec-first"); code != http.StatusOK {
		t.Fatalf("uncached search through the edge: %d %.300s", code, body)
	}

	tok, err := os.ReadFile(filepath.Join(dir, "secrets", "api-token"))
	if err != nil {
		t.Fatal(err)
	}
	ctl := api.NewClient("http://" + apiFwd)
	ctl.Token = strings.TrimSpace(string(tok))
	inService := func(want int) []string {
		t.Helper()
		var last []api.NodeStatus
		for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
			st, err := ctl.Status(context.Background())
			if err != nil {
				t.Fatalf("status through the forward: %v", err)
			}
			last = st.Nodes
			var on []string
			for _, nd := range st.Nodes {
				if nd.State == api.NodeInService {
					on = append(on, nd.ID+"@"+nd.Host)
				}
			}
			if len(on) == want {
				return on
			}
		}
		t.Fatalf("want %d nodes in service, status shows %+v", want, last)
		return nil
	}
	t.Logf("nodes: %v", inService(1))
	// The autoscaler (min 1, max 2) may have asked for a second node
	// already; either way it is placed through the job scale API with the
	// policy's token, and the job's count in Nomad says so.
	before, err := ctl.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tScale := time.Now()
	if out, err := cli(dir, 2*time.Minute, "scale", "--min", "2"); err != nil {
		t.Fatalf("scale --min 2: %v: %s", err, out)
	}
	t.Logf("scale --min 2 (%d nodes known before it) to 2 in service: %s; nodes: %v", len(before.Nodes), time.Since(tScale).Round(time.Millisecond), inService(2))
	var job struct {
		TaskGroups []struct {
			Name  string
			Count int
		}
	}
	if err := nm.Get(context.Background(), "/v1/job/scalepress-nodes", &job); err != nil {
		t.Fatal(err)
	}
	if len(job.TaskGroups) != 1 || job.TaskGroups[0].Count != 2 {
		t.Errorf("job scalepress-nodes in Nomad: groups %+v, want one with count 2", job.TaskGroups)
	}
	for i := range 4 {
		if code, body := get(fmt.Sprintf("/?s=nomadsec-%d", i)); code != http.StatusOK {
			t.Errorf("uncached search with 2 nodes: %d %.300s", code, body)
		}
	}

	tDown := time.Now()
	if out, err := cli(dir, 2*time.Minute, "down"); err != nil {
		t.Fatalf("down: %v: %s", err, out)
	}
	select {
	case <-up.Done():
	case <-time.After(2 * time.Minute):
		t.Fatal("the controller still runs after down")
	}
	t.Logf("down: %s", time.Since(tDown).Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var allocs []nodeAlloc
	if err := nm.Get(ctx, "/v1/job/scalepress-nodes/allocations", &allocs); err != nil {
		t.Fatal(err)
	}
	for _, a := range allocs {
		if a.ClientStatus == "running" || a.ClientStatus == "pending" {
			t.Errorf("allocation %s %s after down", a.ID, a.ClientStatus)
		}
	}
	// The node job's variable (its spec's secrets) is deleted; the
	// controller's own stays (ADR 27: the site's state outlives down).
	var vars []struct{ Path string }
	if err := nm.Get(ctx, "/v1/vars", &vars); err != nil {
		t.Fatal(err)
	}
	for _, v := range vars {
		if v.Path != "nomad/jobs/scalepress-nodes-controller" {
			t.Errorf("variable %s left after down", v.Path)
		}
	}
}

// containsAll reports whether s holds every one of subs.
func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// cut is s without its first old, failing t when s has none.
func cut(t *testing.T, s, old string) string {
	t.Helper()
	if !strings.Contains(s, old) {
		t.Fatalf("no %q to cut", old)
	}
	return strings.Replace(s, old, "", 1)
}

// withoutBlock is policy without the block that starts at the line
// opening (e.g. "  variables {") and ends at the line closing it at the
// same indentation.
func withoutBlock(t *testing.T, policy, opening string) string {
	t.Helper()
	i := strings.Index(policy, opening)
	if i < 0 {
		t.Fatalf("no %q in the policy", opening)
	}
	indent := opening[:len(opening)-len(strings.TrimLeft(opening, " "))]
	j := strings.Index(policy[i:], "\n"+indent+"}\n")
	if j < 0 {
		t.Fatalf("no end of %q in the policy", opening)
	}
	return policy[:i] + policy[i+j+len("\n"+indent+"}\n"):]
}
