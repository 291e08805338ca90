package pagecache

import "strings"

// coding is a content coding the cache stores a body in.
type coding uint8

const (
	codingIdentity coding = iota
	codingGzip
	codingBr
	codingZstd
	numCodings
)

// Content-Encoding values of the codings.
var codingNames = [numCodings]string{"identity", "gzip", "br", "zstd"}

// qMax is q=1 in thousandths.
const qMax = 1000

// acceptQ is what an Accept-Encoding field says of each coding the cache
// stores (RFC 9110 §12.5.3), in thousandths: named[c] is the q-value of
// the element naming c (-1: none does), star that of "*" (-1: absent).
type acceptQ struct {
	named [numCodings]int16
	star  int16
	// present: the request has an Accept-Encoding field (possibly empty).
	present bool
}

// parseAcceptEncoding reads the Accept-Encoding field lines of a request.
// An element with an invalid qvalue counts as q=0, so a coding the client
// may not understand is never chosen; an element naming a coding twice
// keeps the last. x-gzip is gzip (RFC 9110 §8.4.1.3). It does not
// allocate.
func parseAcceptEncoding(values []string) acceptQ {
	a := acceptQ{star: -1, present: len(values) > 0}
	for i := range a.named {
		a.named[i] = -1
	}
	for _, v := range values {
		for len(v) > 0 {
			var el string
			if i := strings.IndexByte(v, ','); i >= 0 {
				el, v = v[:i], v[i+1:]
			} else {
				el, v = v, ""
			}
			name, params, _ := strings.Cut(el, ";")
			name = strings.Trim(name, " \t")
			if name == "" {
				continue
			}
			q := elementQ(params)
			switch {
			case name == "*":
				a.star = q
			case asciiEqualFold(name, "gzip"), asciiEqualFold(name, "x-gzip"):
				a.named[codingGzip] = q
			case asciiEqualFold(name, "br"):
				a.named[codingBr] = q
			case asciiEqualFold(name, "zstd"):
				a.named[codingZstd] = q
			case asciiEqualFold(name, "identity"):
				a.named[codingIdentity] = q
			}
		}
	}
	return a
}

// asciiEqualFold compares a token with a lowercase name, ASCII letters
// only: unlike strings.EqualFold, "zſtd" is not zstd.
func asciiEqualFold(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// elementQ returns the q parameter of an element's parameters in
// thousandths: qMax without one, 0 when it is not a valid qvalue
// ("0" ["." 0*3DIGIT] / "1" ["." 0*3("0")]).
func elementQ(params string) int16 {
	for len(params) > 0 {
		var p string
		if i := strings.IndexByte(params, ';'); i >= 0 {
			p, params = params[:i], params[i+1:]
		} else {
			p, params = params, ""
		}
		p = strings.Trim(p, " \t")
		if len(p) < 2 || (p[0] != 'q' && p[0] != 'Q') || p[1] != '=' {
			continue
		}
		return parseQValue(p[2:])
	}
	return qMax
}

// parseQValue parses a qvalue into thousandths; invalid is 0.
func parseQValue(s string) int16 {
	if s == "" || (s[0] != '0' && s[0] != '1') {
		return 0
	}
	whole := int16(s[0]-'0') * qMax
	s = s[1:]
	if s == "" {
		return whole
	}
	if s[0] != '.' || len(s) > 4 {
		return 0
	}
	var frac int16
	scale := int16(100)
	for i := 1; i < len(s); i++ {
		d := s[i]
		if d < '0' || d > '9' {
			return 0
		}
		frac += int16(d-'0') * scale
		scale /= 10
	}
	if whole == qMax && frac != 0 {
		return 0
	}
	return whole + frac
}

// qImplicitIdentity is identity's q-value when no element names it nor
// "*": acceptable (RFC 9110 §12.5.3: unless excluded by "identity;q=0" or
// "*;q=0") but the least preferred, so "gzip;q=0.5" gets gzip. The RFC
// gives it no q-value; ranking it first would send the most bytes to the
// clients that asked for a coding.
const qImplicitIdentity = 1

// q is the effective q-value of c: the element naming it, else "*", else
// 0 for a content coding and qImplicitIdentity for identity.
func (a acceptQ) q(c coding) int16 {
	switch {
	case a.named[c] >= 0:
		return a.named[c]
	case a.star >= 0:
		return a.star
	case c == codingIdentity:
		return qImplicitIdentity
	}
	return 0
}

// chooseRep picks the representation of o to send for an Accept-Encoding:
// the highest q-value, and among equals the fewest bytes. A request
// without Accept-Encoding gets identity (RFC 9110 allows any coding then,
// but clients that send none, like curl or health checks, expect plain
// bodies); so does one that accepts nothing the cache holds (§12.5.3:
// identity rather than 415).
func (o *object) chooseRep(values []string) *rep {
	best := &o.id
	if len(o.enc) == 0 || len(values) == 0 {
		return best
	}
	a := parseAcceptEncoding(values)
	bestQ := a.q(codingIdentity)
	for i := range o.enc {
		r := &o.enc[i]
		q := a.q(r.coding)
		if q > bestQ || (q == bestQ && q > 0 && len(r.body) < len(best.body)) {
			best, bestQ = r, q
		}
	}
	return best
}
