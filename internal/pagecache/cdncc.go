package pagecache

import (
	"strings"
)

// HeaderCDNCacheControl is the targeted field of RFC 9213 §3 that this cache
// obeys. It is the only field on the cache's target list (RFC 9213 §2.1).
const HeaderCDNCacheControl = "Cdn-Cache-Control" // canonical form of CDN-Cache-Control

// targetedCacheControl parses the CDN-Cache-Control field lines (RFC 9213
// §2.1): a Structured Field Dictionary (RFC 8941 §3.2). ok is false when the
// field is absent, empty or does not parse; then the cache falls back to
// Cache-Control and Expires ("If a targeted field in a given response is
// empty, or a parsing error is encountered, that field MUST be ignored by
// the cache").
//
// Directives have the semantics they have in Cache-Control (RFC 9213 §2.1).
// A delta directive whose value is not a non-negative Integer is invalid
// and counts as 0 (stale), as in Cache-Control. A flag directive counts
// unless its value is the Boolean false (no-store=?0); a qualified form
// (private="Set-Cookie") counts as the unqualified one.
func targetedCacheControl(fields []string) (cacheControl, bool) {
	if len(fields) == 0 {
		return cacheControl{}, false
	}
	dict, ok := parseSFDictionary(strings.Join(fields, ","))
	if !ok || len(dict) == 0 {
		return cacheControl{}, false
	}
	cc := noDirectives()
	for _, m := range dict {
		delta := func() int64 {
			if m.kind != sfInteger || m.num < 0 {
				return 0
			}
			return min(m.num, maxDelta)
		}
		on := !(m.kind == sfBoolean && m.num == 0)
		switch m.key {
		case "max-age":
			cc.maxAge = delta()
		case "s-maxage":
			cc.sMaxAge = delta()
		case "stale-while-revalidate":
			cc.staleWhileRevalidate = delta()
		case "stale-if-error":
			cc.staleIfError = delta()
		case "no-store":
			cc.noStore = on
		case "no-cache":
			cc.noCache = on
		case "private":
			cc.private = on
		case "public":
			cc.public = on
		case "no-transform":
			cc.noTransform = on
		case "must-revalidate":
			cc.mustRevalidate = on
		case "proxy-revalidate":
			cc.proxyRevalidate = on
		case "immutable":
			cc.immutable = on
		}
	}
	return cc, true
}

type sfKind uint8

const (
	sfBoolean sfKind = iota
	sfInteger
	sfOther // decimal, string, token, byte sequence, inner list
)

// sfMember is a dictionary member's key and the part of its value the
// cache uses; parameters are parsed and dropped.
type sfMember struct {
	key  string
	kind sfKind
	num  int64 // the Integer, or 1/0 for a Boolean
}

// parseSFDictionary parses a Dictionary per RFC 8941 §4.2.2. A key given
// twice keeps its last value, as the algorithm says.
func parseSFDictionary(s string) ([]sfMember, bool) {
	p := sfParser{s: strings.Trim(s, " ")}
	var out []sfMember
	for len(p.s) > 0 {
		key, ok := p.key()
		if !ok {
			return nil, false
		}
		m := sfMember{key: key, kind: sfBoolean, num: 1}
		if p.peek() == '=' {
			p.s = p.s[1:]
			if m.kind, m.num, ok = p.itemOrInnerList(); !ok {
				return nil, false
			}
		} else if !p.params() {
			return nil, false
		}
		replaced := false
		for i := range out {
			if out[i].key == key {
				out[i], replaced = m, true
			}
		}
		if !replaced {
			out = append(out, m)
		}
		p.s = strings.TrimLeft(p.s, " \t")
		if len(p.s) == 0 {
			break
		}
		if p.s[0] != ',' {
			return nil, false
		}
		p.s = strings.TrimLeft(p.s[1:], " \t")
		if len(p.s) == 0 {
			return nil, false // trailing comma
		}
	}
	return out, true
}

type sfParser struct{ s string }

func (p *sfParser) peek() byte {
	if len(p.s) == 0 {
		return 0
	}
	return p.s[0]
}

