package wordpress

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
)

// SaltNames are the eight keys and salts of wp-config.php.
var SaltNames = []string{
	"AUTH_KEY", "SECURE_AUTH_KEY", "LOGGED_IN_KEY", "NONCE_KEY",
	"AUTH_SALT", "SECURE_AUTH_SALT", "LOGGED_IN_SALT", "NONCE_SALT",
}

const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// RandomString returns n characters from [A-Za-z0-9], uniformly, from crypto/rand.
func RandomString(n int) string {
	out := make([]byte, n)
	buf := make([]byte, 1)
	for i := 0; i < n; {
		if _, err := rand.Read(buf); err != nil {
			panic("crypto/rand failed: " + err.Error()) // never happens on Linux
		}
		if int(buf[0]) >= 256-256%len(alphabet) {
			continue // reject to keep the distribution uniform
		}
		out[i] = alphabet[int(buf[0])%len(alphabet)]
		i++
	}
	return string(out)
}

// LoadOrCreateSalts returns the salts kept at path, generating and storing
// them (mode 0600) the first time. They never change afterwards, so logins and
// nonces survive every later `up`.
func LoadOrCreateSalts(path string, write func(path string, data []byte) error) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		var s map[string]string
		if err := json.Unmarshal(b, &s); err != nil {
			return nil, fmt.Errorf("salts %s: %w", path, err)
		}
		for _, n := range SaltNames {
			if s[n] == "" {
				return nil, fmt.Errorf("salts %s: %s missing", path, n)
			}
		}
		return s, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("salts: %w", err)
	}
	s := make(map[string]string, len(SaltNames))
	for _, n := range SaltNames {
		s[n] = RandomString(64)
	}
	b, _ = json.MarshalIndent(s, "", "  ")
	if err := write(path, b); err != nil {
		return nil, fmt.Errorf("salts: %w", err)
	}
	return s, nil
}

// LoadOrCreateSecret returns the secret kept in path (first line), creating a
// random one of n characters the first time.
func LoadOrCreateSecret(path string, n int, write func(path string, data []byte) error) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		s := string(b)
		for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == '\r') {
			s = s[:len(s)-1]
		}
		if s == "" {
			return "", fmt.Errorf("secret %s is empty; remove it to generate a new one", path)
		}
		return s, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("secret: %w", err)
	}
	s := RandomString(n)
	if err := write(path, []byte(s+"\n")); err != nil {
		return "", fmt.Errorf("secret: %w", err)
	}
	return s, nil
}
