package statedir

import (
	"errors"
	"fmt"
	"os"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/atomicfile"
	"github.com/scalepress/scalepress/internal/token"
	"github.com/scalepress/scalepress/internal/wordpress"
)

// Secrets are generated once and kept (mode 0600) in DIR/secrets.
type Secrets struct {
	AdminPassword   string
	DBPassword      string
	MonitorPassword string
	PurgeSecret     string // bearer token of POST /v1/purge and the edges' purge endpoint
	Salts           map[string]string
	// RootKey derives every token and key roles use with each other
	// (docs/adr/0009-trust-model.md); it never leaves the controller.
	RootKey token.Key
}

// LoadSecrets reads the secrets in l.Secrets(), creating the missing ones,
// and writes the operator's api-token.
func LoadSecrets(l Layout) (Secrets, error) {
	var s Secrets
	if err := os.MkdirAll(l.Secrets(), 0o700); err != nil {
		return s, fmt.Errorf("secrets: %w", err)
	}
	if err := os.Chmod(l.Secrets(), 0o700); err != nil {
		return s, fmt.Errorf("secrets: %w", err)
	}
	write := func(path string, data []byte) error { return atomicfile.Write(path, data, 0o600) }
	var err error
	if s.AdminPassword, err = wordpress.LoadOrCreateSecret(l.Secret("admin-password"), 24, write); err != nil {
		return s, err
	}
	if s.DBPassword, err = wordpress.LoadOrCreateSecret(l.Secret("db-password"), 32, write); err != nil {
		return s, err
	}
	if s.MonitorPassword, err = wordpress.LoadOrCreateSecret(l.Secret("monitor-password"), 32, write); err != nil {
		return s, err
	}
	if s.PurgeSecret, err = wordpress.LoadOrCreateSecret(l.Secret("purge-secret"), 40, write); err != nil {
		return s, err
	}
	if s.Salts, err = wordpress.LoadOrCreateSalts(l.Secret("wp-salts.json"), write); err != nil {
		return s, err
	}
	if s.RootKey, err = loadOrCreateKey(l.Secret("root-key"), write); err != nil {
		return s, err
	}
	// The operator's token for the control API, which the CLI reads, and
	// the token a Prometheus reads the files role's metrics with (it may
	// read nothing else there).
	for _, t := range []struct{ name, tok string }{
		{"api-token", s.Key(token.Control).Issue(OperatorID)},
		{FilesMetricsToken, s.Key(token.Files).Issue(api.FilesMetricsID)},
	} {
		if b, err := os.ReadFile(l.Secret(t.name)); err != nil || string(b) != t.tok+"\n" {
			if err := write(l.Secret(t.name), []byte(t.tok+"\n")); err != nil {
				return s, fmt.Errorf("secrets: %w", err)
			}
		}
	}
	return s, nil
}

// OperatorID is the identity of DIR/secrets/api-token.
const OperatorID = "operator"

// FilesMetricsToken is the file in DIR/secrets with the files token of
// api.FilesMetricsID, for a Prometheus scraping the files role.
const FilesMetricsToken = "files-metrics-token"

// Key is the key for purpose (token.Files, token.Control, ...).
func (s Secrets) Key(purpose string) token.Key { return s.RootKey.Derive(purpose) }

// loadOrCreateKey returns the key kept in path, making a random one the
// first time.
func loadOrCreateKey(path string, write func(path string, data []byte) error) (token.Key, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		k := token.NewKey()
		if err := write(path, []byte(k.Hex()+"\n")); err != nil {
			return k, fmt.Errorf("secrets: %w", err)
		}
		return k, nil
	}
	if err != nil {
		return token.Key{}, fmt.Errorf("secrets: %w", err)
	}
	k, err := token.ParseKey(string(b))
	if err != nil {
		return k, fmt.Errorf("secret %s: %w; remove it to make a new one (every role then gets new tokens)", path, err)
	}
	return k, nil
}
