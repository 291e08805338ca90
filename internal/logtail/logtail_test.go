package logtail

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLastError(t *testing.T) {
	tests := []struct {
		name, log, want string
	}{
		{"mariadb cause before aborting", "[Note] starting\n[ERROR] Fatal error: Can't open privilege tables\n[ERROR] Aborting\n", "[ERROR] Fatal error: Can't open privilege tables"},
		{"no error word: last line", "one\ntwo\n\n", "two"},
		{"php-fpm", "NOTICE: fpm is running\nERROR: unable to bind listening socket\nNOTICE: exiting\n", "ERROR: unable to bind listening socket"},
		{"empty", "", "the log is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "x.log")
			os.WriteFile(p, []byte(tt.log), 0o644)
			if got := LastError(p); got != tt.want {
				t.Errorf("LastError = %q, want %q", got, tt.want)
			}
		})
	}
	if got := LastError(filepath.Join(t.TempDir(), "missing")); got != "no log" {
		t.Errorf("missing file: %q", got)
	}
}
