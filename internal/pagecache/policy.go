package pagecache

import (
	"net/http"
	"strings"
	"time"
)

// Why a response is not stored (for tests and logs).
const (
	passStatus       = "status"
	passSetCookie    = "set-cookie"
	passNoStore      = "no-store"
	passPrivate      = "private"
	passVaryStar     = "vary *"
	passEncoding     = "content-encoding"
	passNoFreshness  = "no freshness"
	passStaleArrival = "stale on arrival"
	passTooLarge     = "too large"
)

// plan is how a cacheable response is stored.
type plan struct {
	lifetime   time.Duration // freshness lifetime
	initialAge time.Duration // the response's Age
	swr, sie   time.Duration // stale windows
	// noCache: served only after a successful revalidation.
	noCache bool
	// mayServeStale: false under no-cache, must-revalidate and
	// proxy-revalidate; then neither SWR nor soft-purge grace applies.
	mayServeStale bool
	noTransform   bool
}

// cacheableStatus: heuristically cacheable by default (RFC 9110 §15.1).
func cacheableStatus(s int) bool {
	switch s {
	case 200, 203, 204, 300, 301, 404, 405, 410, 414, 501:
		return true
	}
	return false
}

// planFor decides whether a response may be stored and for how long. h is
// canonical. The rules:
//   - never: a status outside the heuristically cacheable set, Set-Cookie,
//     no-store, private, Vary: *, or a Content-Encoding the cache cannot
//     classify (several codings, or unknown);
//   - freshness: s-maxage, else max-age, else Expires - Date; without them,
//     StaticTTL for static assets and DefaultTTL for DefaultTTLTypes;
//     anything else is not stored (no guessing for JSON, images outside
//     wp-content, ...);
//   - a response already stale on arrival (lifetime <= Age) is not stored,
//     as Varnish treats ttl <= 0, unless it says no-cache;
//   - no-cache: stored, but served only after the origin revalidated it;
//   - stale-while-revalidate / stale-if-error directives override the
//     configured windows; no-cache, must-revalidate and proxy-revalidate
//     disable stale-while-revalidate and soft-purge grace;
//     must-revalidate and proxy-revalidate also disable stale-if-error.
//     s-maxage is not taken to imply proxy-revalidate.
func (c *Cache) planFor(status int, h http.Header, static bool, now time.Time) (plan, string) {
	if !cacheableStatus(status) {
		return plan{}, passStatus
	}
	if len(h["Set-Cookie"]) > 0 {
		return plan{}, passSetCookie
	}
	cc := parseCacheControl(h["Cache-Control"])
	switch {
	case cc.noStore:
		return plan{}, passNoStore
	case cc.private:
		return plan{}, passPrivate
	}
	if _, star := parseVary(h["Vary"]); star {
		return plan{}, passVaryStar
	}
	if ce := contentEncoding(h); ce != "" && codingBit(ce) == 0 {
		return plan{}, passEncoding
	}
	p := plan{
		initialAge:    time.Duration(parseDelta(strings.TrimSpace(first(h["Age"])))) * time.Second,
		swr:           c.cfg.StaleWhileRevalidate,
		sie:           c.cfg.StaleIfError,
		noCache:       cc.noCache,
		mayServeStale: !cc.noCache && !cc.mustRevalidate && !cc.proxyRevalidate,
		noTransform:   cc.noTransform,
	}
	switch {
	case cc.sMaxAge >= 0:
		p.lifetime = time.Duration(cc.sMaxAge) * time.Second
	case cc.maxAge >= 0:
		p.lifetime = time.Duration(cc.maxAge) * time.Second
	case len(h["Expires"]) > 0:
		p.lifetime = expiresLifetime(h, now)
	case static:
		p.lifetime = c.cfg.StaticTTL
	case c.defaultTTLType(first(h["Content-Type"])):
		p.lifetime = c.cfg.DefaultTTL
	default:
		return plan{}, passNoFreshness
	}
	if cc.staleWhileRevalidate >= 0 {
		p.swr = time.Duration(cc.staleWhileRevalidate) * time.Second
	}
	if cc.staleIfError >= 0 {
		p.sie = time.Duration(cc.staleIfError) * time.Second
	}
	if !p.mayServeStale {
		p.swr = 0
	}
	if cc.mustRevalidate || cc.proxyRevalidate {
		p.sie = 0
	}
	if p.noCache {
		if max(p.lifetime, p.sie) <= 0 {
			return plan{}, passStaleArrival
		}
	} else if p.lifetime <= p.initialAge {
		return plan{}, passStaleArrival
	}
	return p, ""
}

// expiresLifetime is Expires - Date (or - now without Date); an invalid
// Expires means already expired (RFC 9111 §5.3).
func expiresLifetime(h http.Header, now time.Time) time.Duration {
	exp, err := http.ParseTime(first(h["Expires"]))
	if err != nil {
		return 0
	}
	date := now
	if d, err := http.ParseTime(first(h["Date"])); err == nil {
		date = d
	}
	return max(0, exp.Sub(date))
}

func (c *Cache) defaultTTLType(ct string) bool {
	mt := mediaType(ct)
	for _, t := range c.cfg.DefaultTTLTypes {
		if strings.EqualFold(mt, t) {
			return true
		}
	}
	return false
}

// mediaType is the type/subtype of a Content-Type value.
func mediaType(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.TrimSpace(ct)
}

// contentEncoding is the response's coding, "" for none or identity.
func contentEncoding(h http.Header) string {
	ce := strings.TrimSpace(strings.Join(h["Content-Encoding"], ","))
	if strings.EqualFold(ce, "identity") {
		return ""
	}
	return ce
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}
