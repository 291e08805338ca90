package nodehost

import (
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/preflight"
	"github.com/scalepress/scalepress/internal/statedir"
)

// files lists the regular files under dir, relative and sorted.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// TestPrepareDocroot: a node the controller runs copies the canonical
// tree of its state directory; a node a scheduler runs on another host
// (FromStore) never reads it: its docroot starts with wp-config.php alone
// and the filesync agent bootstraps the rest from the files store.
func TestPrepareDocroot(t *testing.T) {
	tests := []struct {
		name      string
		fromStore bool
		files     string
		want      []string
		wantErr   string
	}{
		{"copy of the canonical tree", false, "127.0.4.1:8080",
			[]string{"index.php", "wp-config.php", "wp-content/mu-plugins/scalepress-units.php", "wp-content/mu-plugins/scalepress.php", "wp-content/object-cache.php", "wp-content/themes/t/style.css", "wp-settings.php"}, ""},
		{"from the files store", true, "10.77.0.11:8081", []string{"wp-config.php"}, ""},
		{"from the store without files", true, "", nil, "no files role"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			lay := statedir.Layout{Dir: dir}
			for _, f := range []string{"index.php", "wp-settings.php", "wp-content/themes/t/style.css"} {
				p := filepath.Join(lay.Site(), f)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			h := Host{Spec: api.NodeHostSpec{StateDir: dir, WPConfig: "<?php\n", Files: tt.files},
				FromStore: tt.fromStore, Logger: slog.New(slog.DiscardHandler)}
			docroot := lay.Docroot("node-1")
			err := h.prepareDocroot(docroot)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("prepareDocroot() = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, files(t, docroot)); diff != "" {
				t.Errorf("docroot files (-want +got):\n%s", diff)
			}
			// A second start (the task restarted on the same host) keeps
			// what the bootstrap wrote.
			if err := h.prepareDocroot(docroot); err != nil {
				t.Fatalf("second prepareDocroot: %v", err)
			}
		})
	}
}

// TestPHPFPMAutogroup: php-fpm stays in the node host's autogroup (its
// nice is php_nice, per process): an autogroup of its own at php_nice made
// all of PHP weigh a tenth of any other session on the host (ADR 24).
func TestPHPFPMAutogroup(t *testing.T) {
	for _, nice := range []int{10, 0} {
		h := Host{Spec: api.NodeHostSpec{StateDir: t.TempDir(), PHPChildren: 2, PHPNice: nice, PHPFPM: "/usr/sbin/php-fpm8.2"}, Logger: slog.New(slog.DiscardHandler)}
		r, err := h.phpFPMRole("node-1", filepath.Join(t.TempDir(), "run"))
		if err != nil {
			t.Fatal(err)
		}
		if r.OwnSession {
			t.Errorf("php_nice %d: php-fpm in a session of its own, want the host's session (and autogroup)", nice)
		}
	}
}

// TestLinkPool: docroots are linked from the machine's pool only when PHP
// runs as a user of its own, neither root nor the agent's (ADR 29): a PHP
// that owned a linked file could change every node's copy.
func TestLinkPool(t *testing.T) {
	php, role := preflight.User{Name: "www-data", UID: 33, GID: 33}, preflight.User{Name: "scalepress", UID: 999, GID: 999}
	dir := t.TempDir()
	tests := []struct {
		name      string
		asRoot    bool
		files     string
		php, role preflight.User
		want      string
	}{
		{"root, two users", true, "127.0.4.1:8080", php, role, statedir.Layout{Dir: dir}.LinkPool()},
		{"not root: one user", false, "127.0.4.1:8080", php, role, ""},
		{"PHP is the agent's user", true, "127.0.4.1:8080", role, role, ""},
		{"PHP as root", true, "127.0.4.1:8080", preflight.User{Name: "root"}, role, ""},
		{"no file sync", true, "", php, role, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := Host{Spec: api.NodeHostSpec{StateDir: dir, Files: tt.files}, AsRoot: tt.asRoot, PHPUser: tt.php, RoleUser: tt.role}
			if got := h.linkPool(); got != tt.want {
				t.Errorf("linkPool() = %q, want %q", got, tt.want)
			}
		})
	}
}
