package wordpress

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

//go:embed php/install.php
var installPHP []byte

// Install is what the one-time install needs.
type Install struct {
	PHP        string // php CLI binary
	Docroot    string // a tree with wp-config.php
	SiteURL    string
	Title      string
	AdminUser  string
	AdminEmail string
	// AdminPasswordFile is read here and handed to PHP on its stdin, so it
	// stays readable by its owner only.
	AdminPasswordFile string
	Permalinks        string
	ScratchDir        string // where the install script is written; readable by Credential
	// Credential is the user PHP runs as (the PHP user, as php-fpm's
	// workers); nil runs it as this process's user. It needs to read the
	// docroot, wp-config.php and ScratchDir, nothing more.
	Credential *syscall.Credential
}

// InstallResult is what the install did.
type InstallResult struct {
	Installed bool   // false: WordPress was installed already
	User      string // the user PHP ran as, as PHP saw it
}

// Run installs WordPress into its database unless it already is.
func (in Install) Run(ctx context.Context) (InstallResult, error) {
	password, err := os.ReadFile(in.AdminPasswordFile)
	if err != nil {
		return InstallResult{}, fmt.Errorf("wordpress install: admin password: %w", err)
	}
	script := filepath.Join(in.ScratchDir, "wp-install.php")
	if err := writeIfChanged(script, installPHP); err != nil {
		return InstallResult{}, fmt.Errorf("wordpress install: %w", err)
	}
	cmd := exec.CommandContext(ctx, in.PHP, "-d", "display_errors=stderr", script)
	cmd.Dir = in.Docroot
	// Only what the script needs: the caller's environment may hold
	// secrets that are none of PHP's business.
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/bin:/usr/bin:/bin"
	}
	cmd.Env = []string{
		"PATH=" + path,
		"SP_DOCROOT=" + in.Docroot,
		"SP_URL=" + in.SiteURL,
		"SP_TITLE=" + in.Title,
		"SP_ADMIN_USER=" + in.AdminUser,
		"SP_ADMIN_EMAIL=" + in.AdminEmail,
		"SP_PERMALINKS=" + in.Permalinks,
	}
	if in.Credential != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: in.Credential}
	}
	cmd.Stdin = bytes.NewReader(password)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	err = cmd.Run()
	var res InstallResult
	var result string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if u, ok := strings.CutPrefix(line, "user="); ok {
			res.User = u
		} else {
			result = line
		}
	}
	switch {
	case err == nil && result == "already-installed":
		return res, nil
	case err == nil && result == "installed":
		res.Installed = true
		return res, nil
	}
	msg := strings.TrimSpace(stderr.String() + "\n" + stripTags(out.String()))
	if len(msg) > 600 {
		msg = msg[:600] + "…"
	}
	return res, fmt.Errorf("wordpress install: php %s: %v: %s", script, err, msg)
}

// stripTags keeps the text of an HTML error page (wp_die output) readable in a log line.
func stripTags(s string) string {
	var b strings.Builder
	in := false
	for _, r := range s {
		switch {
		case r == '<':
			in = true
		case r == '>':
			in = false
		case !in:
			b.WriteRune(r)
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}
