package phpfpm

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// goldenPool is the fixed pool rendered to testdata/pool.golden.
func goldenPool() Pool {
	return Pool{
		Name:           "node-1",
		Listen:         "/run/scalepress/node-1/php-fpm.sock",
		User:           "www-data",
		Group:          "www-data",
		ListenOwner:    "scalepress",
		ListenGroup:    "www-data",
		MaxChildren:    8,
		Nice:           10,
		PidFile:        "/run/scalepress/node-1/php-fpm.pid",
		ErrorLog:       "/var/log/scalepress/node-1/php-fpm.log",
		SlowLog:        "/var/log/scalepress/node-1/php-slow.log",
		SlowlogTimeout: 5 * time.Second,
		Env: map[string]string{
			"WP_ENV": "production",
			"PATH":   "/usr/local/bin:/usr/bin:/bin",
			"TMPDIR": "/tmp",
		},
		AdminValues: map[string]string{
			"memory_limit":      "256M",
			"error_reporting":   "E_ALL & ~E_DEPRECATED",
			"disable_functions": "exec,passthru,shell_exec,system",
			"open_basedir":      `"/srv/wordpress:/tmp"`,
		},
	}
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", path, diff)
	}
}

func TestRenderGolden(t *testing.T) {
	got, err := Render(goldenPool())
	if err != nil {
		t.Fatalf("Render() error = %v", err)
	}
	checkGolden(t, "pool.golden", got)
	for range 5 { // map order must not leak into the output
		again, _ := Render(goldenPool())
		if string(again) != string(got) {
			t.Fatal("Render() output is not deterministic")
		}
	}
}

func TestRenderDefaults(t *testing.T) {
	tests := []struct {
		name      string
		mod       func(*Pool)
		wantLines []string
		noLines   []string
	}{
		{
			name: "zero values take defaults",
			mod:  func(*Pool) {},
			wantLines: []string{
				"listen.mode = 0660", "pm.max_requests = 1000", "pm.status_path = /fpm-status",
				"ping.path = /fpm-ping", "request_terminate_timeout = 60s", "listen.backlog = 511",
			},
			noLines: []string{"user = ", "group = ", "listen.owner", "listen.group", "slowlog", "request_slowlog_timeout", "env[", "php_admin_value["},
		},
		{
			name:      "negative disables",
			mod:       func(p *Pool) { p.MaxRequests, p.RequestTerminateTimeout = -1, -1 },
			wantLines: []string{"pm.max_requests = 0", "request_terminate_timeout = 0s"},
		},
		{
			name:      "user without group",
			mod:       func(p *Pool) { p.User = "www-data" },
			wantLines: []string{"user = www-data"},
			noLines:   []string{"\ngroup = "},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Pool{Name: "p", Listen: "/run/p.sock", MaxChildren: 2, PidFile: "/run/p.pid", ErrorLog: "/var/log/p.log"}
			tt.mod(&p)
			b, err := Render(p)
			if err != nil {
				t.Fatalf("Render() error = %v", err)
			}
			out := string(b)
			for _, l := range tt.wantLines {
				if !strings.Contains(out, "\n"+l+"\n") {
					t.Errorf("output lacks line %q:\n%s", l, out)
				}
			}
			for _, l := range tt.noLines {
				if strings.Contains(out, l) {
					t.Errorf("output has %q:\n%s", l, out)
				}
			}
		})
	}
}

