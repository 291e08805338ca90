// Package phpfpm renders php-fpm configuration, sizes its worker pool, finds
// its binary, and parses its status page.
package phpfpm

import (
	"bytes"
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Pool describes one php-fpm master running one static pool. Zero values of
// ListenMode, MaxRequests, StatusPath, PingPath, RequestTerminateTimeout and
// ListenBacklog mean the defaults that DefaultPool sets.
type Pool struct {
	Name   string // pool name, e.g. "node-1"
	Listen string // unix socket path (absolute)
	// User and Group the children run as; empty omits the lines (needed
	// when the master is not root). Group requires User.
	User, Group string
	// ListenOwner, ListenGroup and ListenMode set the socket's ownership
	// and mode; empty owner/group omit the lines.
	ListenOwner, ListenGroup string
	ListenMode               string // octal, default "0660"
	MaxChildren              int    // pm = static
	// MaxRequests is pm.max_requests, default 1000; negative disables
	// respawning (renders 0).
	MaxRequests int
	// StatusPath and PingPath default to "/fpm-status" and "/fpm-ping".
	StatusPath, PingPath string
	PidFile, ErrorLog    string // absolute paths
	// SlowLog is the slow-request log (absolute path); requests running
	// longer than SlowlogTimeout are traced there. 0 turns it off.
	SlowLog        string
	SlowlogTimeout time.Duration
	// RequestTerminateTimeout kills a child running one request longer,
	// default 60s; negative turns it off (renders 0).
	RequestTerminateTimeout time.Duration
	// Env holds env[K] = "V" lines (clear_env is on). Values must be
	// non-empty and free of '"', '\', "${", newlines and NUL (php-fpm's
	// parser rejects, unescapes or interpolates them). A value starting
	// with '$' takes the master's environment variable of that name.
	Env map[string]string
	// AdminValues holds php_admin_value[k] = v lines, v written verbatim
	// (unquoted, so E_ALL & ~E_NOTICE and On/Off work; quote it yourself
	// when it contains ';').
	AdminValues   map[string]string
	ListenBacklog int // default 511
	// Nice is the workers' nice(2) value, process.priority: 1 to 19 lowers
	// their CPU priority below the processes they share a host with; 0
	// leaves it (renders nothing). php-fpm applies it only when its master
	// runs as root, and logs a notice otherwise.
	Nice int
}

// DefaultPool returns a Pool with every default set; Name, Listen,
// MaxChildren, PidFile and ErrorLog still need values.
func DefaultPool() Pool {
	return Pool{
		ListenMode:              "0660",
		MaxRequests:             1000,
		StatusPath:              "/fpm-status",
		PingPath:                "/fpm-ping",
		RequestTerminateTimeout: 60 * time.Second,
		ListenBacklog:           511,
	}
}

func (p Pool) withDefaults() Pool {
	d := DefaultPool()
	if p.ListenMode == "" {
		p.ListenMode = d.ListenMode
	}
	if p.MaxRequests == 0 {
		p.MaxRequests = d.MaxRequests
	}
	if p.StatusPath == "" {
		p.StatusPath = d.StatusPath
	}
	if p.PingPath == "" {
		p.PingPath = d.PingPath
	}
	if p.RequestTerminateTimeout == 0 {
		p.RequestTerminateTimeout = d.RequestTerminateTimeout
	}
	if p.ListenBacklog == 0 {
		p.ListenBacklog = d.ListenBacklog
	}
	return p
}

// maxSocketPath is the longest unix socket path (sun_path is 108 bytes with
// its terminating NUL).
const maxSocketPath = 107

var (
	poolNameRE = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
	accountRE  = regexp.MustCompile(`^[A-Za-z0-9._][A-Za-z0-9._-]*\$?$`)
	modeRE     = regexp.MustCompile(`^0?[0-7]{3}$`)
	envNameRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	iniNameRE  = regexp.MustCompile(`^[A-Za-z0-9_.]+$`)
	urlPathRE  = regexp.MustCompile(`^/[A-Za-z0-9._~/-]*$`)
)

// Validate reports the first invalid field, naming it.
func (p Pool) Validate() error {
	p = p.withDefaults()
	switch {
	case !poolNameRE.MatchString(p.Name):
		return fmt.Errorf("phpfpm: pool.name: %q must be non-empty and use only A-Z a-z 0-9 . _ -", p.Name)
	case p.Name == "global":
		return fmt.Errorf("phpfpm: pool.name: \"global\" is reserved")
	}
	if err := absPath("listen", p.Listen); err != nil {
		return err
	}
	if len(p.Listen) > maxSocketPath {
		return fmt.Errorf("phpfpm: pool.listen: %d bytes, longer than the unix socket limit of %d", len(p.Listen), maxSocketPath)
	}
	for _, f := range []struct{ name, v string }{
		{"user", p.User}, {"group", p.Group}, {"listen_owner", p.ListenOwner}, {"listen_group", p.ListenGroup},
	} {
		if f.v != "" && !accountRE.MatchString(f.v) {
			return fmt.Errorf("phpfpm: pool.%s: %q is not a valid user or group name", f.name, f.v)
		}
	}
	if p.Group != "" && p.User == "" {
		return fmt.Errorf("phpfpm: pool.group: set without pool.user")
	}
	if !modeRE.MatchString(p.ListenMode) {
		return fmt.Errorf("phpfpm: pool.listen_mode: %q must be an octal mode like 0660", p.ListenMode)
	}
	if p.MaxChildren < 1 {
		return fmt.Errorf("phpfpm: pool.max_children: must be at least 1, got %d", p.MaxChildren)
	}
	for _, f := range []struct{ name, v string }{{"status_path", p.StatusPath}, {"ping_path", p.PingPath}} {
		if !urlPathRE.MatchString(f.v) {
			return fmt.Errorf("phpfpm: pool.%s: %q must be a URL path like /fpm-status", f.name, f.v)
		}
	}
	if p.StatusPath == p.PingPath {
		return fmt.Errorf("phpfpm: pool.ping_path: same as pool.status_path %q", p.StatusPath)
	}
	if err := absPath("pid_file", p.PidFile); err != nil {
		return err
	}
	if err := absPath("error_log", p.ErrorLog); err != nil {
		return err
	}
	if p.SlowLog != "" || p.SlowlogTimeout != 0 {
		if err := absPath("slow_log", p.SlowLog); err != nil {
			return err
		}
	}
	if err := seconds("slowlog_timeout", p.SlowlogTimeout, false); err != nil {
		return err
	}
	if err := seconds("request_terminate_timeout", p.RequestTerminateTimeout, true); err != nil {
		return err
	}
	for _, k := range slices.Sorted(maps.Keys(p.Env)) {
		v := p.Env[k]
		if !envNameRE.MatchString(k) {
			return fmt.Errorf("phpfpm: pool.env: name %q must match [A-Za-z_][A-Za-z0-9_]*", k)
		}
		if v == "" {
			return fmt.Errorf("phpfpm: pool.env[%s]: value must not be empty (php-fpm rejects it)", k)
		}
		if strings.ContainsAny(v, "\"\n\r\x00\\") || strings.Contains(v, "${") {
			return fmt.Errorf("phpfpm: pool.env[%s]: value must not contain a double quote, backslash, newline, NUL or ${", k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(p.AdminValues)) {
		if !iniNameRE.MatchString(k) {
			return fmt.Errorf("phpfpm: pool.admin_values: name %q must match [A-Za-z0-9_.]+", k)
		}
		if strings.ContainsAny(p.AdminValues[k], "\n\r\x00") {
			return fmt.Errorf("phpfpm: pool.admin_values[%s]: value must not contain a newline or NUL", k)
		}
	}
	if p.Nice < 0 || p.Nice > 19 {
		return fmt.Errorf("phpfpm: pool.nice: must be 0 (unchanged) to 19, got %d", p.Nice)
	}
	if p.ListenBacklog < 1 {
		return fmt.Errorf("phpfpm: pool.listen_backlog: must be at least 1, got %d", p.ListenBacklog)
	}
	return nil
}

func absPath(field, v string) error {
	if !filepath.IsAbs(v) {
		return fmt.Errorf("phpfpm: pool.%s: must be an absolute path, got %q", field, v)
	}
	if strings.ContainsAny(v, "\n\r\x00\";") {
		return fmt.Errorf("phpfpm: pool.%s: must not contain a newline, NUL, double quote or ';'", field)
	}
	return nil
}

func seconds(field string, d time.Duration, negativeOK bool) error {
	if d < 0 {
		if negativeOK {
			return nil
		}
		return fmt.Errorf("phpfpm: pool.%s: must not be negative, got %s", field, d)
	}
	if d%time.Second != 0 {
		return fmt.Errorf("phpfpm: pool.%s: must be whole seconds, got %s", field, d)
	}
	return nil
}

// Render returns a complete php-fpm.conf for p: a [global] section and the
// pool. Output is deterministic (map entries sorted).
func Render(p Pool) ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	p = p.withDefaults()
	var b bytes.Buffer
	line := func(k, v string) { fmt.Fprintf(&b, "%s = %s\n", k, v) }
	b.WriteString("; Generated by scalepress. Do not edit.\n[global]\n")
	line("pid", p.PidFile)
	line("error_log", p.ErrorLog)
	line("log_level", "notice")
	line("daemonize", "no")

	fmt.Fprintf(&b, "\n[%s]\n", p.Name)
	if p.User != "" {
		line("user", p.User)
	}
	if p.Group != "" {
		line("group", p.Group)
	}
	line("listen", p.Listen)
	line("listen.backlog", strconv.Itoa(p.ListenBacklog))
	if p.ListenOwner != "" {
		line("listen.owner", p.ListenOwner)
	}
	if p.ListenGroup != "" {
		line("listen.group", p.ListenGroup)
	}
	line("listen.mode", p.ListenMode)
	line("pm", "static")
	line("pm.max_children", strconv.Itoa(p.MaxChildren))
	line("pm.max_requests", strconv.Itoa(max(p.MaxRequests, 0)))
	line("pm.status_path", p.StatusPath)
	line("ping.path", p.PingPath)
	line("request_terminate_timeout", secs(max(p.RequestTerminateTimeout, 0)))
	if p.Nice > 0 {
		line("process.priority", strconv.Itoa(p.Nice))
	}
	if p.SlowLog != "" {
		line("slowlog", p.SlowLog)
	}
	if p.SlowlogTimeout > 0 {
		line("request_slowlog_timeout", secs(p.SlowlogTimeout))
	}
	line("catch_workers_output", "yes")
	line("decorate_workers_output", "no")
	line("clear_env", "yes")
	for _, k := range slices.Sorted(maps.Keys(p.Env)) {
		line("env["+k+"]", `"`+p.Env[k]+`"`)
	}
	for _, k := range slices.Sorted(maps.Keys(p.AdminValues)) {
		line("php_admin_value["+k+"]", p.AdminValues[k])
	}
	return b.Bytes(), nil
}

func secs(d time.Duration) string { return strconv.FormatInt(int64(d/time.Second), 10) + "s" }
