// Package token derives and checks the secrets roles use with each other
// (docs/adr/0009-trust-model.md).
//
// One root key per environment (DIR/secrets/root-key) stays with the
// controller. Each purpose (the files API, the control API, signing
// forwarded headers, ...) gets a key derived from it, and each identity (an
// edge, a node, the operator) a token derived from that purpose key. A
// verifier that holds a purpose key checks any identity's token without a
// list of tokens, and learns who is calling; it can mint tokens for that
// purpose only, never for another.
package token

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"strings"
)

// Purposes of derived keys. A key derived for one purpose is useless for
// another.
const (
	// Files authenticates callers of the files role (controller, each
	// node's filesync agent, each edge's upload fallback).
	Files = "files"
	// Control authenticates writes to the controller's API (the operator's
	// CLI, each edge's acknowledgements).
	Control = "control"
	// Forward signs the X-Forwarded-* headers an edge sends to a node.
	Forward = "forward"
	// Redis is the password of the redis server.
	Redis = "redis"
	// ObjectCache signs the values WordPress's object cache writes to redis.
	ObjectCache = "object-cache"
	// DB authenticates the controller to the db-agents. Each agent holds
	// only its own key (AgentKey(root, DB, id)): a DB host that is broken
	// into can mint no token for another host's agent.
	DB = "db"
	// TLSTicket derives the TLS session ticket keys every edge shares.
	TLSTicket = "tls-ticket"
)

// AgentKey is the key of the agent id for purpose: derived from the
// purpose's key, so that the holder of the purpose key (the controller)
// issues tokens for every agent and each agent verifies only its own.
func AgentKey(root Key, purpose, id string) Key {
	if err := ValidID(id); err != nil {
		panic(err) // ids are chosen by the controller's config, never by a caller
	}
	return root.Derive(purpose).Derive("agent\x00" + id)
}

// Size is the length of a key in bytes.
const Size = 32

// ErrInvalid means a token is missing, malformed or was not issued with the key.
var ErrInvalid = errors.New("invalid token")

// Key is a secret. Its String method never prints it.
type Key struct{ b [Size]byte }

// NewKey returns a random key.
func NewKey() Key {
	var k Key
	if _, err := rand.Read(k.b[:]); err != nil {
		panic("crypto/rand: " + err.Error()) // never fails on Linux
	}
	return k
}

// ParseKey reads a key written by Hex.
func ParseKey(s string) (Key, error) {
	var k Key
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != Size {
		return k, fmt.Errorf("token: a key is %d hex digits", 2*Size)
	}
	copy(k.b[:], b)
	return k, nil
}

// Hex is the key as hex digits, for spec files (mode 0600).
func (k Key) Hex() string { return hex.EncodeToString(k.b[:]) }

// String keeps keys out of logs and error messages.
func (k Key) String() string { return "token.Key(redacted)" }

// IsZero reports whether k was never set.
func (k Key) IsZero() bool { return k.b == [Size]byte{} }

// Derive returns the key for purpose.
func (k Key) Derive(purpose string) Key {
	var d Key
	copy(d.b[:], k.mac("derive\x00"+purpose))
	return d
}

func (k Key) mac(s string) []byte {
	m := hmac.New(sha256.New, k.b[:])
	m.Write([]byte(s))
	return m.Sum(nil)
}

// MAC returns HMAC-SHA256 of msg under k.
func (k Key) MAC(msg []byte) []byte {
	m := hmac.New(sha256.New, k.b[:])
	m.Write(msg)
	return m.Sum(nil)
}

// NewHMAC returns an HMAC-SHA256 keyed with k, for callers that MAC on
// every request and keep (and Reset) their own instances.
func (k Key) NewHMAC() hash.Hash { return hmac.New(sha256.New, k.b[:]) }

// Issue returns the bearer token of identity id: "id.MAC". The id is not
// secret; the MAC proves the token came from whoever holds k.
func (k Key) Issue(id string) string {
	if err := ValidID(id); err != nil {
		panic(err) // ids are chosen by the controller, never by a caller
	}
	return id + "." + base64.RawURLEncoding.EncodeToString(k.mac("id\x00"+id))
}

// Verify returns the identity a token was issued to, or ErrInvalid.
func (k Key) Verify(tok string) (string, error) {
	id, sum, ok := strings.Cut(tok, ".")
	if !ok || ValidID(id) != nil {
		return "", ErrInvalid
	}
	// Strict: one spelling per token (the last character's unused bits must be 0).
	got, err := base64.RawURLEncoding.Strict().DecodeString(sum)
	if err != nil || len(got) != sha256.Size {
		return "", ErrInvalid
	}
	if !hmac.Equal(got, k.mac("id\x00"+id)) {
		return "", ErrInvalid
	}
	return id, nil
}

// ValidID reports whether id can name an identity: 1-64 characters of
// [a-z0-9_-].
func ValidID(id string) error {
	if len(id) == 0 || len(id) > 64 {
		return fmt.Errorf("token: identity %q: 1-64 characters", id)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("token: identity %q: only a-z, 0-9, - and _", id)
		}
	}
	return nil
}

// Bearer returns the token of an "Authorization: Bearer TOKEN" header.
func Bearer(h http.Header) (string, bool) {
	v := h.Get("Authorization")
	if len(v) < 7 || !strings.EqualFold(v[:7], "bearer ") {
		return "", false
	}
	t := strings.TrimSpace(v[7:])
	return t, t != ""
}

// SetBearer sets the Authorization header to tok.
func SetBearer(h http.Header, tok string) { h.Set("Authorization", "Bearer "+tok) }
