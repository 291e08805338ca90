package statedir

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/token"
)

// secretFiles are every file LoadSecrets keeps in DIR/secrets.
var secretFiles = []string{"admin-password", "db-password", "monitor-password", "purge-secret", "wp-salts.json", "root-key", "api-token", FilesMetricsToken}

func TestLoadSecrets(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, l Layout)
		wantErr string // a substring of the error; "" means success
	}{
		{name: "new directory"},
		{
			name: "secrets directory too open",
			prepare: func(t *testing.T, l Layout) {
				if err := os.MkdirAll(l.Secrets(), 0o755); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name: "stale api-token is rewritten",
			prepare: func(t *testing.T, l Layout) {
				if err := os.MkdirAll(l.Secrets(), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(l.Secret("api-token"), []byte("old\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name: "damaged root-key",
			prepare: func(t *testing.T, l Layout) {
				if err := os.MkdirAll(l.Secrets(), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(l.Secret("root-key"), []byte("not a key\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: filepath.Join("secrets", "root-key"),
		},
	}
	keys := cmp.Comparer(func(a, b token.Key) bool { return a.Hex() == b.Hex() })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := Layout{Dir: t.TempDir()}
			if tt.prepare != nil {
				tt.prepare(t, l)
			}
			first, err := LoadSecrets(l)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("LoadSecrets error = %v, want one naming %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadSecrets: %v", err)
			}
			checkMode(t, l.Secrets(), os.ModeDir|0o700)
			for _, f := range secretFiles {
				checkMode(t, l.Secret(f), 0o600)
			}
			if first.RootKey.IsZero() || first.AdminPassword == "" || first.PurgeSecret == "" || len(first.Salts) == 0 {
				t.Fatalf("LoadSecrets left a secret empty")
			}
			b, err := os.ReadFile(l.Secret("api-token"))
			if err != nil {
				t.Fatal(err)
			}
			if id, err := first.Key(token.Control).Verify(strings.TrimSpace(string(b))); err != nil || id != OperatorID {
				t.Errorf("api-token verifies as %q, %v; want %q", id, err, OperatorID)
			}
			b, err = os.ReadFile(l.Secret(FilesMetricsToken))
			if err != nil {
				t.Fatal(err)
			}
			if id, err := first.Key(token.Files).Verify(strings.TrimSpace(string(b))); err != nil || id != api.FilesMetricsID {
				t.Errorf("%s verifies as %q, %v; want %q", FilesMetricsToken, id, err, api.FilesMetricsID)
			}

			second, err := LoadSecrets(l)
			if err != nil {
				t.Fatalf("second LoadSecrets: %v", err)
			}
			if diff := cmp.Diff(first, second, keys); diff != "" {
				t.Errorf("second LoadSecrets differs (-first +second):\n%s", diff)
			}
		})
	}
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode() & (os.ModeDir | os.ModePerm); got != want {
		t.Errorf("%s: mode %v, want %v", path, got, want)
	}
}
