package controller

import (
	"fmt"
	"os"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/wordpress"
)

// secrets are generated once and kept (mode 0600) in DIR/secrets.
type secrets struct {
	AdminPassword   string
	DBPassword      string
	MonitorPassword string
	PurgeSecret     string // bearer token of POST /v1/purge and the edges' purge endpoint
	Salts           map[string]string
}

func loadSecrets(l Layout) (secrets, error) {
	var s secrets
	if err := os.MkdirAll(l.Secrets(), 0o700); err != nil {
		return s, fmt.Errorf("secrets: %w", err)
	}
	if err := os.Chmod(l.Secrets(), 0o700); err != nil {
		return s, fmt.Errorf("secrets: %w", err)
	}
	write := func(path string, data []byte) error { return api.WriteFileAtomic(path, data, 0o600) }
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
	return s, nil
}
