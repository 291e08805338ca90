package nomadlaunch

// The controller's home in Nomad (ADR 27): what a new controller needs to
// adopt the running site, kept where it outlives the controller's host.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

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
	// Owner is the writing controller's run: a new one takes the site over
	// by writing its own (the last one sees it in Watch and stands down).
	Owner string
}

// ErrTakenOver means another controller wrote the home variable since this
// one did: it owns the site now.
var ErrTakenOver = errors.New("another controller took the site over")

// Items of the home variable.
const (
	homeCarry = "carry"
	homeDir   = "dir"
	homeHost  = "host"
	homeAt    = "written_at"
	homeOwner = "owner"
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

func (s *HomeStore) variable(h Home, index uint64) *nomad.Variable {
	return &nomad.Variable{Path: s.Path(), Namespace: s.cfg.Namespace, ModifyIndex: index, Items: nomad.VariableItems{
		homeCarry: h.Carry, homeDir: h.Dir, homeHost: h.Host, homeAt: h.At, homeOwner: h.Owner,
	}}
}

// homeRetries bounds the take-over writes of Write that another write
// came before.
const homeRetries = 3

// Write takes the site over: it replaces the variable with h, whoever
// wrote it last, and returns its modify index. The write is a
// check-and-set on the index the variable was read at (0: none), read
// again when another write came between: a take-over replaces the owner it
// saw, never one it did not (two controllers taking over at once: the last
// write wins, and the other one sees it in Watch).
func (s *HomeStore) Write(ctx context.Context, h Home) (uint64, error) {
	for attempt := 1; ; attempt++ {
		var cur *nomad.Variable
		_, err := s.nc.Raw().Query("/v1/var/"+s.Path(), &cur, (&nomad.QueryOptions{}).WithContext(ctx))
		if err != nil && !isStatus(err, http.StatusNotFound) {
			return 0, s.cfg.Explain("read variable "+s.Path(), err)
		}
		var index uint64
		if err == nil && cur != nil {
			index = cur.ModifyIndex
		}
		v, _, err := s.nc.Variables().CheckedUpdate(s.variable(h, index), (&nomad.WriteOptions{}).WithContext(ctx))
		var conflict nomad.ErrCASConflict
		if errors.As(err, &conflict) && attempt < homeRetries {
			continue
		}
		if err != nil {
			return 0, s.cfg.Explain("write variable "+s.Path(), err)
		}
		return v.ModifyIndex, nil
	}
}

// Update replaces the variable with h only if nobody wrote it since index
// (check-and-set), and returns the new index; ErrTakenOver if somebody did.
func (s *HomeStore) Update(ctx context.Context, h Home, index uint64) (uint64, error) {
	v, _, err := s.nc.Variables().CheckedUpdate(s.variable(h, index), (&nomad.WriteOptions{}).WithContext(ctx))
	var conflict nomad.ErrCASConflict
	if errors.As(err, &conflict) {
		who := "its variable was deleted"
		if c := conflict.Conflict; c != nil {
			who = fmt.Sprintf("the controller of %s on %s, at %s", c.Items[homeDir], c.Items[homeHost], c.Items[homeAt])
		}
		return 0, fmt.Errorf("nomad: variable %s: %w (%s)", s.Path(), ErrTakenOver, who)
	}
	if err != nil {
		return 0, s.cfg.Explain(fmt.Sprintf("write variable %s", s.Path()), err)
	}
	return v.ModifyIndex, nil
}

// watchWait bounds one blocking query of Watch, and watchWait plus
// watchGrace its request: a connection a network cut broke answers
// nothing (the server's answer is lost, no reset comes), so the next query,
// on a new connection, sees a take-over made during the cut within
// watchWait+watchGrace of the heal, not after the old one's retransmissions.
const (
	watchWait  = 30 * time.Second
	watchGrace = 15 * time.Second
)

// Watch follows the variable with blocking queries and returns it once
// its owner is not owner (another controller took the site over), or with
// ctx's error. A variable deleted (a `down` elsewhere) is not a take-over.
func (s *HomeStore) Watch(ctx context.Context, owner string) (Home, error) {
	var index uint64
	for {
		qctx, cancel := context.WithTimeout(ctx, watchWait+watchGrace)
		q := (&nomad.QueryOptions{WaitIndex: index, WaitTime: watchWait}).WithContext(qctx)
		v, qm, err := s.nc.Variables().Peek(s.Path(), q)
		cancel()
		if ctx.Err() != nil {
			return Home{}, ctx.Err()
		}
		if err != nil {
			select {
			case <-ctx.Done():
				return Home{}, ctx.Err()
			case <-time.After(time.Second):
			}
			continue
		}
		if qm != nil && qm.LastIndex > index {
			index = qm.LastIndex
		} else if qm != nil && qm.LastIndex < index {
			index = 0
		}
		if v != nil && v.Items[homeOwner] != "" && v.Items[homeOwner] != owner {
			return Home{Carry: v.Items[homeCarry], Dir: v.Items[homeDir], Host: v.Items[homeHost], At: v.Items[homeAt], Owner: v.Items[homeOwner]}, nil
		}
	}
}

// Read returns the variable; ok is false when there is none (a new site).
func (s *HomeStore) Read(ctx context.Context) (h Home, ok bool, err error) {
	// Raw, not Variables().Read: that takes a 403 (a token without
	// access to the path) for "no variable", and a new site would be
	// started over the running one.
	var v *nomad.Variable
	_, err = s.nc.Raw().Query("/v1/var/"+s.Path(), &v, (&nomad.QueryOptions{}).WithContext(ctx))
	if isStatus(err, http.StatusNotFound) {
		return h, false, nil
	}
	if err != nil {
		return h, false, s.cfg.Explain("read variable "+s.Path(), err)
	}
	if v == nil || v.Items[homeCarry] == "" {
		return h, false, fmt.Errorf("nomad: variable %s holds no %q item", s.Path(), homeCarry)
	}
	return Home{Carry: v.Items[homeCarry], Dir: v.Items[homeDir], Host: v.Items[homeHost], At: v.Items[homeAt], Owner: v.Items[homeOwner]}, true, nil
}
