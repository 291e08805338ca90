package supervise

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Defaults applied to zero fields of Spec and RestartPolicy.
const (
	defaultStopSignal     = syscall.SIGTERM
	defaultStopTimeout    = 10 * time.Second
	defaultInitialBackoff = 200 * time.Millisecond
	defaultMaxBackoff     = 10 * time.Second
	defaultResetAfter     = 30 * time.Second
	defaultMaxRestarts    = 5
	defaultWindow         = 60 * time.Second
)

// Spec describes one supervised program.
type Spec struct {
	// Name identifies the process in logs, events and the pid file name.
	// It must match [a-z0-9-]+, e.g. "node-1" or "db-1".
	Name string
	// Path is the program to run. A name without a slash is looked up in PATH.
	Path string
	// Args are the arguments after the program name.
	Args []string
	// Env is the child's environment; nil inherits os.Environ(), an empty
	// non-nil slice gives an empty environment.
	Env []string
	// Dir is the working directory; empty means the supervisor's.
	Dir string
	// LogFile is the absolute path that receives the child's stdout and
	// stderr, appended. It is created (0640, parents 0750) if missing and
	// reopened on every start, so it may be rotated by renaming.
	LogFile string
	// Credential optionally runs the child as another uid/gid, e.g. mariadbd
	// as mysql when the supervisor runs as root. Pdeathsig still applies: Go
	// sets it after switching credentials in the child.
	Credential *syscall.Credential
	// AmbientCaps are Linux capabilities the child keeps after switching to
	// Credential, e.g. CAP_NET_BIND_SERVICE for an unprivileged edge on
	// port 80. Only with Credential; the supervisor must hold them.
	AmbientCaps []uintptr
	// StopSignal is sent to the process group by Stop; default SIGTERM.
	StopSignal syscall.Signal
	// StopTimeout is how long Stop waits after StopSignal before it sends
	// SIGKILL to the whole process group; default 10s.
	StopTimeout time.Duration
	// Restart controls what happens when the child exits on its own.
	Restart RestartPolicy
	// PIDDir optionally names an absolute directory where PIDDir/<Name>.pid
	// holds "pid\nexe-path\n" while the child runs. It is removed after the
	// child exits. See CleanupStale.
	PIDDir string
	// OwnSession starts the child in a session of its own (setsid; it
	// still leads its own process group, which Stop signals), and so in a
	// scheduling autogroup of its own: the kernel's fair scheduler shares
	// the CPU first between the autogroups that want it, then between the
	// tasks of each by their nice. The child's CPU then no longer counts
	// against the supervisor's session, nor the supervisor's against the
	// child (autogroup.go says why that matters). False: the supervisor's
	// session.
	OwnSession bool
}

// RestartPolicy controls restarts after the child exits on its own (any exit
// not requested by Stop, including exit status 0).
type RestartPolicy struct {
	// Never runs the program once. A clean exit ends in Stopped, a failed one
	// in Failed.
	Never bool
	// InitialBackoff is the delay before the first restart; it doubles for
	// every further consecutive restart. Default 200ms.
	InitialBackoff time.Duration
	// MaxBackoff caps the delay. Default 10s.
	MaxBackoff time.Duration
	// ResetAfter: a run that lasted longer than this resets the delay to
	// InitialBackoff. Default 30s.
	ResetAfter time.Duration
	// MaxRestarts is how many restarts are allowed within Window; the exit
	// after that gives up and marks the process Failed. Default 5; negative
	// means never give up.
	MaxRestarts int
	// Window is the sliding window for MaxRestarts. Default 60s.
	Window time.Duration
}

// Validate reports the first problem with s, naming the offending field.
// Zero values that have a default are valid.
func (s Spec) Validate() error {
	invalid := func(field, format string, args ...any) error {
		return fmt.Errorf("supervise: validate %q: %s: %s", s.Name, field, fmt.Sprintf(format, args...))
	}
	switch {
	case s.Name == "":
		return invalid("Name", "must not be empty")
	case !validName(s.Name):
		return invalid("Name", "must match [a-z0-9-]+")
	case s.Path == "":
		return invalid("Path", "must not be empty")
	case s.LogFile == "":
		return invalid("LogFile", "must not be empty")
	case !filepath.IsAbs(s.LogFile):
		return invalid("LogFile", "must be absolute, got %q", s.LogFile)
	case s.StopSignal < 0 || s.StopSignal > 64:
		return invalid("StopSignal", "%d is not a signal", int(s.StopSignal))
	case s.StopTimeout < 0:
		return invalid("StopTimeout", "must not be negative, got %s", s.StopTimeout)
	case s.PIDDir != "" && !filepath.IsAbs(s.PIDDir):
		return invalid("PIDDir", "must be absolute, got %q", s.PIDDir)
	case len(s.AmbientCaps) > 0 && s.Credential == nil:
		return invalid("AmbientCaps", "only with Credential (a child running as the supervisor's user has its capabilities already)")
	}
	r := s.Restart
	for _, d := range []struct {
		field string
		v     time.Duration
	}{
		{"Restart.InitialBackoff", r.InitialBackoff},
		{"Restart.MaxBackoff", r.MaxBackoff},
		{"Restart.ResetAfter", r.ResetAfter},
		{"Restart.Window", r.Window},
	} {
		if d.v < 0 {
			return invalid(d.field, "must not be negative, got %s", d.v)
		}
	}
	if r.InitialBackoff > 0 && r.MaxBackoff > 0 && r.MaxBackoff < r.InitialBackoff {
		return invalid("Restart.MaxBackoff", "%s is less than Restart.InitialBackoff %s", r.MaxBackoff, r.InitialBackoff)
	}
	return nil
}

func validName(name string) bool {
	return name != "" && strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789-") == ""
}

// withDefaults returns a copy of s with defaults filled in and no memory
// shared with the caller.
func (s Spec) withDefaults() Spec {
	s.Args = slices.Clone(s.Args)
	s.Env = slices.Clone(s.Env) // keeps nil as nil: inherit the environment
	s.AmbientCaps = slices.Clone(s.AmbientCaps)
	if s.Credential != nil {
		c := *s.Credential
		c.Groups = slices.Clone(c.Groups)
		s.Credential = &c
	}
	if s.StopSignal == 0 {
		s.StopSignal = defaultStopSignal
	}
	if s.StopTimeout == 0 {
		s.StopTimeout = defaultStopTimeout
	}
	s.Restart = s.Restart.withDefaults()
	return s
}

func (r RestartPolicy) withDefaults() RestartPolicy {
	if r.InitialBackoff == 0 {
		r.InitialBackoff = defaultInitialBackoff
	}
	if r.MaxBackoff == 0 {
		r.MaxBackoff = max(defaultMaxBackoff, r.InitialBackoff)
	}
	if r.ResetAfter == 0 {
		r.ResetAfter = defaultResetAfter
	}
	if r.MaxRestarts == 0 {
		r.MaxRestarts = defaultMaxRestarts
	}
	if r.Window == 0 {
		r.Window = defaultWindow
	}
	return r
}
