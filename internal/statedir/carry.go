package statedir

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/scalepress/scalepress/internal/atomicfile"
)

// CarriedSecrets are the files of DIR/secrets nothing derives: a controller
// in another directory (another host) needs them to adopt a running site.
// api-token and files-metrics-token are derived from root-key.
var CarriedSecrets = []string{"admin-password", "db-password", "monitor-password", "purge-secret", "wp-salts.json", "root-key"}

// Carry is what a state directory holds that a new controller elsewhere
// needs to take over what runs (ADR 27): the secrets nothing derives and
// the state file. Logs, the event log, releases, backups' local files,
// certificates, a local database or files store are not in it.
type Carry struct {
	Secrets map[string]string `json:"secrets"` // by file name in DIR/secrets
	State   State             `json:"state"`
}

// ReadCarry reads l's carried secrets and state file; a secret missing is
// an error (LoadSecrets makes them all).
func ReadCarry(l Layout) (Carry, error) {
	c := Carry{Secrets: map[string]string{}}
	for _, n := range CarriedSecrets {
		b, err := os.ReadFile(l.Secret(n))
		if err != nil {
			return c, fmt.Errorf("carry: %w", err)
		}
		c.Secrets[n] = string(b)
	}
	st, err := ReadState(l.StateFile())
	if err != nil {
		return c, fmt.Errorf("carry: %w", err)
	}
	c.State = st
	return c, nil
}

// Empty reports whether l holds no controller's state yet: no state file
// and none of the carried secrets.
func Empty(l Layout) bool {
	for _, p := range append([]string{l.StateFile()}, secretPaths(l)...) {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			return false
		}
	}
	return true
}

func secretPaths(l Layout) []string {
	var out []string
	for _, n := range CarriedSecrets {
		out = append(out, l.Secret(n))
	}
	return out
}

// WriteCarry writes c into l, which must be Empty: the secrets (0600, in a
// 0700 directory), then the state file. Every carried secret must be there.
func WriteCarry(l Layout, c Carry) error {
	if !Empty(l) {
		return fmt.Errorf("carry: %s already holds a controller's state", l.Dir)
	}
	for _, n := range CarriedSecrets {
		if c.Secrets[n] == "" {
			return fmt.Errorf("carry: secret %s missing", n)
		}
	}
	if err := os.MkdirAll(l.Secrets(), 0o700); err != nil {
		return fmt.Errorf("carry: %w", err)
	}
	for _, n := range CarriedSecrets {
		if err := atomicfile.Write(l.Secret(n), []byte(c.Secrets[n]), 0o600); err != nil {
			return fmt.Errorf("carry: %w", err)
		}
	}
	return WriteState(l.StateFile(), c.State)
}

// MarshalCarry and UnmarshalCarry are Carry's one-string form, as a Nomad
// Variable item holds it.
func MarshalCarry(c Carry) (string, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("carry: %w", err)
	}
	return string(b), nil
}

func UnmarshalCarry(s string) (Carry, error) {
	var c Carry
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		return c, fmt.Errorf("carry: %w", err)
	}
	if c.State.Format > StateFormat {
		return c, fmt.Errorf("%w: the carried state has format %d (written by scalepress %s); this binary understands format %d", ErrNewerState, c.State.Format, c.State.Version, StateFormat)
	}
	return c, nil
}
