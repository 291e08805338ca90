package controller

import (
	"syscall"
	"testing"

	"github.com/scalepress/scalepress/internal/supervise"
)

func TestBindLow(t *testing.T) {
	cred := &syscall.Credential{Uid: 999, Gid: 999}
	tests := []struct {
		name  string
		cred  *syscall.Credential
		addrs []string
		want  int // ambient capabilities given
	}{
		{"high port", cred, []string{"127.0.0.1:8080"}, 0},
		{"port 80", cred, []string{"127.0.0.1:8080", "127.0.0.1:80"}, 1},
		{"dns on 53", cred, []string{"[::1]:53"}, 1},
		{"runs as the controller's user", nil, []string{"127.0.0.1:80"}, 0},
		{"unset metrics address", cred, []string{""}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := supervise.Spec{Credential: tt.cred}
			bindLow(&s, tt.addrs...)
			if len(s.AmbientCaps) != tt.want {
				t.Fatalf("AmbientCaps = %v, want %d", s.AmbientCaps, tt.want)
			}
		})
	}
}
