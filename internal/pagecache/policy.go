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

// arrival is what planFor needs to know about a response besides its
// status and header.
type arrival struct {
	// static: a static asset path (StaticTTL, and the grace policy).
	static bool
	// tagged: the response carries cache tags, so it is a WordPress page
	// rendered by the scalepress mu-plugin (the grace policy).
	tagged bool
	// requested and received are request_time and response_time of RFC 9111
	// §4.2.3: when the fetch was sent and when its answer arrived.
	requested, received time.Time
}

// planFor decides whether a response may be stored and for how long. h is
// canonical. The rules, with the RFC 9111 / RFC 9213 section each follows:
//   - never stored: a status outside the heuristically cacheable set
//     (RFC 9110 §15.1), Set-Cookie, no-store (§5.2.2.5), private
//     (§5.2.2.7, a shared cache), Vary: * (§4.1), or a Content-Encoding the
//     cache cannot classify (several codings, or unknown);
//   - the directives come from CDN-Cache-Control when it is present and
//     valid, and Cache-Control and Expires are then ignored (RFC 9213
//     §2.1); else from Cache-Control (see cacheControl for the parsing);
//   - freshness lifetime (§4.2.1): s-maxage (a shared cache: it wins over
//     max-age, §5.2.2.10), else max-age, else Expires - Date; without them,
//     StaticTTL for static assets and DefaultTTL for DefaultTTLTypes;
//     anything else is not stored (no guessing for JSON, images outside
//     wp-content, ...). An Expires that is not exactly one valid HTTP-date
//     means already expired (§5.3, §4.2.1);
//   - age (§4.2.3): corrected_initial_age = max(apparent_age,
//     age_value + response_delay), with apparent_age = max(0,
//     response_time - date_value). An invalid Age (several field lines, a
//     list such as "old, 0", anything but delta-seconds) makes the response
//     stale. §5.1 says a cache SHOULD use the first member of a list and
//     ignore an invalid value; we depart from that SHOULD the way §4.2.1
//     encourages for invalid freshness information: an Age we cannot read
//     most likely comes from a broken cache upstream, and a response that
//     may be old is refetched rather than served as fresh;
//   - a response already stale on arrival (lifetime <= age) is not stored,
//     as Varnish treats ttl <= 0;
//   - no-cache (§5.2.2.4): stored for its validators, served only after
//     the origin revalidated it;
//   - stale use (§4.2.4: only where a directive or configuration allows
//     it): stale-while-revalidate and stale-if-error directives (RFC 5861)
//     give windows. The configured Config.StaleWhileRevalidate,
//     Config.StaleIfError and SoftPurgeGrace apply only under the grace
//     policy: WordPress pages (tagged) and static assets, whose purges the
//     cache receives; other responses get no stale window they did not ask
//     for. no-cache, must-revalidate (§5.2.2.2), proxy-revalidate
//     (§5.2.2.8) and s-maxage (§5.2.2.10: it "incorporates the semantics of
//     the proxy-revalidate response directive") forbid every stale use,
//     directives and grace alike.
func (c *Cache) planFor(status int, h http.Header, a arrival) (plan, string) {
	if !cacheableStatus(status) {
		return plan{}, passStatus
	}
	if len(h["Set-Cookie"]) > 0 {
		return plan{}, passSetCookie
	}
	cc, targeted := targetedCacheControl(h[HeaderCDNCacheControl])
	if !targeted {
		cc = parseCacheControl(h["Cache-Control"])
	}
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
	forbid := cc.noCache || cc.mustRevalidate || cc.proxyRevalidate || cc.sMaxAge >= 0
	grace := a.tagged || a.static
	p := plan{
		noCache:       cc.noCache,
		mayServeStale: grace && !forbid,
		noTransform:   cc.noTransform,
	}
	ageOK := true
	p.initialAge, ageOK = correctedInitialAge(h, a)
	switch {
	case cc.sMaxAge >= 0:
		p.lifetime = time.Duration(cc.sMaxAge) * time.Second
	case cc.maxAge >= 0:
		p.lifetime = time.Duration(cc.maxAge) * time.Second
	case !targeted && len(h["Expires"]) > 0:
		p.lifetime = expiresLifetime(h, a.received)
	case a.static:
		p.lifetime = c.cfg.StaticTTL
	case c.defaultTTLType(first(h["Content-Type"])):
		p.lifetime = c.cfg.DefaultTTL
	default:
		return plan{}, passNoFreshness
	}
	if !ageOK {
		p.lifetime = 0
	}
	if grace {
		p.swr, p.sie = c.cfg.StaleWhileRevalidate, c.cfg.StaleIfError
	}
	if cc.staleWhileRevalidate >= 0 {
		p.swr = time.Duration(cc.staleWhileRevalidate) * time.Second
	}
	if cc.staleIfError >= 0 {
		p.sie = time.Duration(cc.staleIfError) * time.Second
	}
	if forbid {
		p.swr, p.sie = 0, 0
	}
	if p.lifetime <= p.initialAge {
		return plan{}, passStaleArrival
	}
	return p, ""
}

// correctedInitialAge is corrected_initial_age of RFC 9111 §4.2.3; ok is
// false for an invalid Age field.
func correctedInitialAge(h http.Header, a arrival) (time.Duration, bool) {
	ageSecs, ok := parseAge(h["Age"])
	if !ok {
		return 0, false
	}
	received := a.received
	requested := a.requested
	if requested.IsZero() || requested.After(received) {
		requested = received
	}
	apparent := time.Duration(0)
	if date, ok := headerDate(h["Date"], received); ok {
		apparent = max(0, received.Sub(date))
	}
	corrected := time.Duration(ageSecs)*time.Second + received.Sub(requested)
	return max(apparent, corrected).Truncate(time.Second), true
}

// expiresLifetime is Expires - Date (Date the time received when it is
// absent or invalid); an Expires that is not one valid HTTP-date means
// already expired (RFC 9111 §5.3; several values: §4.2.1).
func expiresLifetime(h http.Header, received time.Time) time.Duration {
	exp, ok := headerDate(h["Expires"], received)
	if !ok {
		return 0
	}
	date, ok := headerDate(h["Date"], received)
	if !ok {
		date = received
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
