package pagecache

import (
	"net/http"
	"net/textproto"
	"slices"
	"strings"
)

// Content codings the Accept-Encoding class tells apart.
const (
	aeGzip uint8 = 1 << iota
	aeBr
	aeZstd
	aeDeflate
)

// acceptEncoding returns the set of codings, among gzip, br, zstd and
// deflate, that the Accept-Encoding values accept with q > 0 ("*" accepts
// those not named). It does not allocate.
func acceptEncoding(values []string) uint8 {
	var yes, no uint8
	star := false
	for _, v := range values {
		for len(v) > 0 {
			var el string
			if i := strings.IndexByte(v, ','); i >= 0 {
				el, v = v[:i], v[i+1:]
			} else {
				el, v = v, ""
			}
			coding, params, _ := strings.Cut(el, ";")
			coding = strings.Trim(coding, " \t")
			zero := qZero(params)
			var bit uint8
			if coding == "" {
				continue
			}
			switch coding[0] | 0x20 { // one comparison per element
			case 'g':
				if strings.EqualFold(coding, "gzip") {
					bit = aeGzip
				}
			case 'x':
				if strings.EqualFold(coding, "x-gzip") {
					bit = aeGzip
				}
			case 'b':
				if strings.EqualFold(coding, "br") {
					bit = aeBr
				}
			case 'z':
				if strings.EqualFold(coding, "zstd") {
					bit = aeZstd
				}
			case 'd':
				if strings.EqualFold(coding, "deflate") {
					bit = aeDeflate
				}
			case '*' | 0x20:
				if coding == "*" {
					star = !zero
				}
			}
			if bit == 0 {
				continue
			}
			if zero {
				no |= bit
			} else {
				yes |= bit
			}
		}
	}
	if star {
		yes |= (aeGzip | aeBr | aeZstd | aeDeflate) &^ no
	}
	return yes &^ no
}

// qZero reports whether the parameters of an Accept-Encoding element make
// it unacceptable: q=0, or a q that is not a valid qvalue, exactly as the
// variant choice reads it (elementQ), so the class this keys on and the
// coding served never disagree.
func qZero(params string) bool { return elementQ(params) == 0 }

// codingBit maps a stored Content-Encoding to its class bit (0 if unknown).
func codingBit(ce string) uint8 {
	switch strings.ToLower(strings.TrimSpace(ce)) {
	case "gzip", "x-gzip":
		return aeGzip
	case "br":
		return aeBr
	case "zstd":
		return aeZstd
	case "deflate":
		return aeDeflate
	}
	return 0
}

// varySpec says which request headers select a variant of a URL. Every
// variant of a URL is stored under its URL's current spec; a response with
// another spec replaces them all.
type varySpec struct {
	// names are canonical header names from the response's Vary, sorted,
	// without Accept-Encoding (see ae).
	names []string
	// ae: the variant includes the request's Accept-Encoding class. True
	// only for bodies the origin encoded: the cache negotiates the bodies it
	// compressed itself, so one entry serves every client.
	ae bool
}

var noVary = &varySpec{}

func (s *varySpec) equal(o *varySpec) bool {
	return s.ae == o.ae && slices.Equal(s.names, o.names)
}

// parseVary returns the canonical header names listed in Vary values and
// whether one of them is "*".
func parseVary(values []string) (names []string, star bool) {
	for _, v := range values {
		for f := range strings.SplitSeq(v, ",") {
			f = strings.Trim(f, " \t")
			switch {
			case f == "":
			case f == "*":
				star = true
			default:
				f = textproto.CanonicalMIMEHeaderKey(f)
				if !slices.Contains(names, f) {
					names = append(names, f)
				}
			}
		}
	}
	slices.Sort(names)
	return names, star
}

// appendVariant appends the variant key of a request under spec: the
// scheme, then each Vary header's values, then the Accept-Encoding class.
func appendVariant(dst []byte, h http.Header, tls bool, spec *varySpec) []byte {
	if tls {
		dst = append(dst, 's')
	} else {
		dst = append(dst, 'p')
	}
	for _, name := range spec.names {
		dst = append(dst, 0)
		for i, v := range h[name] {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, v...)
		}
	}
	if spec.ae {
		dst = append(dst, 0, 'a'+acceptEncoding(h["Accept-Encoding"]))
	}
	return dst
}