func TestPoolValidate(t *testing.T) {
	tests := []struct {
		name    string
		mod     func(*Pool)
		wantErr string
	}{
		{name: "valid", mod: func(*Pool) {}},
		{name: "empty name", mod: func(p *Pool) { p.Name = "" }, wantErr: `phpfpm: pool.name: "" must be non-empty and use only A-Z a-z 0-9 . _ -`},
		{name: "bracket in name", mod: func(p *Pool) { p.Name = "a]b" }, wantErr: `phpfpm: pool.name: "a]b" must be non-empty and use only A-Z a-z 0-9 . _ -`},
		{name: "reserved name", mod: func(p *Pool) { p.Name = "global" }, wantErr: `phpfpm: pool.name: "global" is reserved`},
		{name: "relative listen path", mod: func(p *Pool) { p.Listen = "run/php.sock" }, wantErr: `phpfpm: pool.listen: must be an absolute path, got "run/php.sock"`},
		{name: "tcp listen", mod: func(p *Pool) { p.Listen = "127.0.0.1:9000" }, wantErr: `phpfpm: pool.listen: must be an absolute path, got "127.0.0.1:9000"`},
		{name: "socket path too long", mod: func(p *Pool) { p.Listen = "/" + strings.Repeat("s", 107) }, wantErr: "phpfpm: pool.listen: 108 bytes, longer than the unix socket limit of 107"},
		{name: "newline in listen", mod: func(p *Pool) { p.Listen = "/run/a\nuser = root" }, wantErr: "phpfpm: pool.listen: must not contain a newline, NUL, double quote or ';'"},
		{name: "bad user", mod: func(p *Pool) { p.User = "www data" }, wantErr: `phpfpm: pool.user: "www data" is not a valid user or group name`},
		{name: "group without user", mod: func(p *Pool) { p.User = "" }, wantErr: "phpfpm: pool.group: set without pool.user"},
		{name: "bad listen owner", mod: func(p *Pool) { p.ListenOwner = "-x" }, wantErr: `phpfpm: pool.listen_owner: "-x" is not a valid user or group name`},
		{name: "bad listen mode", mod: func(p *Pool) { p.ListenMode = "0999" }, wantErr: `phpfpm: pool.listen_mode: "0999" must be an octal mode like 0660`},
		{name: "negative nice", mod: func(p *Pool) { p.Nice = -5 }, wantErr: "phpfpm: pool.nice: must be 0 (unchanged) to 19, got -5"},
		{name: "nice too high", mod: func(p *Pool) { p.Nice = 20 }, wantErr: "phpfpm: pool.nice: must be 0 (unchanged) to 19, got 20"},
		{name: "max children zero", mod: func(p *Pool) { p.MaxChildren = 0 }, wantErr: "phpfpm: pool.max_children: must be at least 1, got 0"},
		{name: "status path relative", mod: func(p *Pool) { p.StatusPath = "status" }, wantErr: `phpfpm: pool.status_path: "status" must be a URL path like /fpm-status`},
		{name: "ping path with space", mod: func(p *Pool) { p.PingPath = "/a b" }, wantErr: `phpfpm: pool.ping_path: "/a b" must be a URL path like /fpm-status`},
		{name: "ping equals status", mod: func(p *Pool) { p.PingPath = "/fpm-status" }, wantErr: `phpfpm: pool.ping_path: same as pool.status_path "/fpm-status"`},
		{name: "relative pid file", mod: func(p *Pool) { p.PidFile = "fpm.pid" }, wantErr: `phpfpm: pool.pid_file: must be an absolute path, got "fpm.pid"`},
		{name: "missing error log", mod: func(p *Pool) { p.ErrorLog = "" }, wantErr: `phpfpm: pool.error_log: must be an absolute path, got ""`},
		{name: "slowlog timeout without slowlog", mod: func(p *Pool) { p.SlowLog = "" }, wantErr: `phpfpm: pool.slow_log: must be an absolute path, got ""`},
		{name: "fractional slowlog timeout", mod: func(p *Pool) { p.SlowLog, p.SlowlogTimeout = "/s.log", 1500*time.Millisecond }, wantErr: "phpfpm: pool.slowlog_timeout: must be whole seconds, got 1.5s"},
		{name: "negative slowlog timeout", mod: func(p *Pool) { p.SlowLog, p.SlowlogTimeout = "/s.log", -time.Second }, wantErr: "phpfpm: pool.slowlog_timeout: must not be negative, got -1s"},
		{name: "fractional terminate timeout", mod: func(p *Pool) { p.RequestTerminateTimeout = 100 * time.Millisecond }, wantErr: "phpfpm: pool.request_terminate_timeout: must be whole seconds, got 100ms"},
		{name: "newline in env value", mod: func(p *Pool) { p.Env = map[string]string{"A": "x\ny"} }, wantErr: "phpfpm: pool.env[A]: value must not contain a double quote, backslash, newline, NUL or ${"},
		{name: "quote in env value", mod: func(p *Pool) { p.Env = map[string]string{"A": `x"y`} }, wantErr: "phpfpm: pool.env[A]: value must not contain a double quote, backslash, newline, NUL or ${"},
		{name: "interpolation in env value", mod: func(p *Pool) { p.Env = map[string]string{"A": "${HOME}"} }, wantErr: "phpfpm: pool.env[A]: value must not contain a double quote, backslash, newline, NUL or ${"},
		{name: "bad env name", mod: func(p *Pool) { p.Env = map[string]string{"A-B": "x"} }, wantErr: `phpfpm: pool.env: name "A-B" must match [A-Za-z_][A-Za-z0-9_]*`},
		{name: "empty env value", mod: func(p *Pool) { p.Env = map[string]string{"A": ""} }, wantErr: "phpfpm: pool.env[A]: value must not be empty (php-fpm rejects it)"},
		{name: "backslash in env value", mod: func(p *Pool) { p.Env = map[string]string{"A": `a\\b`} }, wantErr: "phpfpm: pool.env[A]: value must not contain a double quote, backslash, newline, NUL or ${"},
		{name: "empty admin value allowed", mod: func(p *Pool) { p.AdminValues = map[string]string{"disable_functions": ""} }},
		{name: "env special characters allowed", mod: func(p *Pool) { p.Env = map[string]string{"A": "a b;c=d#e'f$g"} }},
		{name: "newline in admin value", mod: func(p *Pool) { p.AdminValues = map[string]string{"memory_limit": "1G\nuser = root"} }, wantErr: "phpfpm: pool.admin_values[memory_limit]: value must not contain a newline or NUL"},
		{name: "newline in admin key", mod: func(p *Pool) { p.AdminValues = map[string]string{"a\nb": "1"} }, wantErr: "phpfpm: pool.admin_values: name \"a\\nb\" must match [A-Za-z0-9_.]+"},
		{name: "bracket in admin key", mod: func(p *Pool) { p.AdminValues = map[string]string{"a]": "1"} }, wantErr: `phpfpm: pool.admin_values: name "a]" must match [A-Za-z0-9_.]+`},
		{name: "negative backlog", mod: func(p *Pool) { p.ListenBacklog = -5 }, wantErr: "phpfpm: pool.listen_backlog: must be at least 1, got -5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := goldenPool()
			tt.mod(&p)
			err := p.Validate()
			if diff := cmp.Diff(tt.wantErr, errString(err)); diff != "" {
				t.Errorf("Validate() error mismatch (-want +got):\n%s", diff)
			}
			if _, rerr := Render(p); errString(rerr) != errString(err) {
				t.Errorf("Render() error = %v, want the Validate() error", rerr)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestRenderINIGolden(t *testing.T) {
	got, err := RenderINI(DefaultINI())
	if err != nil {
		t.Fatalf("RenderINI() error = %v", err)
	}
	checkGolden(t, "php.ini.golden", got)
}

func TestINIValidate(t *testing.T) {
	tests := []struct {
		name      string
		ini       INI
		wantErr   string
		wantLines []string
	}{
		{
			name:      "zero value takes defaults except validate_timestamps",
			ini:       INI{},
			wantLines: []string{"opcache.memory_consumption = 128", "opcache.validate_timestamps = 0", "memory_limit = 256M", "max_execution_time = 60"},
		},
		{
			name:      "custom",
			ini:       INI{OpcacheMemoryMB: 256, ValidateTimestamps: true, RevalidateFreq: 10, MemoryLimit: "-1", UploadMaxFilesize: "1G", PostMaxSize: "1G", MaxExecutionTime: 300},
			wantLines: []string{"opcache.memory_consumption = 256", "opcache.validate_timestamps = 1", "opcache.revalidate_freq = 10", "memory_limit = -1", "upload_max_filesize = 1G", "post_max_size = 1G", "max_execution_time = 300"},
		},
		{name: "small opcache", ini: INI{OpcacheMemoryMB: 4}, wantErr: "phpfpm: ini.opcache_memory_mb: must be at least 8, got 4"},
		{name: "negative revalidate", ini: INI{RevalidateFreq: -1}, wantErr: "phpfpm: ini.revalidate_freq: must not be negative, got -1"},
		{name: "defaults revalidate on every include", ini: DefaultINI(), wantLines: []string{"opcache.validate_timestamps = 1", "opcache.revalidate_freq = 0"}},
		{name: "auto prepend", ini: INI{AutoPrependFile: "/run/node-1/gate.php"}, wantLines: []string{`auto_prepend_file = "/run/node-1/gate.php"`}},
		{name: "relative auto prepend", ini: INI{AutoPrependFile: "gate.php"}, wantErr: `phpfpm: ini.auto_prepend_file: "gate.php" must be an absolute path without quotes, ';', '$' or line breaks`},
		{name: "injected auto prepend", ini: INI{AutoPrependFile: "/x\"\nallow_url_include=On"}, wantErr: `phpfpm: ini.auto_prepend_file: "/x\"\nallow_url_include=On" must be an absolute path without quotes, ';', '$' or line breaks`},
		{name: "negative max execution", ini: INI{MaxExecutionTime: -1}, wantErr: "phpfpm: ini.max_execution_time: must not be negative, got -1"},
		{name: "bad memory limit", ini: INI{MemoryLimit: "256MB"}, wantErr: `phpfpm: ini.memory_limit: "256MB" must be a size like 256M or -1`},
		{name: "injected memory limit", ini: INI{MemoryLimit: "1G\nauto_prepend_file=/x"}, wantErr: "phpfpm: ini.memory_limit: \"1G\\nauto_prepend_file=/x\" must be a size like 256M or -1"},
		{name: "bad upload size", ini: INI{UploadMaxFilesize: "lots"}, wantErr: `phpfpm: ini.upload_max_filesize: "lots" must be a size like 64M`},
		{name: "bad post size", ini: INI{PostMaxSize: "-1"}, wantErr: `phpfpm: ini.post_max_size: "-1" must be a size like 64M`},
		{name: "post below upload", ini: INI{UploadMaxFilesize: "128M", PostMaxSize: "64M"}, wantErr: "phpfpm: ini.post_max_size: 64M is below upload_max_filesize 128M, so such uploads would fail"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := RenderINI(tt.ini)
			if diff := cmp.Diff(tt.wantErr, errString(err)); diff != "" {
				t.Errorf("RenderINI() error mismatch (-want +got):\n%s", diff)
			}
			if errString(tt.ini.Validate()) != errString(err) {
				t.Errorf("Validate() = %v, want the RenderINI() error", tt.ini.Validate())
			}
			for _, l := range tt.wantLines {
				if !strings.Contains(string(got), "\n"+l+"\n") {
					t.Errorf("output lacks line %q:\n%s", l, got)
				}
			}
		})
	}
}
