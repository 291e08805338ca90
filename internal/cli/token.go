package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// operatorToken reads DIR/secrets/api-token, which authenticates every call
// to the control API that changes something.
func operatorToken(d dirFlags) (string, error) {
	path := d.layout().Secret("api-token")
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrPermission):
		return "", fmt.Errorf("cannot read %s (mode 0600): run this as the user that ran `scalepress up`", path)
	case err != nil:
		return "", fmt.Errorf("api token: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("api token %s is empty: `scalepress up` writes it", path)
	}
	return tok, nil
}
