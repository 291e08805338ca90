package cli

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/scalepress/scalepress/internal/api"
)

func TestUsageIfRefused(t *testing.T) {
	refused := &api.HTTPError{Method: "POST", Path: api.APIPathScale, Code: 400, Status: "400 Bad Request", Body: "scale: max 3 is below min 5"}
	tests := []struct {
		name      string
		err       error
		wantUsage bool
		wantText  string
	}{
		{"bad request", refused, true, "scale: max 3 is below min 5"},
		{"wrapped", fmt.Errorf("scale: %w", refused), true, "scale: max 3 is below min 5"},
		{"server failure", &api.HTTPError{Code: 500, Status: "500 Internal Server Error", Body: "boom"}, false, "boom"},
		{"no answer", errors.New("api: connection refused"), false, "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := usageIfRefused(tt.err, http.StatusBadRequest, http.StatusRequestEntityTooLarge)
			if got := errors.Is(err, errUsage); got != tt.wantUsage {
				t.Errorf("usage error = %v, want %v (%v)", got, tt.wantUsage, err)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error %q does not say %q", err, tt.wantText)
			}
		})
	}
}
