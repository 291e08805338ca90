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
)

//go:embed php/install.php
var installPHP []byte

// Install is what the one-time install needs.
type Install struct {
	PHP               string // php CLI binary
	Docroot           string // a tree with wp-config.php
	SiteURL           string
	Title             string
	AdminUser         string
	AdminEmail        string
	AdminPasswordFile string
	Permalinks        string
	ScratchDir        string // where the install script is written
}

// Run installs WordPress into its database unless it already is. It reports
// whether this call did the install.
func (in Install) Run(ctx context.Context) (installed bool, err error) {
	script := filepath.Join(in.ScratchDir, "wp-install.php")
	if err := os.WriteFile(script, installPHP, 0o644); err != nil {
		return false, fmt.Errorf("wordpress install: %w", err)
	}
	cmd := exec.CommandContext(ctx, in.PHP, "-d", "display_errors=stderr", script)
	cmd.Env = append(os.Environ(),
		"SP_DOCROOT="+in.Docroot,
		"SP_URL="+in.SiteURL,
		"SP_TITLE="+in.Title,
		"SP_ADMIN_USER="+in.AdminUser,
		"SP_ADMIN_EMAIL="+in.AdminEmail,
		"SP_ADMIN_PASSWORD_FILE="+in.AdminPasswordFile,
		"SP_PERMALINKS="+in.Permalinks,
	)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	err = cmd.Run()
	result := strings.TrimSpace(out.String())
	switch {
	case err == nil && strings.HasSuffix(result, "already-installed"):
		return false, nil
	case err == nil && strings.HasSuffix(result, "installed"):
		return true, nil
	}
	msg := strings.TrimSpace(stderr.String() + "\n" + stripTags(result))
	if len(msg) > 600 {
		msg = msg[:600] + "…"
	}
	return false, fmt.Errorf("wordpress install: php %s: %v: %s", script, err, msg)
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
