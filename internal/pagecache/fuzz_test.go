package pagecache

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzCacheControl parses arbitrary header values. Invariants: delta
// values stay in [-1, 2^31]; rendering and parsing again is the identity;
// directive names are case-insensitive; a directive in a later field line
// always takes effect (a flag is set, a different max-age makes it 0).
// Seeds: testdata/fuzz/FuzzCacheControl.
func FuzzCacheControl(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		cc := parseCacheControl([]string{s})
		for name, v := range map[string]int64{"max-age": cc.maxAge, "s-maxage": cc.sMaxAge, "swr": cc.staleWhileRevalidate, "sie": cc.staleIfError} {
			if v < -1 || v > maxDelta {
				t.Errorf("%s = %d, out of [-1, 2^31]", name, v)
			}
		}
		if diff := cmp.Diff(cc, parseCacheControl([]string{cc.String()}), cmp.AllowUnexported(cacheControl{})); diff != "" {
			t.Errorf("parse(String()) mismatch (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(cc, parseCacheControl([]string{asciiUpper(s)}), cmp.AllowUnexported(cacheControl{})); diff != "" {
			t.Errorf("parse(upper) mismatch (-want +got):\n%s", diff)
		}
		if !parseCacheControl([]string{s, "no-store"}).noStore {
			t.Errorf("no-store in a second line was lost")
		}
		// RFC 9111 §4.2.1: a conflicting second value makes it stale.
		want := int64(5)
		if cc.maxAge >= 0 && cc.maxAge != 5 {
			want = 0
		}
		if got := parseCacheControl([]string{s, "max-age=5"}).maxAge; got != want {
			t.Errorf("max-age after a second line max-age=5 = %d, want %d", got, want)
		}
	})
}

func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// FuzzRange checks parseRange against a plain reference implementation of
// the same rules, and that a single range always fits the body.
// Seeds: testdata/fuzz/FuzzRange.
func FuzzRange(f *testing.F) {
	f.Fuzz(func(t *testing.T, h string, size uint32) {
		n := int64(size)
		start, end, kind := parseRange(h, n)
		if kind == rangeSingle && !(0 <= start && start <= end && end < n) {
			t.Fatalf("parseRange(%q, %d) = [%d, %d]: outside the body", h, n, start, end)
		}
		ws, we, wk := referenceRange(h, n)
		if ws != start || we != end || wk != kind {
			t.Errorf("parseRange(%q, %d) = %d %d %d, reference %d %d %d", h, n, start, end, kind, ws, we, wk)
		}
	})
}

// referenceRange is parseRange written the obvious way.
func referenceRange(h string, size int64) (int64, int64, rangeKind) {
	h = strings.TrimSpace(h)
	unit, set, ok := strings.Cut(h, "=")
	if !ok || !strings.EqualFold(unit, "bytes") {
		return 0, 0, rangeNone
	}
	num := func(s string) (int64, bool) {
		if len(s) == 0 || len(s) > 18 || strings.Trim(s, "0123456789") != "" {
			return 0, false
		}
		v, err := strconv.ParseInt(s, 10, 64)
		return v, err == nil
	}
	type rng struct{ s, e int64 }
	var good []rng
	specs := 0
	for _, spec := range strings.Split(set, ",") {
		spec = strings.Trim(spec, " \t")
		if spec == "" {
			continue
		}
		specs++
		if specs > maxRangeSpecs {
			return 0, 0, rangeNone
		}
		a, b, ok := strings.Cut(spec, "-")
		if !ok {
			return 0, 0, rangeNone
		}
		if a == "" {
			v, ok := num(b)
			if !ok {
				return 0, 0, rangeNone
			}
			if v > 0 && size > 0 {
				good = append(good, rng{max(0, size-v), size - 1})
			}
			continue
		}
		first, ok := num(a)
		if !ok {
			return 0, 0, rangeNone
		}
		last := size - 1
		if b != "" {
			l, ok := num(b)
			if !ok || l < first {
				return 0, 0, rangeNone
			}
			last = min(l, size-1)
		}
		if first < size {
			good = append(good, rng{first, last})
		}
	}
	switch {
	case specs == 0:
		return 0, 0, rangeNone
	case len(good) == 0:
		return 0, 0, rangeUnsatisfiable
	case specs > 1:
		return 0, 0, rangeMulti
	}
	return good[0].s, good[0].e, rangeSingle
}

// FuzzTags checks parseTags against its definition: the first occurrences
// of the valid tokens, in order, capped.
// Seeds: testdata/fuzz/FuzzTags.
func FuzzTags(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		got := parseTags([]string{s})
		var want []string
		for _, tok := range strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '\t' || r == ',' }) {
			if len(want) < maxTagsPerObject && tagProblem(tok) == "" && !slices.Contains(want, tok) {
				want = append(want, tok)
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("parseTags(%q) mismatch (-want +got):\n%s", s, diff)
		}
		for _, tag := range got {
			if p := tagProblem(tag); p != "" || len(tag) > maxTagLen {
				t.Errorf("tag %q %s", tag, p)
			}
		}
	})
}

// FuzzPurgeRequest feeds arbitrary requests to the parser. Invariants:
// errors are prefixed and match one of the three sentinels; accepted
// requests respect every limit, survive a JSON round trip unchanged, and
// can be applied to a cache.
// Seeds: testdata/fuzz/FuzzPurgeRequest.
func FuzzPurgeRequest(f *testing.F) {
	c, err := New(DefaultConfig())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, method, contentType string, body []byte) {
		h := http.Header{}
		if contentType != "" {
			h.Set("Content-Type", contentType)
		}
		p, err := ParsePurgeRequest(method, h, body)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "pagecache: purge request: ") {
				t.Errorf("error %q lacks the prefix", err)
			}
			if !errors.Is(err, ErrPurgeInvalid) && !errors.Is(err, ErrPurgeMethod) && !errors.Is(err, ErrPurgeTooLarge) {
				t.Errorf("error %q matches no sentinel", err)
			}
			return
		}
		if method != http.MethodPost || len(body) > MaxPurgeBody || len(p.URLs) > MaxPurgeURLs || len(p.Tags) > MaxPurgeTags {
			t.Errorf("accepted %s with %d bytes, %d urls, %d tags", method, len(body), len(p.URLs), len(p.Tags))
		}
		if !p.All && len(p.URLs) == 0 && len(p.Tags) == 0 {
			t.Errorf("accepted an empty purge")
		}
		for _, tag := range p.Tags {
			if tagProblem(tag) != "" {
				t.Errorf("accepted tag %q", tag)
			}
		}
		for _, raw := range p.URLs {
			u, err := url.Parse(raw)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				t.Errorf("accepted url %q", raw)
			}
		}
		again, err := json.Marshal(map[string]any{"urls": p.URLs, "tags": p.Tags, "all": p.All, "soft": p.Soft})
		if err != nil {
			t.Fatal(err)
		}
		p2, err := ParsePurgeRequest(http.MethodPost, nil, again)
		if err != nil {
			t.Fatalf("re-parsing %s: %v", again, err)
		}
		if diff := cmp.Diff(p, p2); diff != "" {
			t.Errorf("round trip mismatch (-want +got):\n%s", diff)
		}
		if !p.All {
			c.Purge(p)
		}
	})
}
