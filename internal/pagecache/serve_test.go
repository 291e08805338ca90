package pagecache

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/zstd"
)

const htmlCT = "text/html; charset=UTF-8"

func TestHitAndMissRules(t *testing.T) {
	page := html(2000)
	tests := []struct {
		name   string
		origin *origin
		first  *http.Request
		second *http.Request
		want   []got // first, second
		calls  int
	}{
		{
			name:   "anonymous page is stored",
			origin: fixed(200, page, "Content-Type", htmlCT),
			first:  req("GET", "/hello/"), second: req("GET", "/hello/"),
			want:  []got{{200, "MISS", "", page}, {200, "HIT", "0", page}},
			calls: 1,
		},
		{
			name:   "set-cookie is never stored",
			origin: fixed(200, "hi", "Content-Type", htmlCT, "Set-Cookie", "a=b"),
			first:  req("GET", "/"), second: req("GET", "/"),
			want:  []got{{200, "MISS", "", "hi"}, {200, "MISS", "", "hi"}},
			calls: 2,
		},
		{
			name:   "utm params share a key",
			origin: fixed(200, "hi", "Content-Type", htmlCT),
			first:  req("GET", "/a/?utm_source=news&page=2"), second: req("GET", "/a/?page=2&fbclid=xyz"),
			want:  []got{{200, "MISS", "", "hi"}, {200, "HIT", "0", "hi"}},
			calls: 1,
		},
		{
			name:   "HEAD uses the GET entry",
			origin: fixed(200, "hi", "Content-Type", htmlCT),
			first:  req("GET", "/"), second: req("HEAD", "/"),
			want:  []got{{200, "MISS", "", "hi"}, {200, "HIT", "0", ""}},
			calls: 1,
		},
		{
			name:   "GET uses the entry a HEAD filled",
			origin: fixed(200, "hi", "Content-Type", htmlCT),
			first:  req("HEAD", "/"), second: req("GET", "/"),
			want:  []got{{200, "MISS", "", ""}, {200, "HIT", "0", "hi"}},
			calls: 1,
		},
		{
			name:   "logged in user bypasses a cached page",
			origin: fixed(200, "hi", "Content-Type", htmlCT),
			first:  req("GET", "/"), second: req("GET", "/", "Cookie", "wordpress_logged_in_1=x"),
			want:  []got{{200, "MISS", "", "hi"}, {200, "MISS", "", "hi"}},
			calls: 2,
		},
		{
			name:   "bypassed response is not stored",
			origin: fixed(200, "hi", "Content-Type", htmlCT),
			first:  req("GET", "/", "Cookie", "wordpress_logged_in_1=x"), second: req("GET", "/"),
			want:  []got{{200, "MISS", "", "hi"}, {200, "MISS", "", "hi"}},
			calls: 2,
		},
		{
			name:   "browser reload is served from cache",
			origin: fixed(200, "hi", "Content-Type", htmlCT),
			first:  req("GET", "/"), second: req("GET", "/", "Cache-Control", "no-cache", "Pragma", "no-cache"),
			want:  []got{{200, "MISS", "", "hi"}, {200, "HIT", "0", "hi"}},
			calls: 1,
		},
		{
			name:   "404 page is stored",
			origin: fixed(404, "nope", "Content-Type", htmlCT),
			first:  req("GET", "/missing/"), second: req("GET", "/missing/"),
			want:  []got{{404, "MISS", "", "nope"}, {404, "HIT", "0", "nope"}},
			calls: 1,
		},
		{
			name:   "origin Age is relayed on MISS and grows on HIT",
			origin: fixed(200, "hi", "Cache-Control", "max-age=60", "Age", "10"),
			first:  req("GET", "/"), second: req("GET", "/"),
			want:  []got{{200, "MISS", "10", "hi"}, {200, "HIT", "10", "hi"}},
			calls: 1,
		},
		{
			name:   "scheme is part of the variant",
			origin: fixed(301, "", "Content-Type", htmlCT, "Location", "https://example.com/"),
			first:  req("GET", "http://example.com/"), second: req("GET", "https://example.com/"),
			want:  []got{{301, "MISS", "", ""}, {301, "MISS", "", ""}},
			calls: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCache(t, newFakeClock(), nil)
			g := []got{summary(do(t, c, tt.first, tt.origin)), summary(do(t, c, tt.second, tt.origin))}
			if diff := cmp.Diff(tt.want, g); diff != "" {
				t.Errorf("responses mismatch (-want +got):\n%s", diff)
			}
			if got := tt.origin.Calls(); got != tt.calls {
				t.Errorf("origin calls = %d, want %d", got, tt.calls)
			}
		})
	}
}

