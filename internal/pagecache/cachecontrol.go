package pagecache

import (
	"strings"
)

// cacheControl holds the Cache-Control directives the cache acts on.
// Delta-seconds are -1 when absent.
//
// The parser follows the list grammar of RFC 9110 §5.6.1 and the directive
// syntax of RFC 9111 §5.2 (token [ "=" ( token / quoted-string ) ]):
//   - directive names are case-insensitive; unknown directives are skipped;
//   - a value may be a token or a quoted-string (with backslash escapes),
//     accepted for every directive (RFC 9111 §5.2: recipients accept both
//     forms), so no-cache="Set-Cookie, X-Foo" is one directive;
//   - an element that does not fit the grammar (text after the value,
//     whitespace around "=", an unterminated quote) is malformed: the parser
//     skips to the next comma outside a quoted-string, so a max-age inside a
//     quoted string or in junk is never a directive. A malformed element
//     with a known name still counts: a flag is set (the restrictive
//     reading), a delta-seconds value is invalid;
//   - an invalid delta-seconds value (missing, empty, not 1*DIGIT) counts
//     as 0, so the response is stale at once (RFC 9111 §4.2.1: "caches are
//     encouraged to consider responses that have invalid freshness
//     information ... to be stale"); values of 2^31 and more are 2^31
//     (RFC 9111 §1.2.2);
//   - a delta directive given twice with different values counts as 0:
//     RFC 9111 §4.2.1 lets a cache "either use the first occurrence or
//     consider the response stale", and stale is the reading that never
//     makes a response fresher than its origin meant. The same value twice
//     is that value;
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

func noDirectives() cacheControl {
	return cacheControl{maxAge: -1, sMaxAge: -1, staleWhileRevalidate: -1, staleIfError: -1}
}

func parseCacheControl(fields []string) cacheControl {
	cc := noDirectives()
	for _, f := range fields {
		for len(f) > 0 {
			var e directive
			e, f = nextDirective(f)
			if e.name != "" {
				cc.set(e)
			}
		}
	}
	return cc
}

// directive is one list element of a Cache-Control field.
type directive struct {
	name   string
	val    string
	hasVal bool
	// bad: the element does not fit the grammar; its value, if any, is
	// not to be trusted.
	bad bool
}

// nextDirective splits the first list element off s (RFC 9110 §5.6.1:
// empty elements and OWS around commas are allowed).
func nextDirective(s string) (e directive, rest string) {
	s = strings.TrimLeft(s, " \t,")
	i := 0
	for i < len(s) && isTokenChar(s[i]) {
		i++
	}
	e.name, s = s[:i], s[i:]
	if e.name == "" {
		e.bad = true
	} else if len(s) > 0 && s[0] == '=' {
		e.hasVal = true
		s = s[1:]
		if len(s) > 0 && s[0] == '"' {
			var ok bool
			e.val, s, ok = quotedString(s)
			e.bad = !ok
		} else {
			j := 0
			for j < len(s) && isTokenChar(s[j]) {
				j++
			}
			e.val, s = s[:j], s[j:]
			e.bad = j == 0
		}
	}
	s = strings.TrimLeft(s, " \t")
	if len(s) == 0 {
		return e, ""
	}
	if s[0] == ',' {
		return e, s[1:]
	}
	// Junk after the element: skip to the next comma that is not inside
	// a quoted-string.
	e.bad = true
	return e, skipElement(s)
}

// skipElement returns what follows the next comma of s outside a
// quoted-string ("" if there is none).
func skipElement(s string) string {
	for len(s) > 0 {
		switch s[0] {
		case ',':
			return s[1:]
		case '"':
			_, s, _ = quotedString(s)
		default:
			s = s[1:]
		}
	}
	return ""
}

// quotedString reads a quoted-string at the start of s (which begins with
// '"', RFC 9110 §5.6.4); ok is false for an unterminated one, which runs to
// the end.
func quotedString(s string) (val, rest string, ok bool) {
	var b []byte
	plain := true
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '"':
			if plain {
				return s[1:i], s[i+1:], true
			}
			return string(b), s[i+1:], true
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
		return s[1:], "", false
	}
	return string(b), "", false
}

func (cc *cacheControl) set(e directive) {
	switch strings.ToLower(e.name) {
	case "max-age":
		cc.maxAge = mergeDelta(cc.maxAge, e)
	case "s-maxage":
		cc.sMaxAge = mergeDelta(cc.sMaxAge, e)
	case "stale-while-revalidate":
		cc.staleWhileRevalidate = mergeDelta(cc.staleWhileRevalidate, e)
	case "stale-if-error":
		cc.staleIfError = mergeDelta(cc.staleIfError, e)
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

// mergeDelta combines a delta directive's earlier value (-1: none) with
// another occurrence: invalid is 0, a different second value is 0.
func mergeDelta(old int64, e directive) int64 {
	n := int64(0)
	if e.hasVal && !e.bad {
		n = parseDelta(e.val)
	}
	if old >= 0 && old != n {
		return 0
	}
	return n
}

// parseDelta parses delta-seconds (1*DIGIT, RFC 9111 §1.2.2); invalid
// input is 0, large input maxDelta.
func parseDelta(s string) int64 {
	n, ok := parseDeltaOK(s)
	if !ok {
		return 0
	}
	return n
}

// parseDeltaOK parses delta-seconds, reporting whether s was valid.
func parseDeltaOK(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if n < maxDelta {
			n = min(n*10+int64(c-'0'), maxDelta)
		}
	}
	return n, true
}
