package cli

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/controller"
	"github.com/scalepress/scalepress/internal/preflight"
)

// dropEnv makes the test binary a child that drops to the named user and
// reports what it then is and may do (setuid changes the whole process, so
// it runs apart from the tests).
const dropEnv = "SCALEPRESS_TEST_DROP_TO"

func TestMain(m *testing.M) {
	if spec := os.Getenv(certDirEnv); spec != "" {
		os.Exit(certDirChild(spec, os.Getenv(dropEnv+"_AS")))
	}
	if name := os.Getenv(dropEnv); name != "" {
		os.Exit(dropChild(name, os.Getenv(dropEnv+"_SECRET")))
	}
	os.Exit(m.Run())
}

func dropChild(name, secret string) int {
	dir, err := dropPrivileges(name)
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	groups, _ := syscall.Getgroups()
	_, readErr := os.ReadFile(secret)
	writeErr := os.WriteFile(filepath.Join(dir, "spool"), []byte("x"), 0o600)
	fi, _ := os.Stat(dir)
	fmt.Printf("uid=%d gid=%d groups=%d secret-readable=%v dir-writable=%v dir-mode=%v\n",
		os.Geteuid(), os.Getegid(), len(groups), readErr == nil, writeErr == nil, fi.Mode().Perm())
	os.RemoveAll(dir)
	return 0
}

// TestDropPrivileges: a role started as root (a Nomad task) that drops to
// the role user runs as that user with its group and no other, can no
// longer read root's files (its spec, the client's secrets), and keeps a
// private directory it may write.
func TestDropPrivileges(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root: it checks that a root process drops to the role user")
	}
	u, err := preflight.LookupUser(controller.RoleUser)
	if err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(t.TempDir(), "role.json")
	if err := os.WriteFile(secret, []byte(`{"key":"x"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), dropEnv+"="+controller.RoleUser, dropEnv+"_SECRET="+secret)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v: %s", err, out)
	}
	want := fmt.Sprintf("uid=%d gid=%d groups=0 secret-readable=false dir-writable=true dir-mode=-rwx------", u.UID, u.GID)
	if got := strings.TrimSpace(string(out)); got != want {
		t.Errorf("after dropping to %s:\n got %s\nwant %s", controller.RoleUser, got, want)
	}
}

// certDirEnv makes the test binary a child that does what an edge on Nomad
// does with the certificates beside its spec (edgeCertDir, then drop to
// the role user) and reports what it can then read.
const certDirEnv = "SCALEPRESS_TEST_CERT_DIR_SPEC"

func certDirChild(spec, as string) int {
	ts := &api.TLSSpec{Certificates: []api.CertFileSpec{{CertFile: "tls-cert-0.pem", KeyFile: "tls-key-0.pem"}}}
	if err := edgeCertDir(spec, ts, as); err != nil {
		fmt.Println("error:", err)
		return 1
	}
	if as != "" {
		if _, err := dropPrivileges(as); err != nil {
			fmt.Println("error:", err)
			return 1
		}
	}
	cert, cerr := os.ReadFile("tls-cert-0.pem")
	key, kerr := os.ReadFile("tls-key-0.pem")
	_, serr := os.ReadFile(filepath.Base(spec))
	fmt.Printf("cert=%q key=%q spec-readable=%v errs=%v %v\n", cert, key, serr == nil, cerr, kerr)
	return 0
}

// TestEdgeCertDir: an edge on Nomad finds its certificates by name beside
// its spec (the task's secrets/, rendered 0600 by root) below directories
// its user may not traverse; once it dropped root it still reads them (it
// made them its own and runs in their directory), and not its spec. A
// name that leaves the directory is refused.
func TestEdgeCertDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root: it checks what the edge reads once it dropped root")
	}
	top := t.TempDir() // 0700, root's: the role user cannot traverse it
	secrets := filepath.Join(top, "alloc", "edge", "secrets")
	if err := os.MkdirAll(secrets, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(secrets, 0o777) // as Nomad makes it
	spec := filepath.Join(secrets, "role.json")
	for name, b := range map[string]string{"role.json": "{}", "tls-cert-0.pem": "cert-canary", "tls-key-0.pem": "key-canary"} {
		if err := os.WriteFile(filepath.Join(secrets, name), []byte(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), certDirEnv+"="+spec, dropEnv+"_AS="+controller.RoleUser)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v: %s", err, out)
	}
	if got, want := strings.TrimSpace(string(out)), `cert="cert-canary" key="key-canary" spec-readable=false errs=<nil> <nil>`; got != want {
		t.Errorf("after dropping to %s:\n got %s\nwant %s", controller.RoleUser, got, want)
	}
	for _, name := range []string{"../tls-key-0.pem", "a/tls-key-0.pem"} {
		ts := &api.TLSSpec{Certificates: []api.CertFileSpec{{CertFile: "tls-cert-0.pem", KeyFile: name}}}
		if err := edgeCertDir(spec, ts, ""); err == nil || !strings.Contains(err.Error(), "want an absolute path or a file name beside the spec") {
			t.Errorf("key_file %q: %v", name, err)
		}
	}
}
