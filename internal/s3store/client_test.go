package s3store

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadSecretFile: a credential is the first line of its file, and a
// file that other users may read (or write) is refused, naming the fix.
func TestReadSecretFile(t *testing.T) {
	tests := []struct {
		name    string
		content string
		mode    os.FileMode
		want    string
		wantErr string
	}{
		{"owner only", "AKIAEXAMPLE\n", 0o600, "AKIAEXAMPLE", ""},
		{"read-only owner, spaces trimmed", "  secret  \nignored\n", 0o400, "secret", ""},
		{"group-readable", "secret\n", 0o640, "", "chmod 600"},
		{"world-readable", "secret\n", 0o644, "", "readable or writable by other users"},
		{"group-writable", "secret\n", 0o620, "", "chmod 600"},
		{"empty", "\n", 0o600, "", "is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "key")
			if err := os.WriteFile(p, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, tt.mode); err != nil {
				t.Fatal(err)
			}
			got, err := ReadSecretFile(p)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ReadSecretFile = %q, %v; want an error saying %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ReadSecretFile = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	good := DefaultConfig()
	good.Endpoint, good.Bucket, good.AccessKey, good.SecretKey = "http://127.0.0.1:7070", "site-files", "ak", "sk"
	if err := good.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"no endpoint", func(c *Config) { c.Endpoint = "" }, "Endpoint"},
		{"ftp endpoint", func(c *Config) { c.Endpoint = "ftp://x" }, "Endpoint"},
		{"credentials in the endpoint", func(c *Config) { c.Endpoint = "http://ak:sk@127.0.0.1" }, "Endpoint"},
		{"CA without https", func(c *Config) { c.CAPEM = []byte("x") }, "CAPEM"},
		{"bad bucket", func(c *Config) { c.Bucket = "Upper_Case" }, "Bucket"},
		{"prefix with ..", func(c *Config) { c.Prefix = "a/../b" }, "Prefix"},
		{"no secret", func(c *Config) { c.SecretKey = "" }, "SecretKey"},
		{"no region", func(c *Config) { c.Region = "" }, "Region"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.mutate(&c)
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate = %v, want an error naming %s", err, tt.want)
			}
		})
	}
}
