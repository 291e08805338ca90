package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scalepress/scalepress/internal/api"
)

// TestProgress: each step once, in order, however often the status is
// polled; then the final line with the site, the login and the dashboard.
func TestProgress(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "admin-password")
	os.WriteFile(pw, []byte("s3cret\n"), 0o600)
	st := &api.Status{SiteURL: "http://127.0.0.1:8080", DashboardURL: "http://127.0.0.1:9090/", Admin: &api.Admin{User: "admin", PasswordFile: pw}}
	steps := []api.StartupStep{{Name: "checks", TookMS: 120}, {Name: "database", TookMS: 6250}, {Name: "site", TookMS: 40}}
	tests := []struct {
		name     string
		terminal bool
		polls    [][]api.StartupStep
		want     []string
	}{
		{
			name:  "polled, not a terminal",
			polls: [][]api.StartupStep{nil, steps[:1], steps[:1], steps[:2], steps},
			want: []string{
				"  checks             0.1s", "  database           6.2s", "  site               0.0s",
				"ready in 41.5s: http://127.0.0.1:8080  admin admin (password in " + pw + ")  dashboard http://127.0.0.1:9090/",
			},
		},
		{
			name: "a terminal sees the password", terminal: true,
			polls: [][]api.StartupStep{steps},
			want: []string{
				"  checks             0.1s", "  database           6.2s", "  site               0.0s",
				"ready in 41.5s: http://127.0.0.1:8080  admin admin / s3cret  dashboard http://127.0.0.1:9090/",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			p := &progress{w: &b, password: tt.terminal}
			for _, all := range tt.polls {
				p.steps(all)
			}
			p.ready(st, 41500*time.Millisecond)
			if d := cmp.Diff(tt.want, strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}
