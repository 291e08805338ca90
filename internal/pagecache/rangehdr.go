package pagecache

import "strings"

// rangeKind is what a Range header asks of a stored body.
type rangeKind uint8

const (
	// rangeNone: no Range, another unit, or bad syntax; serve the whole body
	// (RFC 9110 §14.2 lets a server ignore a Range it does not understand).
	rangeNone rangeKind = iota
	// rangeSingle: one satisfiable range; serve 206.
	rangeSingle
	// rangeUnsatisfiable: valid syntax, nothing satisfiable; serve 416.
	rangeUnsatisfiable
	// rangeMulti: several ranges; serve 200 with the whole body (allowed,
	// and simpler than multipart/byteranges).
	rangeMulti
)

// maxRangeSpecs bounds the work spent on one header.
const maxRangeSpecs = 64

// parseRange interprets a Range header value for a body of size bytes. For
// rangeSingle, [start, end] is inclusive with 0 <= start <= end < size.
// Supported specs: "a-b", "a-" and "-n" in a "bytes=" list.
func parseRange(h string, size int64) (start, end int64, kind rangeKind) {
	h = strings.TrimSpace(h)
	if len(h) < 6 || !strings.EqualFold(h[:6], "bytes=") {
		return 0, 0, rangeNone
	}
	specs, satisfiable := 0, 0
	for spec := range strings.SplitSeq(h[6:], ",") {
		spec = strings.Trim(spec, " \t")
		if spec == "" {
			continue // empty list elements are allowed
		}
		if specs++; specs > maxRangeSpecs {
			return 0, 0, rangeNone
		}
		first, last, ok := strings.Cut(spec, "-")
		if !ok {
			return 0, 0, rangeNone
		}
		var s, e int64
		switch {
		case first == "":
			n, ok := parseDigits(last)
			if !ok {
				return 0, 0, rangeNone
			}
			if n == 0 || size == 0 {
				continue // unsatisfiable
			}
			s, e = max(0, size-n), size-1
		default:
			a, ok := parseDigits(first)
			if !ok {
				return 0, 0, rangeNone
			}
			e = size - 1
			if last != "" {
				b, ok := parseDigits(last)
				if !ok || b < a {
					return 0, 0, rangeNone
				}
				e = min(b, size-1)
			}
			if a >= size {
				continue // unsatisfiable
			}
			s = a
		}
		satisfiable++
		start, end = s, e
	}
	switch {
	case specs == 0:
		return 0, 0, rangeNone
	case satisfiable == 0:
		return 0, 0, rangeUnsatisfiable
	case specs > 1:
		return 0, 0, rangeMulti
	}
	return start, end, rangeSingle
}

// parseDigits parses 1 to 18 ASCII digits.
func parseDigits(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n, true
}
