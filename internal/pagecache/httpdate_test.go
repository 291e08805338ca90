package pagecache

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseHTTPDate(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	want := time.Date(1994, 11, 6, 8, 49, 37, 0, time.UTC)
	tests := []struct {
		name   string
		in     string
		want   time.Time
		wantOK bool
	}{
		// RFC 9110 §5.6.7: the preferred format and the two obsolete ones a
		// recipient MUST accept.
		{name: "IMF-fixdate", in: "Sun, 06 Nov 1994 08:49:37 GMT", want: want, wantOK: true},
		{name: "rfc850-date", in: "Sunday, 06-Nov-94 08:49:37 GMT", want: want, wantOK: true},
		{name: "asctime-date", in: "Sun Nov  6 08:49:37 1994", want: want, wantOK: true},
		{name: "asctime two-digit day", in: "Thu Nov 16 08:49:37 1994", want: want.AddDate(0, 0, 10), wantOK: true},
		{name: "leap second", in: "Wed, 31 Dec 2008 23:59:60 GMT", want: time.Date(2009, 1, 1, 0, 0, 0, 0, time.UTC), wantOK: true},
		// §5.6.7: two-digit years more than 50 years ahead are in the past.
		{name: "rfc850 year 30 is 2030", in: "Sunday, 01-Jan-30 00:00:00 GMT", want: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), wantOK: true},
		{name: "rfc850 year 99 is 1999", in: "Friday, 01-Jan-99 00:00:00 GMT", want: time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC), wantOK: true},
		// RFC 9111 §5.3: "A cache recipient MUST interpret invalid date
		// formats, especially the value "0", as representing a time in the
		// past".
		{name: "zero", in: "0"},
		{name: "empty", in: ""},
		{name: "double space", in: "Sun,  06 Nov 1994 08:49:37 GMT"},
		{name: "one-digit hour", in: "Sun, 06 Nov 1994 8:49:37 GMT"},
		{name: "one-digit day", in: "Sun, 6 Nov 1994 08:49:37 GMT"},
		{name: "lowercase month", in: "Sun, 06 nov 1994 08:49:37 GMT"},
		{name: "zone UTC", in: "Sun, 06 Nov 1994 08:49:37 UTC"},
		{name: "numeric zone", in: "Sun, 06 Nov 1994 08:49:37 +0000"},
		{name: "trailing space", in: "Sun, 06 Nov 1994 08:49:37 GMT "},
		{name: "hour 24", in: "Sun, 06 Nov 1994 24:00:00 GMT"},
		{name: "31 February", in: "Thu, 31 Feb 2025 08:49:37 GMT"},
		{name: "bad day name", in: "Xyz, 06 Nov 1994 08:49:37 GMT"},
		{name: "rfc850 short day name", in: "Sun, 06-Nov-94 08:49:37 GMT"},
		{name: "rfc850 four-digit year", in: "Sunday, 06-Nov-1994 08:49:37 GMT"},
		{name: "asctime zero-padded day", in: "Sun Nov 06 08:49:37 1994", want: want, wantOK: true},
		{name: "asctime one space", in: "Sun Nov 6 08:49:37 1994"},
		{name: "two dates", in: "Sun, 06 Nov 1994 08:49:37 GMT, Sun, 06 Nov 1994 08:49:37 GMT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseHTTPDate(tt.in, now)
			if ok != tt.wantOK {
				t.Fatalf("parseHTTPDate(%q) ok = %v, want %v", tt.in, ok, tt.wantOK)
			}
			if ok && !got.Equal(tt.want) {
				t.Errorf("parseHTTPDate(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseAge(t *testing.T) {
	tests := []struct {
		name   string
		vals   []string
		want   int64
		wantOK bool
	}{
		{name: "absent is 0 (§4.2.3)", vals: nil, want: 0, wantOK: true},
		{name: "delta-seconds (§5.1)", vals: []string{"42"}, want: 42, wantOK: true},
		{name: "huge is 2^31 (§1.2.2)", vals: []string{"99999999999999999999"}, want: maxDelta, wantOK: true},
		{name: "list", vals: []string{"old, 0"}},
		{name: "two members", vals: []string{"0, 3600"}},
		{name: "two lines", vals: []string{"1", "2"}},
		{name: "negative", vals: []string{"-1"}},
		{name: "decimal", vals: []string{"1.0"}},
		{name: "empty", vals: []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseAge(tt.vals)
			if diff := cmp.Diff([2]any{tt.want, tt.wantOK}, [2]any{got, ok}); diff != "" {
				t.Errorf("parseAge(%q) mismatch (-want +got):\n%s", tt.vals, diff)
			}
		})
	}
}

// FuzzHTTPDate: a date the strict parser takes is one http.ParseTime (the
// lenient parser) reads the same way, except rfc850 two-digit years, which
// §5.6.7 places differently; an IMF-fixdate renders back to its input.
// Seeds: testdata/fuzz/FuzzHTTPDate.
func FuzzHTTPDate(f *testing.F) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseHTTPDate(s, now)
		if !ok || s[len(s)-2:] == "60" || strings.Contains(s, ":60 ") {
			return // invalid, or a leap second (time.Time has none)
		}
		if s[3] == ',' {
			// IMF-fixdate (the day name is not checked against the date).
			if r := got.Format(http.TimeFormat); r[5:] != s[5:] {
				t.Errorf("parseHTTPDate(%q) = %v, renders as %q", s, got, r)
			}
		}
		if s[3] == ',' || s[3] == ' ' {
			if lenient, err := http.ParseTime(s); err == nil && !lenient.Equal(got) {
				t.Errorf("parseHTTPDate(%q) = %v, http.ParseTime = %v", s, got, lenient)
			}
		}
	})
}