func TestAgeAndExpiry(t *testing.T) {
	clk := newFakeClock()
	c := newTestCache(t, clk, func(cfg *Config) { cfg.StaleWhileRevalidate, cfg.StaleIfError = 0, 0 })
	o := fixed(200, "hi", "Cache-Control", "max-age=60", "Age", "10")
	do(t, c, req("GET", "/"), o)
	clk.Advance(20 * time.Second)
	if diff := cmp.Diff(got{200, "HIT", "30", "hi"}, summary(do(t, c, req("GET", "/"), o))); diff != "" {
		t.Errorf("after 20s (-want +got):\n%s", diff)
	}
	clk.Advance(30 * time.Second) // 10 + 50 = 60: stale
	if diff := cmp.Diff(got{200, "MISS", "10", "hi"}, summary(do(t, c, req("GET", "/"), o))); diff != "" {
		t.Errorf("after 50s (-want +got):\n%s", diff)
	}
	if o.Calls() != 2 {
		t.Errorf("origin calls = %d, want 2", o.Calls())
	}
}

func TestConditionalHits(t *testing.T) {
	lm := "Sat, 01 Mar 2025 10:00:00 GMT"
	tests := []struct {
		name       string
		kv         []string
		wantStatus int
		wantHeader http.Header
	}{
		{name: "matching etag", kv: []string{"If-None-Match", `"v1"`}, wantStatus: 304},
		{name: "weak etag in a list", kv: []string{"If-None-Match", `"x", W/"v1"`}, wantStatus: 304},
		{name: "star", kv: []string{"If-None-Match", `*`}, wantStatus: 304},
		{name: "other etag", kv: []string{"If-None-Match", `"v2"`}, wantStatus: 200},
		{name: "etag beats date", kv: []string{"If-None-Match", `"v2"`, "If-Modified-Since", lm}, wantStatus: 200},
		{name: "same date", kv: []string{"If-Modified-Since", lm}, wantStatus: 304},
		{name: "later date", kv: []string{"If-Modified-Since", "Sat, 01 Mar 2025 11:00:00 GMT"}, wantStatus: 304},
		{name: "earlier date", kv: []string{"If-Modified-Since", "Sat, 01 Mar 2025 09:00:00 GMT"}, wantStatus: 200},
		{name: "bad date", kv: []string{"If-Modified-Since", "yesterday"}, wantStatus: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCache(t, newFakeClock(), nil)
			o := fixed(200, "hello", "Content-Type", "text/plain", "Cache-Control", "max-age=60", "ETag", `"v1"`, "Last-Modified", lm, "X-Scalepress-Tags", "post-1")
			do(t, c, req("GET", "/x"), o)
			w := do(t, c, req("GET", "/x", tt.kv...), o)
			if w.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d", w.Code, tt.wantStatus)
			}
			if tt.wantStatus != 304 {
				return
			}
			want := http.Header{
				"Age": {"0"}, "Cache-Control": {"max-age=60"}, "Etag": {`"v1"`},
				"Last-Modified": {lm}, "X-Cache": {"HIT"},
			}
			if diff := cmp.Diff(want, w.Header()); diff != "" {
				t.Errorf("304 header mismatch (-want +got):\n%s", diff)
			}
			if w.Body.Len() != 0 {
				t.Errorf("304 body = %q, want empty", w.Body.String())
			}
		})
	}
}

