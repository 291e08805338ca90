package pagecache

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseCacheControl(t *testing.T) {
	none := cacheControl{maxAge: -1, sMaxAge: -1, staleWhileRevalidate: -1, staleIfError: -1}
	with := func(f func(*cacheControl)) cacheControl {
		cc := none
		f(&cc)
		return cc
	}
	tests := []struct {
		name   string
		fields []string
		want   cacheControl
	}{
		{name: "empty", fields: nil, want: none},
		{name: "max-age", fields: []string{"max-age=60"}, want: with(func(c *cacheControl) { c.maxAge = 60 })},
		// RFC 9111 §5.2: "Cache directives are identified by a token, to be
		// compared case-insensitively"; RFC 9110 §5.6.1: OWS around commas.
		{name: "§5.2 case-insensitive, OWS around commas", fields: []string{"  Public ,MAX-AGE=60 "}, want: with(func(c *cacheControl) { c.maxAge, c.public = 60, true })},
		// RFC 9110 §5.6 has no whitespace around "=": not a valid max-age,
		// and §4.2.1 encourages invalid freshness information to be stale.
		{name: "§4.2.1 space before = is invalid", fields: []string{"max-age =60"}, want: with(func(c *cacheControl) { c.maxAge = 0 })},
		{name: "§4.2.1 space after = is invalid", fields: []string{"max-age= 60"}, want: with(func(c *cacheControl) { c.maxAge = 0 })},
		{name: "s-maxage and max-age", fields: []string{"max-age=60, s-maxage=300"}, want: with(func(c *cacheControl) { c.maxAge, c.sMaxAge = 60, 300 })},
		{name: "two fields", fields: []string{"max-age=60", "no-cache"}, want: with(func(c *cacheControl) { c.maxAge, c.noCache = 60, true })},
		// RFC 9111 §4.2.1: "either the first occurrence should be used or
		// the response should be considered stale": stale.
		{name: "§4.2.1 conflicting duplicates are stale", fields: []string{"max-age=600, max-age=60, max-age=120"}, want: with(func(c *cacheControl) { c.maxAge = 0 })},
		{name: "§4.2.1 conflicting duplicates across lines", fields: []string{"max-age=3600", "max-age=1"}, want: with(func(c *cacheControl) { c.maxAge = 0 })},
		{name: "§4.2.1 equal duplicates keep the value", fields: []string{"max-age=60, max-age=60"}, want: with(func(c *cacheControl) { c.maxAge = 60 })},
		{name: "§4.2.1 conflicting s-maxage is stale", fields: []string{"s-maxage=60, s-maxage=10"}, want: with(func(c *cacheControl) { c.sMaxAge = 0 })},
		{name: "§4.2.1 decimal is invalid", fields: []string{"max-age=1.5"}, want: with(func(c *cacheControl) { c.maxAge = 0 })},
		{name: "invalid value is stale", fields: []string{"max-age=abc"}, want: with(func(c *cacheControl) { c.maxAge = 0 })},
		{name: "negative value is stale", fields: []string{"max-age=-5"}, want: with(func(c *cacheControl) { c.maxAge = 0 })},
		{name: "missing value is stale", fields: []string{"max-age"}, want: with(func(c *cacheControl) { c.maxAge = 0 })},
		// RFC 9111 §5.2: "recipients ought to accept both forms".
		{name: "§5.2 quoted value", fields: []string{`max-age="60"`}, want: with(func(c *cacheControl) { c.maxAge = 60 })},
		// RFC 9110 §5.6.4: a quoted-string is one value; what is inside is
		// never a directive.
		{name: "§5.6.4 max-age inside a quoted string", fields: []string{`community="max-age=3600"`}, want: none},
		{name: "§5.6.4 max-age after a comma inside quotes", fields: []string{`foo="a, max-age=3600"`}, want: none},
		{name: "§5.6.4 quoted junk after a token", fields: []string{`foo "a, max-age=3600", s-maxage=7`}, want: with(func(c *cacheControl) { c.sMaxAge = 7 })},
		{name: "§5.6.4 quoted string is no directive name", fields: []string{`"max-age=3600"`}, want: none},
		{name: "huge value capped", fields: []string{"max-age=99999999999999999999999"}, want: with(func(c *cacheControl) { c.maxAge = maxDelta })},
		{name: "qualified no-cache with comma in quotes", fields: []string{`no-cache="Set-Cookie, X-Foo", max-age=5`}, want: with(func(c *cacheControl) { c.noCache, c.maxAge = true, 5 })},
		{name: "qualified private", fields: []string{`private="Set-Cookie"`}, want: with(func(c *cacheControl) { c.private = true })},
		{name: "escaped quote", fields: []string{`foo="a\"b,max-age=1", s-maxage=9`}, want: with(func(c *cacheControl) { c.sMaxAge = 9 })},
		{name: "unterminated quote", fields: []string{`foo="abc, max-age=1`}, want: none},
		{name: "§5.6.1 empty elements; junk after a value is invalid", fields: []string{"x-foo=1, ,,, max-age=10 trailing junk, immutable"}, want: with(func(c *cacheControl) { c.maxAge, c.immutable = 0, true })},
		{name: "malformed flag still counts (restrictive)", fields: []string{"no-store junk"}, want: with(func(c *cacheControl) { c.noStore = true })},
		{name: "wordpress nocache_headers", fields: []string{"no-cache, must-revalidate, max-age=0, no-store, private"},
			want: with(func(c *cacheControl) {
				c.noCache, c.mustRevalidate, c.maxAge, c.noStore, c.private = true, true, 0, true, true
			})},
		{name: "stale directives", fields: []string{"max-age=1, stale-while-revalidate=30, stale-if-error=86400"},
			want: with(func(c *cacheControl) { c.maxAge, c.staleWhileRevalidate, c.staleIfError = 1, 30, 86400 })},
		{name: "request directives", fields: []string{"no-cache, max-age=0, only-if-cached"}, want: with(func(c *cacheControl) { c.noCache, c.maxAge, c.only = true, 0, true })},
		{name: "revalidate flags", fields: []string{"proxy-revalidate, no-transform"}, want: with(func(c *cacheControl) { c.proxyRevalidate, c.noTransform = true, true })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseCacheControl(tt.fields)
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(cacheControl{})); diff != "" {
				t.Errorf("parseCacheControl(%q) mismatch (-want +got):\n%s", tt.fields, diff)
			}
		})
	}
}
