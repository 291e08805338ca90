package pagecache

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// taggedOrigin serves versioned pages: /a and /b carry post-1, /c post-2.
func taggedOrigin() *origin {
	version := map[string]int{}
	return newOrigin(nil).with(func(path string) (*Response, error) {
		version[path]++
		tags := map[string]string{"/a": "post-1 home", "/b": "post-1", "/c": "post-2 home"}[path]
		return resp(200, path+" v"+itoa(version[path]), "Content-Type", htmlCT, "X-Scalepress-Tags", tags), nil
	})
}

// with makes the origin answer by request path (see fetchFor).
func (o *origin) with(f func(path string) (*Response, error)) *origin {
	o.byPath = f
	return o
}

func TestPurgeTag(t *testing.T) {
	tests := []struct {
		name      string
		soft      bool
		wantN     int
		wantAfter map[string]got
		wantCalls int
	}{
		{
			name: "hard", soft: false, wantN: 2, wantCalls: 5,
			wantAfter: map[string]got{
				"/a": {200, "MISS", "", "/a v2"},
				"/b": {200, "MISS", "", "/b v2"},
				"/c": {200, "HIT", "0", "/c v1"},
			},
		},
		{
			name: "soft serves the old copy once while refreshing", soft: true, wantN: 2, wantCalls: 5,
			wantAfter: map[string]got{
				"/a": {200, "HIT", "0", "/a v1"},
				"/b": {200, "HIT", "0", "/b v1"},
				"/c": {200, "HIT", "0", "/c v1"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := newTestCache(t, newFakeClock(), nil)
				o := taggedOrigin()
				for _, p := range []string{"/a", "/b", "/c"} {
					do(t, c, req("GET", p), o)
				}
				if n := c.PurgeTag("post-1", tt.soft); n != tt.wantN {
					t.Errorf("PurgeTag() = %d, want %d", n, tt.wantN)
				}
				for _, p := range []string{"/a", "/b", "/c"} {
					if diff := cmp.Diff(tt.wantAfter[p], summary(do(t, c, req("GET", p), o))); diff != "" {
						t.Errorf("%s after purge mismatch (-want +got):\n%s", p, diff)
					}
				}
				synctest.Wait()
				if n := o.Calls(); n != tt.wantCalls {
					t.Errorf("origin calls = %d, want %d", n, tt.wantCalls)
				}
				// Either way, the new versions are served now.
				for _, p := range []string{"/a", "/b"} {
					if w := do(t, c, req("GET", p), o); w.Body.String() != p+" v2" {
						t.Errorf("%s = %q, want v2", p, w.Body.String())
					}
				}
				if s := c.Stats(); s.Purges != int64(tt.wantN) {
					t.Errorf("Stats().Purges = %d, want %d", s.Purges, tt.wantN)
				}
			})
		})
	}
}

func TestSoftPurgeRefreshesOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := newFakeClock()
		c := newTestCache(t, clk, func(cfg *Config) { cfg.StaleWhileRevalidate = 0 })
		release := make(chan struct{})
		o := newOrigin(func(n int) (*Response, error) {
			if n > 1 {
				<-release
			}
			return resp(200, "v"+itoa(n), "Content-Type", htmlCT, "X-Scalepress-Tags", "home"), nil
		})
		do(t, c, req("GET", "/"), o)
		c.PurgeTag("home", true)
		xc := concurrently(t, c, o, 20, "/", func() {
			if n := o.Calls(); n != 2 {
				t.Errorf("origin calls = %d, want 2: one refresh for 20 requests", n)
			}
		})
		if diff := cmp.Diff(repeat("HIT", 20), xc); diff != "" {
			t.Errorf("X-Cache mismatch (-want +got):\n%s", diff)
		}
		close(release)
		synctest.Wait()
		if diff := cmp.Diff(got{200, "HIT", "0", "v2"}, summary(do(t, c, req("GET", "/"), o))); diff != "" {
			t.Errorf("after refresh mismatch (-want +got):\n%s", diff)
		}
	})
}

func TestSoftPurgeGraceEnds(t *testing.T) {
	clk := newFakeClock()
	c := newTestCache(t, clk, func(cfg *Config) { cfg.SoftPurgeGrace = 10 * time.Second })
	o := newOrigin(func(n int) (*Response, error) {
		return resp(200, "v"+itoa(n), "Content-Type", htmlCT), nil
	})
	do(t, c, req("GET", "/"), o)
	c.PurgeURL("example.com", "/", true)
	clk.Advance(11 * time.Second)
	if diff := cmp.Diff(got{200, "MISS", "", "v2"}, summary(do(t, c, req("GET", "/"), o))); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}

