package pagecache

import (
	"strings"
)

// cacheControl holds the Cache-Control directives the cache acts on.
// Delta-seconds are -1 when absent.
//
// The parser is the same for requests and responses and tolerates junk:
//   - directive names are case-insensitive; unknown directives are skipped;
//   - a value may be a token or a quoted-string (with backslash escapes), so
//     no-cache="Set-Cookie, X-Foo" is one directive; text after a value up
//     to the next comma is ignored;
//   - an invalid delta-seconds value (empty, not digits, negative) counts as
//     0, so the response is stale at once rather than fresh for a guess;
//     values above 2^31 are capped to 2^31 (RFC 9111 §1.2.2);
//   - a directive given twice keeps its smallest value. RFC 9111 §4.2.1
//     lets a cache either use the first occurrence or treat the response as
//     stale; the smallest never makes a response fresher than any value the
//     origin wrote and does not depend on order.
//   - field-qualified no-cache / private ("private=Set-Cookie") are taken as
//     their unqualified, more restrictive forms.
//
// The cache ignores the request's Cache-Control (see Cache).
type cacheControl struct {
	maxAge, sMaxAge                                  int64
	staleWhileRevalidate, staleIfError               int64
	noStore, noCache, private, public, noTransform   bool
	mustRevalidate, proxyRevalidate, immutable, only bool
}

// maxDelta is the largest delta-seconds value kept (RFC 9111 §1.2.2).
const maxDelta = 1 << 31

func parseCacheControl(fields []string) cacheControl {
	cc := cacheControl{maxAge: -1, sMaxAge: -1, staleWhileRevalidate: -1, staleIfError: -1}
	for _, f := range fields {
		for len(f) > 0 {
			var name, val string
			var hasVal bool
			name, val, hasVal, f = nextDirective(f)
			cc.set(name, val, hasVal)
		}
	}
	return cc
}

// nextDirective splits the first directive off s.
func nextDirective(s string) (name, val string, hasVal bool, rest string) {
	s = strings.TrimLeft(s, " \t,")
	i := 0
	for i < len(s) && s[i] != '=' && s[i] != ',' && s[i] != ' ' && s[i] != '\t' {
		i++
	}
	name, s = s[:i], strings.TrimLeft(s[i:], " \t")
	if len(s) > 0 && s[0] == '=' {
		hasVal = true
		s = strings.TrimLeft(s[1:], " \t")
		if len(s) > 0 && s[0] == '"' {
			val, s = quotedString(s)
		} else {
			j := 0
			for j < len(s) && s[j] != ',' && s[j] != ' ' && s[j] != '\t' {
				j++
			}
			val, s = s[:j], s[j:]
		}
	}
	// Skip junk up to the next comma.
	if j := strings.IndexByte(s, ','); j >= 0 {
		s = s[j+1:]
	} else {
		s = ""
	}
	return name, val, hasVal, s
}

// quotedString reads a quoted-string at the start of s (which begins with
// '"'); an unterminated one runs to the end.
func quotedString(s string) (val, rest string) {
	var b []byte
	plain := true
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '"':
			if plain {
				return s[1:i], s[i+1:]
			}
			return string(b), s[i+1:]
		case '\\':
			if plain {
				b, plain = append(b, s[1:i]...), false
			}
			if i+1 < len(s) {
				i++
				b = append(b, s[i])
			}
		default:
			if !plain {
				b = append(b, s[i])
			}
		}
	}
	if plain {
		return s[1:], ""
	}
	return string(b), ""
}

func (cc *cacheControl) set(name, val string, hasVal bool) {
	switch strings.ToLower(name) {
	case "max-age":
		cc.maxAge = mergeDelta(cc.maxAge, val, hasVal)
	case "s-maxage":
		cc.sMaxAge = mergeDelta(cc.sMaxAge, val, hasVal)
	case "stale-while-revalidate":
		cc.staleWhileRevalidate = mergeDelta(cc.staleWhileRevalidate, val, hasVal)
	case "stale-if-error":
		cc.staleIfError = mergeDelta(cc.staleIfError, val, hasVal)
	case "no-store":
		cc.noStore = true
	case "no-cache":
		cc.noCache = true
	case "private":
		cc.private = true
	case "public":
		cc.public = true
	case "no-transform":
		cc.noTransform = true
	case "must-revalidate":
		cc.mustRevalidate = true
	case "proxy-revalidate":
		cc.proxyRevalidate = true
	case "immutable":
		cc.immutable = true
	case "only-if-cached":
		cc.only = true
	}
}

func mergeDelta(old int64, val string, hasVal bool) int64 {
	n := parseDelta(val)
	if !hasVal {
		n = 0
	}
	if old >= 0 && old < n {
		return old
	}
	return n
}

// parseDelta parses delta-seconds; invalid input is 0, large input maxDelta.
func parseDelta(s string) int64 {
	if s == "" {
		return 0
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int64(c-'0')
		if n >= maxDelta {
			n = maxDelta
			// keep validating the rest
			for _, c := range []byte(s[i+1:]) {
				if c < '0' || c > '9' {
					return 0
				}
			}
			return n
		}
	}
	return n
}
