package forward

import (
	"net/http"
	"strings"
	"testing"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/token"
)

// TestKnownSignature: the signature of a fixed request under a fixed key
// is the one edges have always sent (computed before Sign's allocations
// were cut, 2026-12-07): nodes of an older release check it.
func TestKnownSignature(t *testing.T) {
	k, err := token.ParseKey(strings.Repeat("ab", 32))
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner("edge-1", k)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set(HeaderFor, "203.0.113.9")
	h.Set(HeaderProto, "https")
	h.Set(HeaderHost, "www.example.test")
	s.Sign(h, "POST", "www.example.test", "/wp-login.php?x=1", t0)
	const want = "edge-1 1800000000 3vcP5MOSVLWM7DNIxLDCcbhmmSS_Qj8ZyFBNJxKK2rU"
	if got := h.Get(api.HeaderEdge); got != want {
		t.Errorf("signature %q, want %q", got, want)
	}
}
