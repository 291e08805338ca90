package node

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/scalepress/scalepress/internal/api"
)

// TestSaturatedRetryAfter: a node whose PHP workers are all busy and whose
// queue is full refuses a PHP request at once with a one-line 503 that
// carries Retry-After (like the edge's admission 503s) and the saturated
// mark the edge reads to try another node. The queue bound is set to 0, so
// every PHP request finds it full; a static file is still served. Real
// php-fpm (about 1 s).
func TestSaturatedRetryAfter(t *testing.T) {
	a, _ := startAgentFPM(t, 1)
	a.maxQueue = 0
	w := httptest.NewRecorder()
	a.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "http://node/slow.php", nil))
	body := w.Body.String()
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "1" ||
		w.Header().Get(api.HeaderSaturated) != "1" || strings.Count(body, "\n") != 1 || !strings.Contains(body, "node saturated") {
		t.Errorf("saturated node: %d Retry-After %q %s %q body %q; want a one-line 503 with Retry-After 1 and the saturated mark",
			w.Code, w.Header().Get("Retry-After"), api.HeaderSaturated, w.Header().Get(api.HeaderSaturated), body)
	}
}
