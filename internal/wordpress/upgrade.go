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

//go:embed php/upgrade.php
var upgradePHP []byte

// Upgrade runs WordPress's database upgrade (wp_upgrade) through PHP CLI
// in a docroot that holds the new core and wp-config.php.
type Upgrade struct {
	PHP        string // php CLI binary
	Docroot    string
	SiteURL    string
	ScratchDir string // where the script is written; readable by Credential
	// Credential is the user PHP runs as; nil: this process's user.
	Credential *syscall.Credential
}

// UpgradeResult is the database version before and after.
type UpgradeResult struct {
	From, To int
}

// Run upgrades the database when its version is not the code's.
func (u Upgrade) Run(ctx context.Context) (UpgradeResult, error) {
	script := filepath.Join(u.ScratchDir, "wp-upgrade.php")
	if err := writeIfChanged(script, upgradePHP); err != nil {
		return UpgradeResult{}, fmt.Errorf("wordpress upgrade: %w", err)
	}
	cmd := exec.CommandContext(ctx, u.PHP, "-d", "display_errors=stderr", script)
	cmd.Dir = u.Docroot
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/bin:/usr/bin:/bin"
	}
	cmd.Env = []string{"PATH=" + path, "SP_DOCROOT=" + u.Docroot, "SP_URL=" + u.SiteURL}
	if u.Credential != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: u.Credential}
	}
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	err := cmd.Run()
	var res UpgradeResult
	for _, line := range strings.Split(out.String(), "\n") {
		if v, ok := strings.CutPrefix(line, "db="); ok {
			if _, serr := fmt.Sscanf(v, "%d %d", &res.From, &res.To); serr == nil && err == nil {
				return res, nil
			}
		}
	}
	msg := strings.TrimSpace(stderr.String() + "\n" + stripTags(out.String()))
	if len(msg) > 600 {
		msg = msg[:600] + "…"
	}
	return res, fmt.Errorf("wordpress upgrade: php %s: %v: %s", script, err, msg)
}
