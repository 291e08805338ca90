package nomadlaunch

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const fakeRoleEnv = "SCALEPRESS_TEST_FAKE_ROLE"

// fakeRole is a role job's task: it needs its spec rendered from the
// job's variable (mode 0600) and serves "ok" on the allocation's port.
func fakeRole() int {
	path := filepath.Join(os.Getenv("NOMAD_SECRETS_DIR"), filepath.Base(RoleSpecFile))
	spec, err := os.ReadFile(path)
	if err != nil || !strings.Contains(string(spec), "role-canary") {
		fmt.Fprintf(os.Stderr, "spec: %v %q\n", err, spec)
		return 2
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		fmt.Fprintf(os.Stderr, "spec %s: mode %v, want 0600\n", path, fi.Mode())
		return 2
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(os.Getenv("NOMAD_IP_http"), os.Getenv("NOMAD_PORT_http")))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	if os.Getenv(fakeRoleEnv) == "files" {
		// As an edge that drops root does: its certificate file made
		// another user's, then read again on every request.
		cert := filepath.Join(os.Getenv("NOMAD_SECRETS_DIR"), "cert.pem")
		if os.Geteuid() == 0 {
			if err := os.Chown(cert, fakeOwner, fakeOwner); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 2
			}
		}
		handler = func(w http.ResponseWriter, r *http.Request) {
			b, err := os.ReadFile(cert)
			fi, serr := os.Stat(cert)
			if err != nil || serr != nil {
				http.Error(w, fmt.Sprint(err, serr), 500)
				return
			}
			fmt.Fprintf(w, "%s uid %d mode %o pid %d", b, fi.Sys().(*syscall.Stat_t).Uid, fi.Mode().Perm(), os.Getpid())
		}
	}
	go http.Serve(ln, handler)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	<-sig
	return 0
}