func TestRangeHits(t *testing.T) {
	body := "0123456789"
	lm := "Sat, 01 Mar 2025 10:00:00 GMT"
	type result struct {
		Status       int
		ContentRange string
		Length       string
		Body         string
	}
	tests := []struct {
		name string
		kv   []string
		want result
	}{
		{name: "single", kv: []string{"Range", "bytes=2-4"}, want: result{206, "bytes 2-4/10", "3", "234"}},
		{name: "suffix", kv: []string{"Range", "bytes=-3"}, want: result{206, "bytes 7-9/10", "3", "789"}},
		{name: "open", kv: []string{"Range", "bytes=8-"}, want: result{206, "bytes 8-9/10", "2", "89"}},
		{name: "identity even when gzip is accepted", kv: []string{"Range", "bytes=0-0", "Accept-Encoding", "gzip"}, want: result{206, "bytes 0-0/10", "1", "0"}},
		{name: "unsatisfiable", kv: []string{"Range", "bytes=10-"}, want: result{416, "bytes */10", "0", ""}},
		{name: "multi is served whole", kv: []string{"Range", "bytes=0-1,4-5"}, want: result{200, "", "10", body}},
		{name: "garbage is ignored", kv: []string{"Range", "bytes=x"}, want: result{200, "", "10", body}},
		{name: "if-range etag matches", kv: []string{"Range", "bytes=0-1", "If-Range", `"v1"`}, want: result{206, "bytes 0-1/10", "2", "01"}},
		{name: "if-range etag differs", kv: []string{"Range", "bytes=0-1", "If-Range", `"v0"`}, want: result{200, "", "10", body}},
		{name: "if-range weak never matches", kv: []string{"Range", "bytes=0-1", "If-Range", `W/"v1"`}, want: result{200, "", "10", body}},
		{name: "if-range date matches", kv: []string{"Range", "bytes=0-1", "If-Range", lm}, want: result{206, "bytes 0-1/10", "2", "01"}},
		{name: "if-range date differs", kv: []string{"Range", "bytes=0-1", "If-Range", "Sat, 01 Mar 2025 09:00:00 GMT"}, want: result{200, "", "10", body}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCache(t, newFakeClock(), nil)
			o := fixed(200, body, "Content-Type", "video/mp4", "ETag", `"v1"`, "Last-Modified", lm)
			do(t, c, req("GET", "/wp-content/uploads/v.mp4"), o)
			w := do(t, c, req("GET", "/wp-content/uploads/v.mp4", tt.kv...), o)
			g := result{w.Code, w.Header().Get("Content-Range"), w.Header().Get("Content-Length"), w.Body.String()}
			if diff := cmp.Diff(tt.want, g); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
			if ar := w.Header().Get("Accept-Ranges"); ar != "bytes" {
				t.Errorf("Accept-Ranges = %q, want bytes", ar)
			}
			if o.Calls() != 1 {
				t.Errorf("origin calls = %d, want 1", o.Calls())
			}
		})
	}
}

// decode returns b decoded from the Content-Encoding ce ("" = identity).
func decode(t *testing.T, ce string, b []byte) string {
	t.Helper()
	switch ce {
	case "":
		return string(b)
	case "gzip":
		return gunzip(t, b)
	case "br":
		out, err := io.ReadAll(brotli.NewReader(bytes.NewReader(b)))
		if err != nil {
			t.Fatalf("brotli decode error = %v", err)
		}
		return string(out)
	case "zstd":
		zr, err := zstd.NewReader(nil)
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		out, err := zr.DecodeAll(b, nil)
		if err != nil {
			t.Fatalf("zstd decode error = %v", err)
		}
		return string(out)
	}
	t.Fatalf("unknown Content-Encoding %q", ce)
	return ""
}

func gunzip(t *testing.T, b []byte) string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("gzip.NewReader() error = %v", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip error = %v", err)
	}
	return string(out)
}

