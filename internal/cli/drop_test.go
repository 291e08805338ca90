package cli

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/scalepress/scalepress/internal/controller"
	"github.com/scalepress/scalepress/internal/preflight"
)

// dropEnv makes the test binary a child that drops to the named user and
// reports what it then is and may do (setuid changes the whole process, so
// it runs apart from the tests).
const dropEnv = "SCALEPRESS_TEST_DROP_TO"

func TestMain(m *testing.M) {
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
