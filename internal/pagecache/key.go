package pagecache

import (
	"slices"
	"strings"
)

// paramBypass: a query parameter with one of these names bypasses the cache.
var paramBypass = [...]struct{ name, reason string }{
	{"preview", BypassPreview},
	{"preview_id", BypassPreview},
	{"preview_nonce", BypassPreview},
	{"s", BypassSearch},
	{"add-to-cart", BypassCart},
	{"wc-ajax", BypassWooAjax},
}

// appendURLKey appends the URL key of host, escaped path and raw query to
// dst, or returns the bypass reason of a query parameter.
func (c *Cache) appendURLKey(dst []byte, host, escPath, rawQuery string) ([]byte, string) {
	dst = appendHost(dst, host)
	if escPath == "" {
		escPath = "/"
	}
	dst = append(dst, escPath...)
	if rawQuery == "" {
		return dst, ""
	}
	// Collect the kept parameters (most pages have a handful: no heap).
	var arr [16]string
	kept := arr[:0]
	for p := range strings.SplitSeq(rawQuery, "&") {
		if p == "" {
			continue
		}
		name, _, _ := strings.Cut(p, "=")
		for _, b := range paramBypass {
			if name == b.name {
				return dst, b.reason
			}
		}
		if c.ignoredParam(name) {
			continue
		}
		kept = append(kept, p)
	}
	if len(kept) == 0 {
		return dst, ""
	}
	// Sorting the whole "name=value" strings is canonical for the multiset
	// of parameters, which is all a key needs.
	if len(kept) > 1 {
		slices.Sort(kept)
	}
	dst = append(dst, '?')
	for i, p := range kept {
		if i > 0 {
			dst = append(dst, '&')
		}
		dst = append(dst, p...)
	}
	return dst, ""
}

func (c *Cache) ignoredParam(name string) bool {
	for _, p := range c.ignoreExact {
		if name == p {
			return true
		}
	}
	for _, p := range c.ignorePrefix {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// appendHost appends host lowercased, without a default port (80 or 443,
// whatever the scheme: the scheme is a variant, and purges name hosts
// without one) and without a trailing dot.
func appendHost(dst []byte, host string) []byte {
	if h, ok := strings.CutSuffix(host, ":80"); ok {
		host = h
	} else if h, ok := strings.CutSuffix(host, ":443"); ok {
		host = h
	}
	host = strings.TrimSuffix(host, ".")
	for i := 0; i < len(host); i++ {
		b := host[i]
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		dst = append(dst, b)
	}
	return dst
}
