package pagecache

import (
	"net/http"
	"testing"
)

// TestHitDoesNotAllocate guards the hot path: once a URL is stored, a hit
// (Classify + ServeHit) allocates nothing, with a sorted query, a Vary
// header and either encoding.
func TestHitDoesNotAllocate(t *testing.T) {
	tests := []struct {
		name   string
		target string
		ae     string
		vary   bool
	}{
		{name: "gzip", target: "/2024/05/hello/?utm_source=x", ae: "gzip, deflate, br"},
		{name: "identity", target: "/2024/05/hello/"},
		{name: "sorted query", target: "/shop/?orderby=price&page=2&color=red&fbclid=1", ae: "gzip"},
		{name: "vary", target: "/", ae: "br", vary: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCache(t, newFakeClock(), nil)
			kv := []string{"Content-Type", htmlCT}
			if tt.vary {
				kv = append(kv, "Vary", "Accept-Language")
			}
			r := browserRequest(tt.target, tt.ae)
			do(t, c, r, fixed(200, html(4096), kv...))
			w := &nopWriter{h: make(http.Header, 16)}
			allocs := testing.AllocsPerRun(100, func() {
				w.reset()
				if !c.ServeHit(w, r, c.Classify(r)) {
					t.Fatal("ServeHit() = false")
				}
			})
			if allocs != 0 {
				t.Errorf("a hit allocates %v times, want 0", allocs)
			}
		})
	}
}
