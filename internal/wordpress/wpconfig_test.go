package wordpress

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files")

func testConfig() Config {
	salts := map[string]string{}
	for _, n := range SaltNames {
		salts[n] = "salt-" + n
	}
	return Config{
		DBName: "wordpress", DBUser: "wp", DBPassword: `pa'ss\word`,
		DBHost: "127.0.0.1:3306", SiteURL: "http://127.0.0.1:8080",
		Salts: salts, RedisAddr: "127.0.3.1:6379",
		RedisPassword: "redis'pw", ObjectCacheKey: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		CacheKeySalt: "site-a", PurgeURL: "http://127.0.0.1:9090/v1/purge", PurgeSecret: `sec'ret`,
	}
}

func TestRenderConfigGolden(t *testing.T) {
	got, err := RenderConfig(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "wp-config.golden")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("wp-config.php differs from golden (-want +got):\n%s", diff)
	}
}

// TestRenderConfigIsValidPHP lints the rendered file with the real PHP CLI
// and checks that a quote in a value cannot break out of its string.
func TestRenderConfigIsValidPHP(t *testing.T) {
	php, err := exec.LookPath("php")
	if err != nil {
		t.Fatal("php CLI not found: run scripts/install-deps.sh (Debian package php-cli)")
	}
	got, err := RenderConfig(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "wp-config.php")
	if err := os.WriteFile(f, got, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(php, "-l", f).CombinedOutput()
	if err != nil {
		t.Fatalf("php -l: %v\n%s", err, out)
	}
	// Evaluate the defines without loading WordPress.
	gotConsts := evalConfig(t, php, got, `DB_PASSWORD, "|", WP_CACHE_KEY_SALT, "|", SCALEPRESS_PURGE_URL, "|", SCALEPRESS_PURGE_SECRET, "|", WP_REDIS_PASSWORD, "|", SCALEPRESS_OBJECT_CACHE_KEY`)
	if want := `pa'ss\word|site-a|http://127.0.0.1:9090/v1/purge|sec'ret|redis'pw|0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef`; gotConsts != want {
		t.Errorf("constants evaluate to %q, want %q", gotConsts, want)
	}
}

// evalConfig runs a rendered wp-config.php with its require of
// wp-settings.php replaced by `echo exprs;` and returns the output.
func evalConfig(t *testing.T, php string, config []byte, exprs string) string {
	t.Helper()
	src := strings.Replace(string(config), "require_once ABSPATH . 'wp-settings.php';", "echo "+exprs+";", 1)
	f := filepath.Join(t.TempDir(), "wp-config.php")
	if err := os.WriteFile(f, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(php, f).CombinedOutput()
	if err != nil {
		t.Fatalf("php: %v\n%s", err, out)
	}
	return string(out)
}

// TestRenderConfigFileMods: PHP writes installs directly with group-writable
// modes; wordpress.lock_code turns every file modification from wp-admin off.
func TestRenderConfigFileMods(t *testing.T) {
	php, err := exec.LookPath("php")
	if err != nil {
		t.Fatal("php CLI not found: run scripts/install-deps.sh (Debian package php-cli)")
	}
	tests := []struct {
		name     string
		lockCode bool
		want     string
	}{
		{"installs allowed", false, "direct|2775|664|not defined"},
		{"lock_code", true, "direct|2775|664|true"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig()
			c.LockCode = tt.lockCode
			got, err := RenderConfig(c)
			if err != nil {
				t.Fatal(err)
			}
			out := evalConfig(t, php, got, `FS_METHOD, "|", decoct(FS_CHMOD_DIR), "|", decoct(FS_CHMOD_FILE), "|", defined('DISALLOW_FILE_MODS') ? var_export(DISALLOW_FILE_MODS, true) : "not defined"`)
			if diff := cmp.Diff(tt.want, out); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestRenderConfigOptional: the object-cache salt and the purge constants
// are left out when empty (the drop-in derives a prefix, the mu-plugin
// purges nothing).
func TestRenderConfigOptional(t *testing.T) {
	c := testConfig()
	c.CacheKeySalt, c.PurgeURL, c.PurgeSecret = "", "", ""
	got, err := RenderConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"WP_CACHE_KEY_SALT", "SCALEPRESS_PURGE_URL", "SCALEPRESS_PURGE_SECRET", "WP_CACHE'"} {
		if strings.Contains(string(got), name) {
			t.Errorf("wp-config.php defines %s:\n%s", name, got)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"no db name", func(c *Config) { c.DBName = "" }, "db name"},
		{"bad url", func(c *Config) { c.SiteURL = "ftp://x" }, "site url"},
		{"missing salt", func(c *Config) { delete(c.Salts, "NONCE_SALT") }, "NONCE_SALT"},
		{"bad purge url", func(c *Config) { c.PurgeURL = "127.0.0.1:9090/v1/purge" }, "purge url"},
		{"purge url without secret", func(c *Config) { c.PurgeSecret = "" }, "purge url and purge secret"},
		{"purge secret without url", func(c *Config) { c.PurgeURL = "" }, "purge url and purge secret"},
		{"redis without password", func(c *Config) { c.RedisPassword = "" }, "redis password"},
		{"redis without cache key", func(c *Config) { c.ObjectCacheKey = "" }, "object cache key"},
		{"short cache key", func(c *Config) { c.ObjectCacheKey = "0123456789abcdef" }, "object cache key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig()
			tt.mutate(&c)
			_, err := RenderConfig(c)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want error naming %q", err, tt.want)
			}
		})
	}
}

func TestCopyTree(t *testing.T) {
	src := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(src, "wp-settings.php"), []byte("<?php"), 0o644))
	must(os.WriteFile(filepath.Join(src, "wp-config.php"), []byte("debian dispatcher"), 0o644))
	must(os.MkdirAll(filepath.Join(src, "wp-includes", "js"), 0o755))
	other := t.TempDir()
	must(os.WriteFile(filepath.Join(other, "underscore.js"), []byte("lib"), 0o644))
	must(os.Symlink(filepath.Join(other, "underscore.js"), filepath.Join(src, "wp-includes", "js", "underscore.js")))
	must(os.Symlink("/nonexistent", filepath.Join(src, ".htaccess")))

	dst := filepath.Join(t.TempDir(), "site")
	must(CopyTree(src, dst, nil))
	b, err := os.ReadFile(filepath.Join(dst, "wp-includes", "js", "underscore.js"))
	must(err)
	if string(b) != "lib" {
		t.Errorf("symlink not dereferenced: %q", b)
	}
	if fi, _ := os.Lstat(filepath.Join(dst, "wp-includes", "js", "underscore.js")); fi.Mode()&os.ModeSymlink != 0 {
		t.Error("copied a symlink, want a regular file")
	}
	for _, skipped := range []string{"wp-config.php", ".htaccess"} {
		if _, err := os.Lstat(filepath.Join(dst, skipped)); err == nil {
			t.Errorf("%s was copied", skipped)
		}
	}
	if err := CopyTree(src, dst, nil); err == nil {
		t.Error("copy over an existing tree succeeded")
	}
	if err := CopyTree(t.TempDir(), filepath.Join(t.TempDir(), "x"), nil); err == nil || !strings.Contains(err.Error(), "not a WordPress tree") {
		t.Errorf("copy of a non-WordPress dir: %v", err)
	}
}

