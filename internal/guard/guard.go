// Package guard holds the checks every internal HTTP API of scalepress makes
// before it does anything (docs/adr/0009-trust-model.md): the Host header
// names the configured address (no DNS rebinding), the caller has a bearer
// token, a write has a content type no cross-site form can send. A refusal
// is a clear status with a one-line reason, logged once with the client
// address.
package guard

import (
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"slices"
	"strings"

	"github.com/scalepress/scalepress/internal/token"
)

// AllowedHosts are the Host header values a server listening on addr
// answers to: addr itself and, when it is a loopback or unspecified
// address, the loopback names with its port. extra adds names (host:port)
// a proxy in front may use.
func AllowedHosts(addr string, extra ...string) []string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return append([]string{strings.ToLower(addr)}, extra...)
	}
	out := []string{strings.ToLower(net.JoinHostPort(host, port))}
	if ip := net.ParseIP(host); host == "" || ip != nil && (ip.IsLoopback() || ip.IsUnspecified()) {
		for _, h := range []string{"localhost", "127.0.0.1", "::1"} {
			if hp := net.JoinHostPort(h, port); !slices.Contains(out, hp) {
				out = append(out, hp)
			}
		}
	}
	for _, e := range extra {
		out = append(out, strings.ToLower(e))
	}
	return out
}

// Hosts refuses (403) a request whose Host header is not one of allowed:
// a page that rebinds its own DNS name to this address still sends its own
// name. An empty list allows every Host.
func Hosts(allowed []string, logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(allowed) > 0 && !slices.Contains(allowed, strings.ToLower(r.Host)) {
			Refuse(w, r, logger, http.StatusForbidden, "host %q is not this server's address (allowed: %s)", r.Host, strings.Join(allowed, ", "))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// ErrNoToken and ErrBadToken are the two ways Authenticate fails.
var (
	ErrNoToken  = errors.New("missing bearer token")
	ErrBadToken = errors.New("bearer token not valid here")
)

// Authenticate returns the identity of the request's bearer token under k.
func Authenticate(k token.Key, r *http.Request) (string, error) {
	tok, ok := token.Bearer(r.Header)
	if !ok {
		return "", ErrNoToken
	}
	id, err := k.Verify(tok)
	if err != nil {
		return "", ErrBadToken
	}
	return id, nil
}

// Unauthorized answers 401 for err (from Authenticate).
func Unauthorized(w http.ResponseWriter, r *http.Request, logger *slog.Logger, what string, err error) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="scalepress"`)
	Refuse(w, r, logger, http.StatusUnauthorized, "%s: %v", what, err)
}

// ContentType checks that a write carries the media type want (e.g.
// application/json). Cross-site forms and fetches without a preflight can
// only send text/plain, multipart/form-data and
// application/x-www-form-urlencoded, so requiring another type keeps
// browsers out even before the token is checked.
func ContentType(r *http.Request, want string) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return fmt.Errorf("Content-Type must be %s, got none", want)
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != want {
		return fmt.Errorf("Content-Type must be %s, got %q", want, ct)
	}
	return nil
}

// RequireType answers 415 and returns false when r does not carry want.
func RequireType(w http.ResponseWriter, r *http.Request, logger *slog.Logger, want string) bool {
	if err := ContentType(r, want); err != nil {
		Refuse(w, r, logger, http.StatusUnsupportedMediaType, "%s %s: %v", r.Method, r.URL.Path, err)
		return false
	}
	return true
}

// Refuse writes status with a one-line reason and logs it once, with the
// client address. Nothing else is written.
func Refuse(w http.ResponseWriter, r *http.Request, logger *slog.Logger, status int, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	msg = strings.ReplaceAll(msg, "\n", " ")
	if logger != nil {
		logger.Warn("request refused", "status", status, "reason", msg, "client", r.RemoteAddr, "method", r.Method, "path", r.URL.Path)
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	fmt.Fprintln(w, msg)
}
