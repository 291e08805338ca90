package phpfpm

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

func TestFindBinary(t *testing.T) {
	tests := []struct {
		name    string
		onPath  string
		globbed []string
		want    string
		wantErr error
	}{
		{name: "on PATH wins", onPath: "/usr/sbin/php-fpm8.2", globbed: []string{"/usr/sbin/php-fpm8.3"}, want: "/usr/sbin/php-fpm8.2"},
		{name: "highest version", globbed: []string{"/usr/sbin/php-fpm8.1", "/usr/sbin/php-fpm8.3", "/usr/sbin/php-fpm8.10", "/usr/sbin/php-fpm7.4"}, want: "/usr/sbin/php-fpm8.10"},
		{name: "unversioned ranks lowest", globbed: []string{"/usr/sbin/php-fpm", "/usr/sbin/php-fpm8"}, want: "/usr/sbin/php-fpm8"},
		{name: "unversioned alone", globbed: []string{"/usr/sbin/php-fpm"}, want: "/usr/sbin/php-fpm"},
		{name: "ignores leftovers", globbed: []string{"/usr/sbin/php-fpm8.2.dpkg-dist", "/usr/sbin/php-fpm-wrapper", "/usr/sbin/php-fpm8.1"}, want: "/usr/sbin/php-fpm8.1"},
		{name: "nothing", wantErr: ErrNotInstalled},
		{name: "only leftovers", globbed: []string{"/usr/sbin/php-fpm.bak"}, wantErr: ErrNotInstalled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lookPath := func(string) (string, error) {
				if tt.onPath == "" {
					return "", exec.ErrNotFound
				}
				return tt.onPath, nil
			}
			glob := func(string) ([]string, error) { return tt.globbed, nil }
			got, err := findBinary(lookPath, glob)
			if !errors.Is(err, tt.wantErr) || got != tt.want {
				t.Errorf("findBinary() = %q, %v; want %q, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
	if msg := ErrNotInstalled.Error(); !strings.Contains(msg, "scripts/install-deps.sh") || !strings.Contains(msg, "php-fpm") {
		t.Errorf("ErrNotInstalled = %q, want the install hint", msg)
	}
}
