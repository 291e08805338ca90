package wordpress

import (
	"encoding/json"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fakeWordPress is just enough of a WordPress tree for php/install.php:
// wp_install() records what it was given in DIR/out/install.json.
const fakeWPLoad = `<?php
define('ABSPATH', __DIR__ . '/');
function is_blog_installed() { return file_exists(__DIR__ . '/out/install.json'); }
function wp_install($title, $user, $email, $public, $deprecated, $password) {
	file_put_contents(__DIR__ . '/out/install.json', json_encode(array(
		'title' => $title, 'user' => $user, 'password' => $password,
		'euid' => posix_geteuid(), 'secret_env' => getenv('SP_TEST_SECRET'),
		'cwd' => getcwd(),
	)));
	return array('user_id' => 1);
}
function is_wp_error($x) { return false; }
function update_option($k, $v) { return true; }
function delete_option($k) { return true; }
`

// TestInstall runs php/install.php with the real PHP CLI, as the PHP user
// when the test runs as root: the admin password reaches wp_install() on
// stdin while its file stays root's, and PHP gets none of the caller's
// environment.
func TestInstall(t *testing.T) {
	php := phpBinary(t)
	base := t.TempDir()
	docroot := filepath.Join(base, "site")
	secrets := filepath.Join(base, "secrets")
	scratch := filepath.Join(base, "run")
	for _, d := range []string{filepath.Join(docroot, "wp-admin", "includes"), filepath.Join(docroot, "out"), secrets, scratch} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// t.TempDir is 0700: let the PHP user through, as scalepress's DIR does.
	for _, d := range []string{filepath.Dir(base), base} {
		os.Chmod(d, 0o755)
	}
	os.Chmod(filepath.Join(docroot, "out"), 0o777)
	os.Chmod(secrets, 0o700)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(docroot, "wp-load.php"), []byte(fakeWPLoad), 0o644))
	must(os.WriteFile(filepath.Join(docroot, "wp-admin", "includes", "upgrade.php"), []byte("<?php\n"), 0o644))
	pwFile := filepath.Join(secrets, "admin-password")
	must(os.WriteFile(pwFile, []byte("s3cret-pw\n"), 0o600))
	t.Setenv("SP_TEST_SECRET", "operator's environment")

	in := Install{
		PHP: php, Docroot: docroot, SiteURL: "http://127.0.0.1:8080", Title: "t", AdminUser: "admin",
		AdminEmail: "a@example.invalid", AdminPasswordFile: pwFile, ScratchDir: scratch,
	}
	wantUID := os.Geteuid()
	me, err := user.Current()
	must(err)
	wantUser := me.Username
	if os.Geteuid() == 0 {
		u, err := user.Lookup("www-data")
		if err != nil {
			t.Fatal("user www-data not found (Debian's php packages create it)")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		in.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		wantUID, wantUser = uid, "www-data"
	}

	res, err := in.Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(InstallResult{Installed: true, User: wantUser}, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	b, err := os.ReadFile(filepath.Join(docroot, "out", "install.json"))
	must(err)
	var got map[string]any
	must(json.Unmarshal(b, &got))
	want := map[string]any{
		"title": "t", "user": "admin", "password": "s3cret-pw",
		"euid": float64(wantUID), "secret_env": false, "cwd": docroot,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("wp_install saw (-want +got):\n%s", diff)
	}
	fi, err := os.Stat(pwFile)
	must(err)
	if fi.Mode().Perm() != 0o600 || int(fi.Sys().(*syscall.Stat_t).Uid) != os.Geteuid() {
		t.Errorf("password file %v uid %d: changed", fi.Mode(), fi.Sys().(*syscall.Stat_t).Uid)
	}

	// The second run finds it installed.
	res, err = in.Run(t.Context())
	if err != nil || res.Installed {
		t.Errorf("second run: %+v, %v; want already installed", res, err)
	}

	// An empty password is refused with the reason.
	must(os.Remove(filepath.Join(docroot, "out", "install.json")))
	must(os.WriteFile(pwFile, []byte("\n"), 0o600))
	if _, err := in.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "admin password is empty") {
		t.Errorf("empty password: %v", err)
	}
}