func isLCAlpha(c byte) bool { return 'a' <= c && c <= 'z' }
func isAlpha(c byte) bool   { return isLCAlpha(c) || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool   { return '0' <= c && c <= '9' }

// key: ( lcalpha / "*" ) *( lcalpha / DIGIT / "_" / "-" / "." / "*" )
func (p *sfParser) key() (string, bool) {
	if c := p.peek(); !isLCAlpha(c) && c != '*' {
		return "", false
	}
	i := 1
	for i < len(p.s) {
		c := p.s[i]
		if !isLCAlpha(c) && !isDigit(c) && c != '_' && c != '-' && c != '.' && c != '*' {
			break
		}
		i++
	}
	k := p.s[:i]
	p.s = p.s[i:]
	return k, true
}

func (p *sfParser) itemOrInnerList() (sfKind, int64, bool) {
	if p.peek() == '(' {
		p.s = p.s[1:]
		for {
			p.s = strings.TrimLeft(p.s, " ")
			if p.peek() == ')' {
				p.s = p.s[1:]
				return sfOther, 0, p.params()
			}
			if _, _, ok := p.bareItem(); !ok || !p.params() {
				return 0, 0, false
			}
			if c := p.peek(); c != ' ' && c != ')' {
				return 0, 0, false
			}
		}
	}
	kind, n, ok := p.bareItem()
	return kind, n, ok && p.params()
}

// params parses and drops *( ";" *SP key [ "=" bare-item ] ).
func (p *sfParser) params() bool {
	for p.peek() == ';' {
		p.s = strings.TrimLeft(p.s[1:], " ")
		if _, ok := p.key(); !ok {
			return false
		}
		if p.peek() == '=' {
			p.s = p.s[1:]
			if _, _, ok := p.bareItem(); !ok {
				return false
			}
		}
	}
	return true
}

func (p *sfParser) bareItem() (sfKind, int64, bool) {
	c := p.peek()
	switch {
	case c == '-' || isDigit(c):
		return p.number()
	case c == '"':
		return sfOther, 0, p.str()
	case c == '*' || isAlpha(c):
		p.token()
		return sfOther, 0, true
	case c == ':':
		return sfOther, 0, p.bytes()
	case c == '?':
		if len(p.s) >= 2 && (p.s[1] == '0' || p.s[1] == '1') {
			n := int64(p.s[1] - '0')
			p.s = p.s[2:]
			return sfBoolean, n, true
		}
	}
	return 0, 0, false
}

// number parses an Integer (at most 15 digits) or a Decimal (at most 12
// integer and 3 fraction digits).
func (p *sfParser) number() (sfKind, int64, bool) {
	neg := false
	if p.peek() == '-' {
		neg, p.s = true, p.s[1:]
	}
	i, dot := 0, -1
	for i < len(p.s) {
		c := p.s[i]
		if c == '.' && dot < 0 {
			if i > 12 {
				return 0, 0, false
			}
			dot = i
		} else if !isDigit(c) {
			break
		}
		i++
		if dot < 0 && i > 15 || dot >= 0 && i > 16 {
			return 0, 0, false
		}
	}
	num := p.s[:i]
	p.s = p.s[i:]
	if num == "" || !isDigit(num[0]) {
		return 0, 0, false
	}
	if dot >= 0 {
		frac := len(num) - dot - 1
		return sfOther, 0, frac >= 1 && frac <= 3
	}
	n, _ := digits(num)
	if neg {
		n = -n
	}
	return sfInteger, int64(n), true
}

func (p *sfParser) str() bool {
	for i := 1; i < len(p.s); i++ {
		switch c := p.s[i]; {
		case c == '\\':
			if i+1 >= len(p.s) || p.s[i+1] != '"' && p.s[i+1] != '\\' {
				return false
			}
			i++
		case c == '"':
			p.s = p.s[i+1:]
			return true
		case c < 0x20 || c > 0x7e:
			return false
		}
	}
	return false
}

func (p *sfParser) token() {
	i := 1
	for i < len(p.s) && (isTokenChar(p.s[i]) || p.s[i] == ':' || p.s[i] == '/') {
		i++
	}
	p.s = p.s[i:]
}

func (p *sfParser) bytes() bool {
	for i := 1; i < len(p.s); i++ {
		c := p.s[i]
		switch {
		case c == ':':
			p.s = p.s[i+1:]
			return true
		case isAlpha(c) || isDigit(c) || c == '+' || c == '/' || c == '=':
		default:
			return false
		}
	}
	return false
}