func TestSecretsPersist(t *testing.T) {
	dir := t.TempDir()
	write := func(p string, b []byte) error { return os.WriteFile(p, b, 0o600) }
	s1, err := LoadOrCreateSalts(filepath.Join(dir, "salts.json"), write)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := LoadOrCreateSalts(filepath.Join(dir, "salts.json"), write)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(s1, s2); diff != "" {
		t.Errorf("salts changed between loads: %s", diff)
	}
	p1, _ := LoadOrCreateSecret(filepath.Join(dir, "pw"), 24, write)
	p2, _ := LoadOrCreateSecret(filepath.Join(dir, "pw"), 24, write)
	if p1 != p2 || len(p1) != 24 {
		t.Errorf("secret %q then %q", p1, p2)
	}
}

func TestRenderConfigBlockExternalHTTP(t *testing.T) {
	php, err := exec.LookPath("php")
	if err != nil {
		t.Fatal("php CLI not found: run scripts/install-deps.sh")
	}
	for _, block := range []bool{false, true} {
		c := testConfig()
		c.BlockExternalHTTP = block
		got, err := RenderConfig(c)
		if err != nil {
			t.Fatal(err)
		}
		out := evalConfig(t, php, got, `defined('WP_HTTP_BLOCK_EXTERNAL') ? var_export(WP_HTTP_BLOCK_EXTERNAL, true) : "not defined"`)
		want := map[bool]string{false: "not defined", true: "true"}[block]
		if out != want {
			t.Errorf("block_external_http %v: WP_HTTP_BLOCK_EXTERNAL %s, want %s", block, out, want)
		}
	}
}

// TestRenderConfigRedisSocket: a node that reaches redis through its own
// socket gets WP_REDIS_HOST next to its wp-config.php (port 0, a unix
// socket for the drop-in), so one rendering serves every node; a socket
// with an address, an absolute path or a quote is refused.
func TestRenderConfigRedisSocket(t *testing.T) {
	php, err := exec.LookPath("php")
	if err != nil {
		t.Fatal("php CLI not found: run scripts/install-deps.sh (Debian package php-cli)")
	}
	c := testConfig()
	c.RedisAddr, c.RedisSocket = "", "../run/redis.sock"
	got, err := RenderConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	src := strings.Replace(string(got), "require_once ABSPATH . 'wp-settings.php';", `echo WP_REDIS_HOST, "|", WP_REDIS_PORT;`, 1)
	f := filepath.Join(dir, "wp-config.php")
	if err := os.WriteFile(f, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(php, f).CombinedOutput()
	if err != nil {
		t.Fatalf("php: %v\n%s", err, out)
	}
	if want := dir + "/../run/redis.sock|0"; string(out) != want {
		t.Errorf("WP_REDIS_HOST|WP_REDIS_PORT = %q, want %q", out, want)
	}
	for _, bad := range []struct{ addr, socket string }{
		{"127.0.3.1:6379", "../run/redis.sock"},
		{"", "/run/redis.sock"},
		{"", "../run/re'dis.sock"},
	} {
		c.RedisAddr, c.RedisSocket = bad.addr, bad.socket
		if _, err := RenderConfig(c); err == nil {
			t.Errorf("address %q, socket %q: rendered, want an error", bad.addr, bad.socket)
		}
	}
}
