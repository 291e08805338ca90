package node

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scalepress/scalepress/internal/api"
)

// TestReportPHPDone: the status report's php_done counts the PHP responses
// relayed whole, the served rate the autoscaler's measured steps compare
// (ADR 32); a request the saturated node refused before PHP saw it does
// not count, though it counts in served. Real php-fpm (about 1 s).
func TestReportPHPDone(t *testing.T) {
	a, _ := startAgentFPM(t, 1)
	get := func(path string) int {
		w := httptest.NewRecorder()
		a.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "http://node"+path, nil))
		return w.Code
	}
	report := func() api.NodeReport {
		w := httptest.NewRecorder()
		a.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "http://node"+api.NodePathStatus, nil))
		var r api.NodeReport
		if err := json.Unmarshal(w.Body.Bytes(), &r); err != nil {
			t.Fatalf("status: %v: %s", err, w.Body)
		}
		return r
	}
	type counts struct {
		Codes           []int
		Served, PHPDone int64
	}
	var got counts
	got.Codes = append(got.Codes, get("/slow.php"), get("/slow.php"))
	a.maxQueue = 0 // every PHP request now finds the queue full
	got.Codes = append(got.Codes, get("/slow.php"))
	r := report()
	got.Served, got.PHPDone = r.Served, r.PHPDone
	want := counts{Codes: []int{200, 200, 503}, Served: 3, PHPDone: 2}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}
}
