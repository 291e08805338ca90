package wordpress

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The mu-plugin, run by the real PHP CLI with the few WordPress functions it
// uses stubbed (testdata/php/muplugin.php): hook callbacks are called the way
// WordPress calls them and wp_remote_post records what would be sent.

func muPluginFile(t *testing.T) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "scalepress.php")
	if err := os.WriteFile(f, muPluginPHP, 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestMuPlugin(t *testing.T) {
	plugin := muPluginFile(t)
	script, _ := filepath.Abs(filepath.Join("testdata", "php", "muplugin.php"))
	list := runPHP(t, []string{"SP_PLUGIN=" + plugin}, script, "--list")
	if list.code != 0 {
		t.Fatalf("--list: %s", list)
	}
	cases := list.lines()
	if len(cases) < 15 {
		t.Fatalf("only %d cases: %v", len(cases), cases)
	}
	for _, name := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			env := []string{"SP_PLUGIN=" + plugin}
			if strings.HasPrefix(name, "no_constants") {
				env = append(env, "SP_NO_PURGE=1")
			}
			res := runPHP(t, env, script, name)
			if res.code != 0 || res.stdout != "ok\n" || res.stderr != "" {
				t.Fatalf("%s", res)
			}
		})
	}
}

// TestMuPluginHeaderOnTheWire serves stubbed pages with php -S and reads the
// header from real HTTP responses: sent before the body, only for anonymous
// GET/HEAD.
func TestMuPluginHeaderOnTheWire(t *testing.T) {
	plugin := muPluginFile(t)
	dir, _ := filepath.Abs(filepath.Join("testdata", "php"))
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	cmd := exec.Command(phpBinary(t), "-S", addr, filepath.Join(dir, "muplugin.php"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SP_PLUGIN="+plugin)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	base := "http://" + addr
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get(base + "/?page=none")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("php -S did not answer: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	tests := []struct {
		name, method, page, want string
	}{
		{"single post", "GET", "post", "post-12 author-3 term-5"},
		{"home", "GET", "home", "home post-1 author-3 post-2"},
		{"HEAD", "HEAD", "home", "home post-1 author-3 post-2"},
		{"logged in", "GET", "home-logged-in", ""},
		{"POST", "POST", "home", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, base+"/?page="+tt.page, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if got := resp.Header.Get("X-Scalepress-Tags"); got != tt.want {
				t.Errorf("X-Scalepress-Tags %q, want %q", got, tt.want)
			}
			if _, ok := resp.Header["X-Scalepress-Tags"]; !ok && tt.want != "" {
				t.Error("header missing")
			}
		})
	}
}
