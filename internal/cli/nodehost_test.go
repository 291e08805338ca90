package cli

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNodeHostDir: a scheduler's node keeps its directories on its own
// host: the node meta's directory when Nomad resolved it, else the
// allocation's, never the controller's (the spec's).
func TestNodeHostDir(t *testing.T) {
	tests := []struct {
		name, dir, alloc, want, wantErr string
	}{
		{"node meta", "/srv/scalepress", "/var/lib/nomad/alloc/a1/alloc", "/srv/scalepress", ""},
		{"meta unset: the allocation's", "${meta.scalepress_dir}", "/var/lib/nomad/alloc/a1/alloc", "/var/lib/nomad/alloc/a1/alloc/scalepress", ""},
		{"no flag: the allocation's", "", "/a/alloc", "/a/alloc/scalepress", ""},
		{"relative", "srv", "/a/alloc", "", "absolute"},
		{"neither", "${meta.scalepress_dir}", "", "", "NOMAD_ALLOC_DIR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := nodeHostDir(tt.dir, tt.alloc)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("nodeHostDir() = %q, %v; want error %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("nodeHostDir() = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// TestFileFollower: node-host copies Nomad's rendering of the files role's
// address to where the filesync agent reads it, each time it changes, and
// world-readable (the agent runs as another user); an absent rendering
// writes nothing.
func TestFileFollower(t *testing.T) {
	dir := t.TempDir()
	from, to := filepath.Join(dir, "rendered"), filepath.Join(dir, "run", "files-server")
	if err := os.Mkdir(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	f := fileFollower{from: from, to: to, logger: slog.New(slog.DiscardHandler)}
	f.copy()
	if _, err := os.Stat(to); !os.IsNotExist(err) {
		t.Fatalf("no rendering yet: %s exists (%v)", to, err)
	}
	for _, content := range []string{"http://10.77.0.12:2000\n", "http://10.77.0.13:3000\n", ""} {
		if err := os.WriteFile(from, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		f.copy()
		b, err := os.ReadFile(to)
		if err != nil || string(b) != content {
			t.Errorf("rendered %q: copied %q (%v)", content, b, err)
		}
		if fi, err := os.Stat(to); err != nil || fi.Mode().Perm() != 0o644 {
			t.Errorf("copy's mode: %v (%v), want 0644", fi.Mode(), err)
		}
	}
}
