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
		{name: "case and spaces", fields: []string{"  Public ,MAX-AGE = 60 "}, want: with(func(c *cacheControl) { c.maxAge, c.public = 60, true })},
		{name: "s-maxage and max-age", fields: []string{"max-age=60, s-maxage=300"}, want: with(func(c *cacheControl) { c.maxAge, c.sMaxAge = 60, 300 })},
		{name: "two fields", fields: []string{"max-age=60", "no-cache"}, want: with(func(c *cacheControl) { c.maxAge, c.noCache = 60, true })},
		{name: "duplicate keeps smallest", fields: []string{"max-age=600, max-age=60, max-age=120"}, want: with(func(c *cacheControl) { c.maxAge = 60 })},
		{name: "invalid value is stale", fields: []string{"max-age=abc"}, want: with(func(c *cacheControl) { c.maxAge = 0 })},
		{name: "negative value is stale", fields: []string{"max-age=-5"}, want: with(func(c *cacheControl) { c.maxAge = 0 })},
		{name: "missing value is stale", fields: []string{"max-age"}, want: with(func(c *cacheControl) { c.maxAge = 0 })},
		{name: "quoted value", fields: []string{`max-age="60"`}, want: with(func(c *cacheControl) { c.maxAge = 60 })},
		{name: "huge value capped", fields: []string{"max-age=99999999999999999999999"}, want: with(func(c *cacheControl) { c.maxAge = maxDelta })},
		{name: "qualified no-cache with comma in quotes", fields: []string{`no-cache="Set-Cookie, X-Foo", max-age=5`}, want: with(func(c *cacheControl) { c.noCache, c.maxAge = true, 5 })},
		{name: "qualified private", fields: []string{`private="Set-Cookie"`}, want: with(func(c *cacheControl) { c.private = true })},
		{name: "escaped quote", fields: []string{`foo="a\"b,max-age=1", s-maxage=9`}, want: with(func(c *cacheControl) { c.sMaxAge = 9 })},
		{name: "unterminated quote", fields: []string{`foo="abc, max-age=1`}, want: none},
		{name: "unknown and junk", fields: []string{"x-foo=1, ,,, max-age=10 trailing junk, immutable"}, want: with(func(c *cacheControl) { c.maxAge, c.immutable = 10, true })},
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
