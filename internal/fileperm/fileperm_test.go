package fileperm

import (
	"io/fs"
	"testing"
)

func TestMode(t *testing.T) {
	p := Policy{Writable: Writable}
	tests := []struct {
		name string
		rel  string
		dir  bool
		perm fs.FileMode
		want fs.FileMode
	}{
		{"core file", "wp-includes/version.php", false, 0o666, 0o644},
		{"core dir", "wp-includes", true, 0o777, 0o755},
		{"wp-config", "wp-config.php", false, 0o640, 0o644},
		{"wp-content itself", "wp-content", true, 0o775, 0o755},
		{"uploads dir", "wp-content/uploads", true, 0o755, 0o775},
		{"upload", "wp-content/uploads/2026/12/a.jpg", false, 0o644, 0o664},
		{"plugin script", "wp-content/plugins/x/bin/run", false, 0o744, 0o775},
		{"uploads lookalike", "wp-content/uploads-old/a.jpg", false, 0o666, 0o644},
		{"leading slash", "/wp-content/themes/t/style.css", false, 0o600, 0o664},
		{"core executable", "wp-admin/x.sh", false, 0o700, 0o755},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.Mode(tt.rel, tt.dir, tt.perm); got != tt.want {
				t.Fatalf("Mode(%q, dir=%v, %04o) = %04o, want %04o", tt.rel, tt.dir, tt.perm, got, tt.want)
			}
		})
	}
	locked := Policy{Writable: Locked}
	if got := locked.Mode("wp-content/plugins/x/x.php", false, 0o664); got != 0o644 {
		t.Errorf("locked code: plugin file %04o, want 0644", got)
	}
}
