package supervise

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestSpecValidate(t *testing.T) {
	valid := Spec{Name: "db-1", Path: "/usr/sbin/mariadbd", LogFile: "/var/log/scalepress/db-1.log"}
	tests := []struct {
		name    string
		mutate  func(*Spec)
		wantErr string // substring; "" means valid
	}{
		{"valid", func(*Spec) {}, ""},
		{"valid full", func(s *Spec) {
			s.StopSignal = syscall.SIGQUIT
			s.StopTimeout = time.Second
			s.PIDDir = "/run/scalepress"
			s.Restart = RestartPolicy{InitialBackoff: time.Second, MaxBackoff: time.Minute, MaxRestarts: -1}
		}, ""},
		{"empty name", func(s *Spec) { s.Name = "" }, "Name: must not be empty"},
		{"upper-case name", func(s *Spec) { s.Name = "DB" }, "Name: must match"},
		{"name with slash", func(s *Spec) { s.Name = "../x" }, "Name: must match"},
		{"name with underscore", func(s *Spec) { s.Name = "db_1" }, "Name: must match"},
		{"empty path", func(s *Spec) { s.Path = "" }, "Path: must not be empty"},
		{"empty log file", func(s *Spec) { s.LogFile = "" }, "LogFile: must not be empty"},
		{"relative log file", func(s *Spec) { s.LogFile = "db.log" }, "LogFile: must be absolute"},
		{"negative signal", func(s *Spec) { s.StopSignal = -1 }, "StopSignal"},
		{"negative stop timeout", func(s *Spec) { s.StopTimeout = -time.Second }, "StopTimeout"},
		{"relative pid dir", func(s *Spec) { s.PIDDir = "run" }, "PIDDir: must be absolute"},
		{"negative backoff", func(s *Spec) { s.Restart.InitialBackoff = -1 }, "Restart.InitialBackoff"},
		{"negative window", func(s *Spec) { s.Restart.Window = -1 }, "Restart.Window"},
		{"max below initial", func(s *Spec) {
			s.Restart.InitialBackoff = time.Second
			s.Restart.MaxBackoff = time.Millisecond
		}, "Restart.MaxBackoff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := valid
			tt.mutate(&s)
			err := s.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate() = %v, want error containing %q", err, tt.wantErr)
			}
			if !strings.HasPrefix(err.Error(), "supervise: validate ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestSpecWithDefaults(t *testing.T) {
	in := Spec{Name: "x", Path: "/bin/true", LogFile: "/tmp/x.log",
		Args:       []string{"a"},
		Credential: &syscall.Credential{Uid: 1, Groups: []uint32{2}}}
	got := in.withDefaults()
	if got.StopSignal != syscall.SIGTERM || got.StopTimeout != 10*time.Second {
		t.Errorf("stop defaults = %v, %v", got.StopSignal, got.StopTimeout)
	}
	want := RestartPolicy{InitialBackoff: 200 * time.Millisecond, MaxBackoff: 10 * time.Second,
		ResetAfter: 30 * time.Second, MaxRestarts: 5, Window: time.Minute}
	if got.Restart != want {
		t.Errorf("restart defaults = %+v, want %+v", got.Restart, want)
	}
	if got.Env != nil {
		t.Errorf("nil Env became %q; nil must stay nil to inherit the environment", got.Env)
	}
	got.Args[0] = "changed"
	got.Credential.Groups[0] = 99
	if in.Args[0] != "a" || in.Credential.Groups[0] != 2 {
		t.Error("withDefaults shares memory with the caller's Spec")
	}
}

func TestStateString(t *testing.T) {
	tests := []struct {
		s    State
		want string
	}{
		{Starting, "starting"}, {Running, "running"}, {Backoff, "backoff"},
		{Stopping, "stopping"}, {Stopped, "stopped"}, {Failed, "failed"}, {State(42), "state(42)"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.s.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}