// FuzzAge: an Age value is valid exactly when it is one line of digits, and
// then in [0, 2^31]. Seeds: testdata/fuzz/FuzzAge.
func FuzzAge(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string, lines uint8) {
		vals := make([]string, 1+int(lines%3))
		for i := range vals {
			vals[i] = s
		}
		n, ok := parseAge(vals)
		digitsOnly := s != ""
		for i := 0; i < len(s); i++ {
			if s[i] < '0' || s[i] > '9' {
				digitsOnly = false
			}
		}
		if ok != (digitsOnly && len(vals) == 1) {
			t.Errorf("parseAge(%q) ok = %v", vals, ok)
		}
		if n < 0 || n > maxDelta {
			t.Errorf("parseAge(%q) = %d, out of [0, 2^31]", vals, n)
		}
	})
}

// FuzzCDNCacheControl parses arbitrary CDN-Cache-Control values: no panic,
// deltas in [-1, 2^31], and what it yields reads the same when rendered as
// a Cache-Control value (the targeted field has Cache-Control's semantics,
// RFC 9213 §2.1). Seeds: testdata/fuzz/FuzzCDNCacheControl.
func FuzzCDNCacheControl(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		cc, ok := targetedCacheControl([]string{s})
		if !ok {
			return
		}
		for name, v := range map[string]int64{"max-age": cc.maxAge, "s-maxage": cc.sMaxAge, "swr": cc.staleWhileRevalidate, "sie": cc.staleIfError} {
			if v < -1 || v > maxDelta {
				t.Errorf("%s = %d, out of [-1, 2^31]", name, v)
			}
		}
		if diff := cmp.Diff(cc, parseCacheControl([]string{cc.String()}), cmp.AllowUnexported(cacheControl{})); diff != "" {
			t.Errorf("parseCacheControl(String()) mismatch (-want +got):\n%s", diff)
		}
		if _, ok := targetedCacheControl([]string{s + ","}); ok {
			t.Errorf("a trailing comma parsed: %q", s+",")
		}
	})
}