func TestPurgeURLAllVariants(t *testing.T) {
	c := newTestCache(t, newFakeClock(), nil)
	o := newOrigin(func(n int) (*Response, error) {
		return resp(200, "v"+itoa(n), "Content-Type", htmlCT, "Vary", "Accept-Language"), nil
	})
	for _, r := range []struct{ target, lang string }{
		{"http://example.com/a/?b=1&utm_source=x", "en"},
		{"http://example.com/a/?b=1", "de"},
		{"https://example.com/a/?b=1", "en"},
		{"http://example.com/other/", "en"},
	} {
		do(t, c, req("GET", r.target, "Accept-Language", r.lang), o)
	}
	if n := c.PurgeURL("Example.COM:80", "/a/?utm_campaign=y&b=1", false); n != 3 {
		t.Errorf("PurgeURL() = %d, want 3 variants", n)
	}
	if n := c.PurgeURL("example.com", "/a/?b=1", false); n != 0 {
		t.Errorf("second PurgeURL() = %d, want 0", n)
	}
	if s := c.Stats(); s.Objects != 1 {
		t.Errorf("Objects = %d, want 1", s.Objects)
	}
	if n := c.PurgeURL("example.com", "/wp-admin/", false); n != 0 {
		t.Errorf("PurgeURL(bypassed path) = %d, want 0", n)
	}
}

func TestPurgeAll(t *testing.T) {
	tests := []struct {
		name      string
		soft      bool
		wantAfter got
		wantTag   int // post-1 entries left: the new /a, and /b if kept
	}{
		{name: "hard", wantAfter: got{200, "MISS", "", "/a v2"}, wantTag: 1},
		{name: "soft", soft: true, wantAfter: got{200, "HIT", "0", "/a v1"}, wantTag: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := newTestCache(t, newFakeClock(), nil)
				o := taggedOrigin()
				for _, p := range []string{"/a", "/b", "/c"} {
					do(t, c, req("GET", p), o)
				}
				if n := c.PurgeAll(tt.soft); n != 3 {
					t.Errorf("PurgeAll() = %d, want 3", n)
				}
				if diff := cmp.Diff(tt.wantAfter, summary(do(t, c, req("GET", "/a"), o))); diff != "" {
					t.Errorf("after purge mismatch (-want +got):\n%s", diff)
				}
				synctest.Wait()
				// What was stored after the purge is not purged.
				if diff := cmp.Diff(got{200, "HIT", "0", "/a v2"}, summary(do(t, c, req("GET", "/a"), o))); diff != "" {
					t.Errorf("new copy mismatch (-want +got):\n%s", diff)
				}
				if n := c.PurgeTag("post-1", false); n != tt.wantTag {
					t.Errorf("PurgeTag(post-1) after PurgeAll = %d, want %d", n, tt.wantTag)
				}
				checkInvariants(t, c)
			})
		})
	}
}

func TestPurgeRequestApplied(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTestCache(t, newFakeClock(), nil)
		o := taggedOrigin()
		for _, p := range []string{"/a", "/b", "/c"} {
			do(t, c, req("GET", p), o)
		}
		p, err := ParsePurgeRequest("POST", nil, []byte(`{"urls": ["https://example.com/c"], "tags": ["post-1"], "soft": false}`))
		if err != nil {
			t.Fatalf("ParsePurgeRequest() error = %v", err)
		}
		if n := c.Purge(p); n != 3 {
			t.Errorf("Purge() = %d, want 3", n)
		}
		if s := c.Stats(); s.Objects != 0 {
			t.Errorf("Objects = %d, want 0", s.Objects)
		}
	})
}

func TestSoftPurgeWithoutGrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTestCache(t, newFakeClock(), func(cfg *Config) { cfg.SoftPurgeGrace = 0 })
		release := make(chan struct{})
		fail := false
		o := newOrigin(func(n int) (*Response, error) {
			if n > 1 {
				<-release
			}
			if fail {
				return nil, errors.New("no node in service")
			}
			return resp(200, "v"+itoa(n), "Content-Type", htmlCT, "X-Scalepress-Tags", "home"), nil
		})
		do(t, c, req("GET", "/"), o)
		c.PurgeTag("home", true)
		// Nobody gets the purged copy: one refetch, the others wait for it.
		xc := concurrently(t, c, o, 10, "/", func() {
			if n := o.Calls(); n != 2 {
				t.Errorf("origin calls while blocked = %d, want 2", n)
			}
			close(release)
		})
		if diff := cmp.Diff(append(repeat("HIT", 9), "MISS"), xc); diff != "" {
			t.Errorf("X-Cache mismatch (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(got{200, "HIT", "0", "v2"}, summary(do(t, c, req("GET", "/"), o))); diff != "" {
			t.Errorf("after the refetch mismatch (-want +got):\n%s", diff)
		}
		// With the origin down, the purged copy stands in.
		c.PurgeTag("home", true)
		fail = true
		if diff := cmp.Diff(got{200, "STALE", "0", "v2"}, summary(do(t, c, req("GET", "/"), o))); diff != "" {
			t.Errorf("origin down mismatch (-want +got):\n%s", diff)
		}
	})
}
