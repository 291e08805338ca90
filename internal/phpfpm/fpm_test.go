package phpfpm

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scalepress/scalepress/internal/fastcgi"
)

// These tests run the real php-fpm (about 2 s, so -short runs them too, as
// CI does); a missing binary fails them with the install hint.
func requireFPM(t testing.TB) string {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

type fpmFiles struct {
	dir, conf, ini string
	pool           Pool
}

// renderFPM renders a pool and php.ini into a fresh world-readable temp dir
// (children run as www-data when the tests run as root).
func renderFPM(t testing.TB, mod func(*Pool)) fpmFiles {
	t.Helper()
	dir, err := os.MkdirTemp("", "phpfpm-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := Pool{
		Name:           "test",
		Listen:         filepath.Join(dir, "php-fpm.sock"),
		MaxChildren:    2,
		PidFile:        filepath.Join(dir, "php-fpm.pid"),
		ErrorLog:       filepath.Join(dir, "php-fpm.log"),
		SlowLog:        filepath.Join(dir, "slow.log"),
		SlowlogTimeout: 5 * time.Second,
		Env:            map[string]string{"SCALEPRESS_TEST": "a b;c=d#e'f$g", "TMPDIR": "/tmp"},
		AdminValues:    map[string]string{"memory_limit": "200M", "error_reporting": "E_ALL & ~E_DEPRECATED", "disable_functions": ""},
	}
	if os.Geteuid() == 0 {
		p.User, p.Group = "www-data", "www-data"
	}
	if mod != nil {
		mod(&p)
	}
	conf, err := Render(p)
	if err != nil {
		t.Fatalf("Render() error = %v", err)
	}
	ini, err := RenderINI(DefaultINI())
	if err != nil {
		t.Fatalf("RenderINI() error = %v", err)
	}
	f := fpmFiles{dir: dir, conf: filepath.Join(dir, "php-fpm.conf"), ini: filepath.Join(dir, "php.ini"), pool: p}
	writeFile(t, f.conf, string(conf))
	writeFile(t, f.ini, string(ini))
	return f
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestPHPFPMAcceptsRenderedConfig(t *testing.T) {
	bin := requireFPM(t)
	tests := []struct {
		name    string
		mod     func(*Pool)
		corrupt bool // append a bogus directive: php-fpm -t must fail
	}{
		{name: "typical"},
		{name: "minimal", mod: func(p *Pool) { p.SlowLog, p.SlowlogTimeout, p.Env, p.AdminValues = "", 0, nil, nil }},
		{name: "unlimited", mod: func(p *Pool) { p.MaxRequests, p.RequestTerminateTimeout, p.MaxChildren = -1, -1, 32 }},
		{name: "listen ownership", mod: func(p *Pool) {
			if os.Geteuid() == 0 {
				p.ListenOwner, p.ListenGroup, p.ListenMode = "www-data", "www-data", "0600"
			}
		}},
		{name: "golden admin values", mod: func(p *Pool) { p.AdminValues = goldenPool().AdminValues }},
		{name: "corrupted config is rejected", corrupt: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := renderFPM(t, tt.mod)
			if tt.corrupt {
				b, _ := os.ReadFile(f.conf)
				writeFile(t, f.conf, string(b)+"pm = bogus\n")
			}
			out, err := exec.Command(bin, "-t", "-y", f.conf, "-c", f.ini).CombinedOutput()
			ok := err == nil && bytes.Contains(out, []byte("test is successful"))
			if ok == tt.corrupt {
				t.Errorf("%s -t: err = %v, output:\n%s", bin, err, out)
			}
		})
	}
}

// startFPM runs php-fpm in the foreground until the test ends and returns a
// client for its pool.
func startFPM(t testing.TB, f fpmFiles) *fastcgi.Client {
	t.Helper()
	bin := requireFPM(t)
	var out bytes.Buffer
	cmd := exec.Command(bin, "-F", "-y", f.conf, "-c", f.ini)
	cmd.Stdout, cmd.Stderr = &out, &out
	// Killed with the test binary too (a -timeout or a kill skips the
	// cleanup below): no php-fpm outlives the test.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGQUIT) // graceful stop
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		nc, err := net.Dial("unix", f.pool.Listen)
		if err == nil {
			nc.Close()
			break
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(f.pool.ErrorLog)
			t.Fatalf("php-fpm exited: %v\n%s%s", waitErr, out.String(), log)
		default:
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(f.pool.ErrorLog)
			t.Fatalf("php-fpm socket not ready after 10s: %v\n%s", err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cfg := fastcgi.DefaultConfig()
	cfg.Address = f.pool.Listen
	cfg.MaxConns, cfg.MaxIdle = f.pool.MaxChildren, f.pool.MaxChildren
	c, err := fastcgi.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

const infoPHP = `<?php
header('X-Test: yes');
$in = file_get_contents('php://input');
error_log('stderr-marker');
echo json_encode([
  'env' => getenv('SCALEPRESS_TEST'),
  'memory_limit' => ini_get('memory_limit'),
  'error_reporting' => (int)ini_get('error_reporting'),
  'expose_php' => ini_get('expose_php'),
  'opcache' => ini_get('opcache.enable'),
  'method' => $_SERVER['REQUEST_METHOD'],
  'big' => strlen($_SERVER['HTTP_X_BIG'] ?? ''),
  'fill' => count(array_filter(array_keys($_SERVER), fn($k) => str_starts_with($k, 'HTTP_X_FILL_'))),
  'input_len' => strlen($in),
  'input_md5' => md5($in),
]);
`

type phpResult struct {
	Env            string `json:"env"`
	MemoryLimit    string `json:"memory_limit"`
	ErrorReporting int    `json:"error_reporting"`
	ExposePHP      string `json:"expose_php"`
	Opcache        string `json:"opcache"`
	Method         string `json:"method"`
	Big            int    `json:"big"`
	Fill           int    `json:"fill"`
	InputLen       int    `json:"input_len"`
	InputMD5       string `json:"input_md5"`
}

func do(t testing.TB, c *fastcgi.Client, params map[string]string, body []byte) (*fastcgi.Response, string) {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	resp, err := c.Do(context.Background(), params, r)
	if err != nil {
		t.Fatalf("Do(%s) error = %v", params["SCRIPT_FILENAME"], err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return resp, string(b)
}

func TestPHPFPMServes(t *testing.T) {
	f := renderFPM(t, func(p *Pool) { p.MaxRequests = 5; p.Nice = 7 })
	for name, src := range map[string]string{
		"info.php":     infoPHP,
		"pid.php":      `<?php usleep(20000); echo getmypid();`,
		"redirect.php": `<?php header('Location: /elsewhere'); `,
		// 3,000 echoes of 20 bytes (60,000), then a header: it is only
		// sent when PHP still holds all that output (output_buffering).
		"late.php": `<?php for ($i = 0; $i < 3000; $i++) { echo '<p>WP block 123</p>' . "\n"; } header('X-Late: yes');`,
	} {
		writeFile(t, filepath.Join(f.dir, name), src)
	}
	c := startFPM(t, f)
	script := func(name string) map[string]string {
		return map[string]string{
			"SCRIPT_FILENAME": filepath.Join(f.dir, name),
			"SCRIPT_NAME":     "/" + name,
			"REQUEST_METHOD":  "GET",
		}
	}

	t.Run("POST body and params over 64 KiB", func(t *testing.T) {
		body := make([]byte, 200_000)
		for i := range body {
			body[i] = byte(i*31 + i>>8)
		}
		params := script("info.php")
		params["REQUEST_METHOD"] = "POST"
		params["CONTENT_TYPE"] = "application/octet-stream"
		params["CONTENT_LENGTH"] = strconv.Itoa(len(body))
		params["HTTP_X_BIG"] = strings.Repeat("b", 60_000)
		for i := range 150 {
			params[fmt.Sprintf("HTTP_X_FILL_%03d", i)] = strings.Repeat("f", 500)
		}
		resp, out := do(t, c, params, body)
		var got phpResult
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("script output %q: %v", out, err)
		}
		sum := md5.Sum(body)
		want := phpResult{
			Env: "a b;c=d#e'f$g", MemoryLimit: "200M", ErrorReporting: 32767 &^ 8192, ExposePHP: "", Opcache: "1",
			Method: "POST", Big: 60_000, Fill: 150, InputLen: len(body), InputMD5: hex.EncodeToString(sum[:]),
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("PHP saw (-want +got):\n%s", diff)
		}
		if resp.Status != 200 || resp.Header.Get("X-Test") != "yes" || resp.Header.Get("X-Powered-By") != "" {
			t.Errorf("status %d header %v; want 200, X-Test, no X-Powered-By", resp.Status, resp.Header)
		}
		if !strings.Contains(string(resp.Stderr()), "stderr-marker") {
			t.Errorf("Stderr() = %q, want the error_log() message", resp.Stderr())
		}
	})

	t.Run("status codes", func(t *testing.T) {
		tests := []struct {
			name       string
			script     string
			wantStatus int
			wantHeader string
			wantStderr string
		}{
			{name: "redirect", script: "redirect.php", wantStatus: 302, wantHeader: "/elsewhere"},
			{name: "missing script", script: "missing.php", wantStatus: 404, wantStderr: "Unable to open primary script"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				resp, _ := do(t, c, script(tt.script), nil)
				if resp.Status != tt.wantStatus || resp.Header.Get("Location") != tt.wantHeader {
					t.Errorf("status %d Location %q; want %d %q", resp.Status, resp.Header.Get("Location"), tt.wantStatus, tt.wantHeader)
				}
				if !strings.Contains(string(resp.Stderr()), tt.wantStderr) {
					t.Errorf("Stderr() = %q, want %q", resp.Stderr(), tt.wantStderr)
				}
			})
		}
	})

	t.Run("a page is held by PHP up to outputBuffer", func(t *testing.T) {
		// A WordPress page of many small echoes leaves PHP in one piece,
		// not one write per 4 KiB: shown by a header set after 60,000
		// bytes of output still reaching the client.
		resp, out := do(t, c, script("late.php"), nil)
		if len(out) != 60_000 || resp.Header.Get("X-Late") != "yes" {
			t.Errorf("late.php: %d bytes, X-Late %q; want 60000 bytes and X-Late: yes (output_buffering below 64 KiB?); stderr %q",
				len(out), resp.Header.Get("X-Late"), resp.Stderr())
		}
	})

	t.Run("ping", func(t *testing.T) {
		ping := map[string]string{"SCRIPT_NAME": f.pool.withDefaults().PingPath, "SCRIPT_FILENAME": f.pool.withDefaults().PingPath, "REQUEST_METHOD": "GET"}
		if _, out := do(t, c, ping, nil); out != "pong" {
			t.Errorf("ping body = %q, want pong", out)
		}
	})

	t.Run("workers at the pool's nice", func(t *testing.T) {
		_, pid := do(t, c, script("pid.php"), nil)
		stat, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil {
			t.Fatal(err)
		}
		// Fields after the command (which may hold spaces): state is 3, nice 19.
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		want := "7"
		if os.Geteuid() != 0 {
			want = "0" // php-fpm ignores process.priority when not root
		}
		if got := fields[19-3]; got != want {
			t.Errorf("worker %s runs at nice %s, want %s", pid, got, want)
		}
	})

	t.Run("children recycled by max_requests", func(t *testing.T) {
		pids := map[string]bool{}
		for range 20 {
			_, out := do(t, c, script("pid.php"), nil)
			pids[out] = true
		}
		if len(pids) < 3 {
			t.Errorf("20 requests ran in %d children, want >= 3 with pm.max_requests = 5", len(pids))
		}
		if s := c.Stats(); s.Open > 2 {
			t.Errorf("Stats() = %+v, want Open <= 2", s)
		}
	})

	t.Run("concurrent requests share max_children connections", func(t *testing.T) {
		var wg sync.WaitGroup
		for range 12 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := c.Do(context.Background(), script("pid.php"), nil)
				if err != nil {
					t.Errorf("Do() error = %v", err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if s := c.Stats(); s.Open > 2 {
					t.Errorf("Stats().Open = %d, want <= 2", s.Open)
				}
			}()
		}
		wg.Wait()
	})

	t.Run("forward", func(t *testing.T) {
		// A client of its own: the pooled connections of the subtests
		// above may belong to workers that max_requests (5) recycles, and
		// a streamed body (not spooled, unlike the node's) cannot be sent
		// again on a new connection. Those idle connections also hold
		// their workers (FastCGI keep-conn): close them first.
		c.Close()
		cfg := fastcgi.DefaultConfig()
		cfg.Address = f.pool.Listen
		cfg.MaxConns, cfg.MaxIdle = f.pool.MaxChildren, f.pool.MaxChildren
		c, err := fastcgi.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			routing := map[string]string{"SCRIPT_FILENAME": filepath.Join(f.dir, "info.php"), "SCRIPT_NAME": "/info.php"}
			if err := c.Forward(w, r, routing); err != nil {
				if errors.Is(err, fastcgi.ErrAborted) {
					panic(http.ErrAbortHandler)
				}
				http.Error(w, err.Error(), http.StatusBadGateway)
			}
		}))
		defer srv.Close()
		resp, err := http.Post(srv.URL+"/?q=1", "text/plain", strings.NewReader("hello"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var got phpResult
		raw, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatalf("status %d, body %q: %v", resp.StatusCode, raw, err)
		}
		if resp.StatusCode != 200 || resp.Header.Get("X-Test") != "yes" || got.Method != "POST" || got.InputLen != 5 {
			t.Errorf("status %d header %v result %+v", resp.StatusCode, resp.Header, got)
		}
	})
}
