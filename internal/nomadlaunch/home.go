package nomadlaunch

// The controller's home in Nomad (ADR 27): what a new controller needs to
// adopt the running site, kept where it outlives the controller's host.

import (
	"context"
	"errors"
	"fmt"
	"strings"

	nomad "github.com/hashicorp/nomad/api"
)

// HomeVariablePath is the controller's variable for the node job job. No
// job of that name is ever registered, so no task's workload identity
// reads it: only a token with variable access to the path does.
func HomeVariablePath(job string) string { return VariablePath(job + "-controller") }

// Home is a controller's state as its variable holds it.
type Home struct {
	// Carry is statedir.Carry in its one-string form (the secrets, the
	// state file).
	Carry string
	// Dir and Host say which controller wrote it (for the operator), At when.
	Dir, Host, At string
}

// Items of the home variable.
const (
	homeCarry = "carry"
	homeDir   = "dir"
	homeHost  = "host"
	homeAt    = "written_at"
)

// HomeStore reads and writes the home variable.
type HomeStore struct {
	cfg Config
	nc  *nomad.Client
}

// NewHomeStore returns a store for cfg's job on cfg's Nomad. Only the
// address, the token, TLS, the namespace and the job are used.
func NewHomeStore(cfg Config) (*HomeStore, error) {
	if !strings.HasPrefix(cfg.Address, "http://") && !strings.HasPrefix(cfg.Address, "https://") {
		return nil, fmt.Errorf("nomadlaunch: Address: want http:// or https://, got %q", cfg.Address)
	}
	if !jobName.MatchString(cfg.Job) {
		return nil, fmt.Errorf("nomadlaunch: Job: want letters, digits, - and _, got %q", cfg.Job)
	}
	nc, err := cfg.client()
	if err != nil {
		return nil, err
	}
	return &HomeStore{cfg: cfg, nc: nc}, nil
}

// Path is the variable's path.
func (s *HomeStore) Path() string { return HomeVariablePath(s.cfg.Job) }

// Write replaces the variable with h.
func (s *HomeStore) Write(ctx context.Context, h Home) error {
	v := &nomad.Variable{Path: s.Path(), Namespace: s.cfg.Namespace, Items: nomad.VariableItems{
		homeCarry: h.Carry, homeDir: h.Dir, homeHost: h.Host, homeAt: h.At,
	}}
	if _, _, err := s.nc.Variables().Create(v, (&nomad.WriteOptions{}).WithContext(ctx)); err != nil {
		return fmt.Errorf("nomad: write variable %s: %w", v.Path, err)
	}
	return nil
}

// Read returns the variable; ok is false when there is none (a new site).
func (s *HomeStore) Read(ctx context.Context) (h Home, ok bool, err error) {
	v, _, err := s.nc.Variables().Read(s.Path(), (&nomad.QueryOptions{}).WithContext(ctx))
	if errors.Is(err, nomad.ErrVariablePathNotFound) {
		return h, false, nil
	}
	if err != nil {
		return h, false, fmt.Errorf("nomad: read variable %s: %w", s.Path(), err)
	}
	if v == nil || v.Items[homeCarry] == "" {
		return h, false, fmt.Errorf("nomad: variable %s holds no %q item", s.Path(), homeCarry)
	}
	return Home{Carry: v.Items[homeCarry], Dir: v.Items[homeDir], Host: v.Items[homeHost], At: v.Items[homeAt]}, true, nil
}