// TestRoleJobAgent: a role job on a real Nomad 1.6.3 dev agent is accepted
// as built, its task gets its spec from the job's variable, it is found
// through its Nomad service and answers there; Stop removes it (no
// registration left) and its variable.
func TestRoleJobAgent(t *testing.T) {
	addr := devAgent(t)
	cfg := DefaultConfig()
	cfg.Address = addr
	roles, err := NewRoles(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	rj := RoleJob{Job: "sp-test-role", Role: "fakerole", Count: 1, Command: self, Env: map[string]string{fakeRoleEnv: "1"},
		CPU: 100, MemoryMB: 64, KillTimeout: 5 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := roles.Submit(ctx, rj, []byte(`{"key": "role-canary"}`), nil); err != nil {
		t.Fatal(err)
	}
	var got string
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		addrs, _, err := roles.Addrs(ctx, rj.Job, 0, 0)
		if err == nil && len(addrs) == 1 {
			if resp, err := http.Get("http://" + addrs[0].Addr + "/"); err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if got = string(b); got == "ok" {
					if name := roles.NodeName(ctx, addrs[0].Node); name == "" {
						t.Errorf("no name for the Nomad client %s", addrs[0].Node)
					}
					break
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the role job never answered through its service (last %q, %v, %v)", got, addrs, err)
		}
	}
	if err := roles.Stop(ctx, rj.Job); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		addrs, _, err := roles.Addrs(ctx, rj.Job, 0, 0)
		if err == nil && len(addrs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after Stop the service still has %v (%v)", addrs, err)
		}
	}
	if _, _, err := roles.nc.Variables().Read(VariablePath(rj.Job), nil); err == nil {
		t.Errorf("after Stop the variable %s is still there", VariablePath(rj.Job))
	}
}

// fakeOwner is the uid (and gid) fakeRole gives its secret file when it runs
// as root: nobody's.
const fakeOwner = 65534

// TestRoleJobSecretFileAgent is what an edge's certificate renewal rests
// on, on a real Nomad 1.6.3: an item of the job's variable is rendered
// into secrets/ (0600); the task makes the file another user's (as an edge
// does before it drops root); a new value written to the variable alone
// is rendered again in place (same process: no restart) and the file keeps
// its owner and mode; the job Nomad holds names the item but has neither
// value.
func TestRoleJobSecretFileAgent(t *testing.T) {
	addr := devAgent(t)
	cfg := DefaultConfig()
	cfg.Address = addr
	roles, err := NewRoles(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	rj := RoleJob{Job: "sp-test-files", Role: "fakerole", Count: 1, Command: self, Env: map[string]string{fakeRoleEnv: "files"},
		Files: []SecretFile{{Item: "tls_cert_0", Name: "cert.pem"}}, CPU: 100, MemoryMB: 64, KillTimeout: 5 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	spec := []byte(`{"key": "role-canary"}`)
	if err := roles.Submit(ctx, rj, spec, map[string]string{"tls_cert_0": "first-pem-canary"}); err != nil {
		t.Fatal(err)
	}
	owner := os.Geteuid()
	if owner == 0 {
		owner = fakeOwner
	}
	// served waits until the task serves want's file contents, and returns
	// what it answered.
	served := func(want string) string {
		t.Helper()
		var got string
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			addrs, _, err := roles.Addrs(ctx, rj.Job, 0, 0)
			if err == nil && len(addrs) == 1 {
				if resp, err := http.Get("http://" + addrs[0].Addr + "/"); err == nil {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if got = string(b); strings.HasPrefix(got, want+" ") {
						return got
					}
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("the task never served %q (last %q)", want, got)
			}
		}
	}
	first := served("first-pem-canary")
	wantTail := fmt.Sprintf(" uid %d mode 600 pid ", owner)
	if !strings.Contains(first, wantTail) {
		t.Fatalf("rendered: %q, want %q", first, wantTail)
	}
	pid := first[strings.LastIndex(first, " ")+1:]

	if err := roles.WriteItems(ctx, rj, spec, map[string]string{"tls_cert_0": "second-pem-canary"}); err != nil {
		t.Fatal(err)
	}
	second := served("second-pem-canary")
	if want := "second-pem-canary" + wantTail + pid; second != want {
		t.Errorf("after the variable changed: %q, want %q (same owner, mode and process)", second, want)
	}

	job, _, err := roles.nc.Jobs().Info(rj.Job, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(job)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "pem-canary") || !strings.Contains(string(b), "tls_cert_0") {
		t.Errorf("the job as Nomad holds it: canary %v, item named %v; want no value, the item named",
			strings.Contains(string(b), "pem-canary"), strings.Contains(string(b), "tls_cert_0"))
	}
	if err := roles.Stop(ctx, rj.Job); err != nil {
		t.Fatal(err)
	}
	if _, _, err := roles.nc.Variables().Read(VariablePath(rj.Job), nil); err == nil {
		t.Errorf("after Stop the variable %s is still there", VariablePath(rj.Job))
	}
}

// TestPinnedRoleJobAgent: a role job pinned to a client's address
// (HostIP, an edge's) on a static port runs on the client with that
// address, at that port; pinned to an address no client has, it is not
// placed anywhere else (its evaluation is blocked).
func TestPinnedRoleJobAgent(t *testing.T) {
	addr := devAgent(t) // one client, network_interface lo: 127.0.0.1
	cfg := DefaultConfig()
	cfg.Address = addr
	roles, err := NewRoles(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	port := freePorts(t, 1)[0]
	rj := RoleJob{Job: "sp-test-edge", Role: "fakerole", Count: 1, Command: self, Env: map[string]string{fakeRoleEnv: "1"},
		HostIP: "127.0.0.1", Port: port, CPU: 100, MemoryMB: 64, KillTimeout: 5 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := roles.Submit(ctx, rj, []byte(`{"key": "role-canary"}`), nil); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("127.0.0.1:%d", port)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		addrs, _, err := roles.Addrs(ctx, rj.Job, 0, 0)
		if err == nil && len(addrs) == 1 && addrs[0].Addr == want {
			if resp, err := http.Get("http://" + want + "/"); err == nil {
				resp.Body.Close()
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pinned job never answered at %s (%v, %v)", want, addrs, err)
		}
	}

	other := rj
	other.Job, other.HostIP, other.Port = "sp-test-edge-elsewhere", "127.0.0.2", port+1
	if err := roles.Submit(ctx, other, []byte(`{"key": "role-canary"}`), nil); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		evals, _, err := roles.nc.Jobs().Evaluations(other.Job, nil)
		blocked := false
		for _, e := range evals {
			blocked = blocked || e.Status == "blocked"
		}
		if err == nil && blocked {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a job pinned to 127.0.0.2 was not blocked: %v %v", evals, err)
		}
	}
	allocs, _, err := roles.nc.Jobs().Allocations(other.Job, false, nil)
	if err != nil || len(allocs) != 0 {
		t.Errorf("a job pinned to an address no client has got allocations %v (%v)", allocs, err)
	}
	for _, j := range []string{rj.Job, other.Job} {
		if err := roles.Stop(ctx, j); err != nil {
			t.Error(err)
		}
	}
}
