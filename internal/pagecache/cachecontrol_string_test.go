package pagecache

import (
	"strconv"
	"strings"
)

// The fuzz test's round trip renders a parsed header back to text; the
// cache itself never does.

// String renders the directives the cache keeps, in a fixed order; parsing
// the result gives back the same value.
func (cc cacheControl) String() string {
	var parts []string
	add := func(on bool, s string) {
		if on {
			parts = append(parts, s)
		}
	}
	num := func(n int64, s string) {
		if n >= 0 {
			parts = append(parts, s+"="+strconv.FormatInt(n, 10))
		}
	}
	num(cc.maxAge, "max-age")
	num(cc.sMaxAge, "s-maxage")
	num(cc.staleWhileRevalidate, "stale-while-revalidate")
	num(cc.staleIfError, "stale-if-error")
	add(cc.noStore, "no-store")
	add(cc.noCache, "no-cache")
	add(cc.private, "private")
	add(cc.public, "public")
	add(cc.noTransform, "no-transform")
	add(cc.mustRevalidate, "must-revalidate")
	add(cc.proxyRevalidate, "proxy-revalidate")
	add(cc.immutable, "immutable")
	add(cc.only, "only-if-cached")
	return strings.Join(parts, ", ")
}