func TestCompressedOnceServedByAcceptEncoding(t *testing.T) {
	page := html(8 << 10)
	c := newTestCache(t, newFakeClock(), nil)
	o := fixed(200, page, "Content-Type", htmlCT, "ETag", `"p1"`)
	tests := []struct {
		name     string
		ae       []string
		wantCE   string
		wantETag string
	}{
		{name: "browser: the smallest of equals", ae: []string{"Accept-Encoding", "gzip, deflate, br, zstd"}, wantCE: "br", wantETag: `W/"p1"`},
		{name: "gzip only", ae: []string{"Accept-Encoding", "gzip"}, wantCE: "gzip", wantETag: `W/"p1"`},
		{name: "zstd only", ae: []string{"Accept-Encoding", "zstd"}, wantCE: "zstd", wantETag: `W/"p1"`},
		{name: "none", wantETag: `"p1"`},
		{name: "empty: identity only", ae: []string{"Accept-Encoding", ""}, wantETag: `"p1"`},
		{name: "gzip refused", ae: []string{"Accept-Encoding", "gzip;q=0, deflate"}, wantETag: `"p1"`},
		{name: "q ranks before size", ae: []string{"Accept-Encoding", "br;q=0.5, gzip;q=0.8, zstd;q=0.7"}, wantCE: "gzip", wantETag: `W/"p1"`},
		{name: "identity preferred", ae: []string{"Accept-Encoding", "gzip;q=0.5, identity"}, wantETag: `"p1"`},
		{name: "star", ae: []string{"Accept-Encoding", "*"}, wantCE: "br", wantETag: `W/"p1"`},
		{name: "star minus br", ae: []string{"Accept-Encoding", "*, br;q=0"}, wantCE: "zstd", wantETag: `W/"p1"`},
		{name: "nothing acceptable: identity", ae: []string{"Accept-Encoding", "*;q=0"}, wantETag: `"p1"`},
		{name: "invalid q is refused", ae: []string{"Accept-Encoding", "br;q=2, gzip;q=0.9"}, wantCE: "gzip", wantETag: `W/"p1"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := do(t, c, req("GET", "/page/", tt.ae...), o)
			h := w.Header()
			if diff := cmp.Diff([]string{tt.wantCE, "Accept-Encoding", tt.wantETag}, []string{h.Get("Content-Encoding"), h.Get("Vary"), h.Get("Etag")}); diff != "" {
				t.Errorf("Content-Encoding, Vary, ETag mismatch (-want +got):\n%s", diff)
			}
			if tt.wantCE != "" && w.Body.Len() >= len(page) {
				t.Errorf("%s body is %d bytes, page %d", tt.wantCE, w.Body.Len(), len(page))
			}
			if body := decode(t, tt.wantCE, w.Body.Bytes()); body != page {
				t.Errorf("decoded body differs from the page")
			}
			if h.Get("Content-Length") != itoa(w.Body.Len()) {
				t.Errorf("Content-Length = %s, body %d", h.Get("Content-Length"), w.Body.Len())
			}
		})
	}
	if o.Calls() != 1 {
		t.Errorf("origin calls = %d, want 1 (one entry for every encoding)", o.Calls())
	}
	if s := c.Stats(); s.Objects != 1 {
		t.Errorf("Objects = %d, want 1", s.Objects)
	}
}

// TestCompressedBodiesCounted: every stored coding is counted against the
// byte budget, and a 304 for a compressed body names its ETag and Vary.
func TestCompressedBodiesCounted(t *testing.T) {
	page := html(8 << 10)
	c := newTestCache(t, newFakeClock(), nil)
	o := fixed(200, page, "Content-Type", htmlCT, "ETag", `"p1"`)
	do(t, c, req("GET", "/page/"), o)
	var compressed int64
	for _, cd := range []coding{codingGzip, codingBr, codingZstd} {
		b := compressBody(cd, []byte(page))
		if b == nil {
			t.Fatalf("compressBody(%s) = nil", codingNames[cd])
		}
		compressed += int64(len(b))
	}
	if got, min := c.Stats().Bytes, int64(len(page))+compressed; got < min {
		t.Errorf("Stats().Bytes = %d, want ≥ %d (identity + gzip + br + zstd)", got, min)
	}
	w := do(t, c, req("GET", "/page/", "Accept-Encoding", "br", "If-None-Match", `W/"p1"`), o)
	if diff := cmp.Diff([]string{"304", `W/"p1"`, "Accept-Encoding", ""}, []string{itoa(w.Code), w.Header().Get("Etag"), w.Header().Get("Vary"), w.Body.String()}); diff != "" {
		t.Errorf("304 status, ETag, Vary, body mismatch (-want +got):\n%s", diff)
	}
}

func TestSmallOrIncompressibleNotCompressed(t *testing.T) {
	tests := []struct {
		name string
		kv   []string
		body string
	}{
		{name: "small", kv: []string{"Content-Type", htmlCT}, body: html(500)},
		{name: "image", kv: []string{"Content-Type", "image/png"}, body: strings.Repeat("x", 4096)},
		{name: "no-transform", kv: []string{"Content-Type", htmlCT, "Cache-Control", "max-age=60, no-transform"}, body: html(4096)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCache(t, newFakeClock(), nil)
			o := fixed(200, tt.body, tt.kv...)
			do(t, c, req("GET", "/wp-content/x.png"), o)
			w := do(t, c, req("GET", "/wp-content/x.png", "Accept-Encoding", "gzip"), o)
			if ce := w.Header().Get("Content-Encoding"); ce != "" || w.Body.String() != tt.body {
				t.Errorf("Content-Encoding = %q, body same = %v; want identity", ce, w.Body.String() == tt.body)
			}
		})
	}
}

func TestOriginEncodedIsAVariant(t *testing.T) {
	c := newTestCache(t, newFakeClock(), nil)
	o := newOrigin(func(n int) (*Response, error) {
		if n == 1 {
			return resp(200, "BROTLI", "Content-Type", htmlCT, "Content-Encoding", "br", "Vary", "Accept-Encoding"), nil
		}
		return resp(200, "plain", "Content-Type", htmlCT, "Vary", "Accept-Encoding"), nil
	})
	steps := []struct {
		ae   string
		want got
	}{
		{"gzip, br", got{200, "MISS", "", "BROTLI"}},
		{"br, gzip", got{200, "HIT", "0", "BROTLI"}},
		{"gzip", got{200, "MISS", "", "plain"}}, // replaces the br variant: the spec changed
		{"", got{200, "HIT", "0", "plain"}},
	}
	for i, s := range steps {
		var kv []string
		if s.ae != "" {
			kv = []string{"Accept-Encoding", s.ae}
		}
		if diff := cmp.Diff(s.want, summary(do(t, c, req("GET", "/", kv...), o))); diff != "" {
			t.Errorf("step %d (Accept-Encoding %q) mismatch (-want +got):\n%s", i, s.ae, diff)
		}
	}
}

func TestVaryHeader(t *testing.T) {
	c := newTestCache(t, newFakeClock(), nil)
	o := newOrigin(func(n int) (*Response, error) {
		return resp(200, "page "+itoa(n), "Content-Type", htmlCT, "Vary", "Accept-Language"), nil
	})
	steps := []struct {
		lang string
		want got
	}{
		{"en", got{200, "MISS", "", "page 1"}},
		{"de", got{200, "MISS", "", "page 2"}},
		{"en", got{200, "HIT", "0", "page 1"}},
		{"de", got{200, "HIT", "0", "page 2"}},
		{"", got{200, "MISS", "", "page 3"}},
	}
	for i, s := range steps {
		var kv []string
		if s.lang != "" {
			kv = []string{"Accept-Language", s.lang}
		}
		if diff := cmp.Diff(s.want, summary(do(t, c, req("GET", "/", kv...), o))); diff != "" {
			t.Errorf("step %d (%q) mismatch (-want +got):\n%s", i, s.lang, diff)
		}
	}
	if got := c.Stats().Objects; got != 3 {
		t.Errorf("Objects = %d, want 3", got)
	}
}

func TestTagHeaderNeverServed(t *testing.T) {
	c := newTestCache(t, newFakeClock(), nil)
	cacheable := fixed(200, "hi", "Content-Type", htmlCT, "X-Scalepress-Tags", "post-1 home", "ETag", `"e"`)
	pass := fixed(200, "hi", "Content-Type", htmlCT, "X-Scalepress-Tags", "post-1", "Set-Cookie", "a=b")
	steps := []struct {
		name string
		r    *http.Request
		o    *origin
	}{
		{"miss", req("GET", "/a"), cacheable},
		{"hit", req("GET", "/a"), cacheable},
		{"304", req("GET", "/a", "If-None-Match", `"e"`), cacheable},
		{"head", req("HEAD", "/a"), cacheable},
		{"pass", req("GET", "/b"), pass},
		{"bypass", req("GET", "/a", "Cookie", "wordpress_logged_in_x=1"), cacheable},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			w := do(t, c, s.r, s.o)
			if v, ok := w.Header()["X-Scalepress-Tags"]; ok {
				t.Errorf("served X-Scalepress-Tags: %q", v)
			}
		})
	}
	h := http.Header{"X-Scalepress-Tags": {"a"}, "Content-Type": {"text/html"}}
	c.StripTagHeader(h)
	if diff := cmp.Diff(http.Header{"Content-Type": {"text/html"}}, h); diff != "" {
		t.Errorf("StripTagHeader() mismatch (-want +got):\n%s", diff)
	}
}

func TestHopByHopNotStored(t *testing.T) {
	c := newTestCache(t, newFakeClock(), nil)
	o := fixed(200, "hi", "Content-Type", htmlCT, "Connection", "X-Node-Debug", "X-Node-Debug", "1", "Keep-Alive", "timeout=5", "X-Other", "kept")
	do(t, c, req("GET", "/"), o)
	w := do(t, c, req("GET", "/"), o)
	want := http.Header{"Age": {"0"}, "Content-Length": {"2"}, "Content-Type": {htmlCT}, "X-Cache": {"HIT"}, "X-Other": {"kept"}}
	if diff := cmp.Diff(want, w.Header()); diff != "" {
		t.Errorf("hit header mismatch (-want +got):\n%s", diff)
	}
}

func TestTooLargePassesThrough(t *testing.T) {
	c := newTestCache(t, newFakeClock(), func(cfg *Config) { cfg.MaxObjectBytes = 1 << 10; cfg.MaxBytes = 1 << 20 })
	big := strings.Repeat("x", 3<<10)
	tests := []struct {
		name string
		kv   []string
	}{
		{name: "known length", kv: []string{"Content-Type", htmlCT, "Content-Length", itoa(len(big))}},
		{name: "unknown length", kv: []string{"Content-Type", htmlCT}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := fixed(200, big, tt.kv...)
			for range 2 {
				w := do(t, c, req("GET", "/big-"+strings.ReplaceAll(tt.name, " ", "-")), o)
				if diff := cmp.Diff(got{200, "MISS", "", big}, summary(w)); diff != "" {
					t.Errorf("mismatch (-want +got):\n%s", diff)
				}
			}
			if o.Calls() != 2 {
				t.Errorf("origin calls = %d, want 2", o.Calls())
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestConditionalApply(t *testing.T) {
	client := func() http.Header {
		return http.Header{
			"If-None-Match": {`"old"`}, "If-Modified-Since": {"x"}, "If-Match": {"y"}, "If-Unmodified-Since": {"z"},
			"Range": {"bytes=0-1"}, "If-Range": {`"e"`}, "Accept": {"text/html"},
		}
	}
	tests := []struct {
		name string
		cond Conditional
		want http.Header
	}{
		{name: "fill", cond: Conditional{}, want: http.Header{"Accept": {"text/html"}}},
		{name: "revalidation", cond: Conditional{ETag: `"v1"`, LastModified: "Sat, 01 Mar 2025 10:00:00 GMT"},
			want: http.Header{"Accept": {"text/html"}, "If-None-Match": {`"v1"`}, "If-Modified-Since": {"Sat, 01 Mar 2025 10:00:00 GMT"}}},
		{name: "own fetch keeps range", cond: Conditional{keepRange: true},
			want: http.Header{"Accept": {"text/html"}, "Range": {"bytes=0-1"}, "If-Range": {`"e"`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := client()
			tt.cond.Apply(h)
			if diff := cmp.Diff(tt.want, h); diff != "" {
				t.Errorf("Apply() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHeadResponseToAFillIsNotStored(t *testing.T) {
	c := newTestCache(t, newFakeClock(), nil)
	// An edge that wrongly forwarded HEAD: headers promise a body it lacks.
	o := fixed(200, "", "Content-Type", htmlCT, "Content-Length", "5000")
	for range 2 {
		w := do(t, c, req("HEAD", "/"), o)
		if w.Code != 503 {
			t.Errorf("status = %d, want 503 (nothing valid to serve)", w.Code)
		}
	}
	if s := c.Stats(); s.Objects != 0 {
		t.Errorf("Objects = %d, want 0", s.Objects)
	}
}

func TestRangeOnTooLargeObject(t *testing.T) {
	c := newTestCache(t, newFakeClock(), func(cfg *Config) { cfg.MaxObjectBytes = 1 << 10; cfg.MaxBytes = 1 << 20 })
	big := strings.Repeat("v", 4<<10)
	calls := 0
	// An edge-like fetch: the outbound header is the client's, prepared by
	// Apply; the origin honours Range as http.ServeContent does.
	fetchFor := func(r *http.Request) Fetch {
		return func(ctx context.Context, cond Conditional) (*Response, error) {
			calls++
			h := r.Header.Clone()
			cond.Apply(h)
			if h.Get("Range") == "bytes=0-1" {
				return resp(206, "vv", "Content-Type", "video/mp4", "Content-Range", "bytes 0-1/4096"), nil
			}
			return resp(200, big, "Content-Type", "video/mp4", "Content-Length", itoa(len(big))), nil
		}
	}
	var out []got
	for range 2 {
		r := req("GET", "/wp-content/uploads/movie.mp4", "Range", "bytes=0-1")
		w := httptest.NewRecorder()
		d := c.Classify(r)
		if !c.ServeHit(w, r, d) {
			c.Serve(w, r, c.Fill(r.Context(), r, d, fetchFor(r)))
		}
		g := summary(w)
		g.Body = g.Body[:min(len(g.Body), 4)]
		out = append(out, g)
	}
	// The first request learns the object is too large (served whole); the
	// second, hit-for-pass, gets its range from the origin.
	want := []got{{200, "MISS", "", "vvvv"}, {206, "MISS", "", "vv"}}
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
	if calls != 2 {
		t.Errorf("fetches = %d, want 2", calls)
	}
}
