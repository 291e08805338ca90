package pagecache

import (
	"fmt"
	"net/textproto"
	"strings"
	"time"

	"github.com/scalepress/scalepress/internal/api"
)

// Config configures a Cache.
type Config struct {
	// MaxBytes bounds the memory held by stored objects: identity and gzip
	// bodies, pre-rendered headers, keys and bookkeeping (approximated).
	MaxBytes int64
	// MaxObjectBytes is the largest body that is stored; a larger response
	// passes through to the client without being buffered whole.
	MaxObjectBytes int64
	// DefaultTTL is the freshness given to anonymous WordPress pages (the
	// DefaultTTLTypes) that carry no explicit freshness. WordPress embeds
	// nonces that live 12 to 24 hours (one "tick" is 12 h), so it must stay
	// far below 12 h; minutes are right.
	DefaultTTL time.Duration
	// DefaultTTLTypes are the media types that get DefaultTTL: what
	// WordPress renders for anonymous visitors (pages, feeds, sitemaps).
	// application/json is left out on purpose: REST responses are cached
	// only when WordPress or a plugin sends explicit freshness, or when it is
	// added here.
	DefaultTTLTypes []string
	// StaticTTL is the freshness of static assets (a static extension under
	// /wp-content/ or /wp-includes/) that carry no explicit freshness.
	StaticTTL time.Duration
	// StaleWhileRevalidate, StaleIfError and SoftPurgeGrace are the grace
	// policy: they apply to WordPress pages (responses with TagHeader) and
	// static assets only, never to other responses, and never where
	// no-cache, must-revalidate, proxy-revalidate or s-maxage forbid stale
	// use (RFC 9111 §4.2.4; ADR 0020).
	//
	// StaleWhileRevalidate is how long past freshness an entry is still
	// served (as a HIT) while one background refresh runs, unless the
	// response's stale-while-revalidate directive says otherwise.
	StaleWhileRevalidate time.Duration
	// StaleIfError is how long past freshness an entry may stand in (as
	// STALE) for an origin that fails, unless the response's stale-if-error
	// directive says otherwise.
	StaleIfError time.Duration
	// SoftPurgeGrace is how long a soft-purged entry is still served (as a
	// HIT) while its single background refresh runs. Past it, or when it is
	// 0, the next request refetches and the others wait for that one
	// (coalesced) fetch: nobody sees the purged copy again unless the origin
	// fails, when stale-if-error serves it (STALE).
	SoftPurgeGrace time.Duration
	// HitForPass is how long a key whose response was not cacheable stops
	// coalescing: requests go to the origin side by side instead of queueing
	// behind each other. 0 disables it.
	HitForPass time.Duration
	// FetchTimeout bounds a background refresh, which outlives the request
	// that started it.
	FetchTimeout time.Duration
	// TagHeader is the response header that carries the cache tags of a
	// page ("post-12 term-3 home"). It is never sent to clients from the
	// cache. Empty disables tags.
	TagHeader string
	// IgnoreParams are query parameters dropped from the cache key
	// (marketing parameters that do not change the page). An entry ending
	// in "*" is a prefix.
	IgnoreParams []string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		MaxBytes:       256 << 20,
		MaxObjectBytes: 8 << 20,
		DefaultTTL:     5 * time.Minute,
		DefaultTTLTypes: []string{
			"text/html", "application/xhtml+xml",
			"application/rss+xml", "application/atom+xml", "application/rdf+xml",
			"application/xml", "text/xml",
		},
		StaticTTL:            time.Minute,
		StaleWhileRevalidate: 30 * time.Second,
		StaleIfError:         24 * time.Hour,
		SoftPurgeGrace:       time.Minute,
		HitForPass:           30 * time.Second,
		FetchTimeout:         2 * time.Minute,
		TagHeader:            api.HeaderTags,
		IgnoreParams:         []string{"utm_*", "fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid"},
		Now:                  time.Now,
	}
}

// nonceTick is WordPress's nonce lifetime unit; cached pages embed nonces.
const nonceTick = 12 * time.Hour

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.MaxBytes <= 0:
		return fmt.Errorf("pagecache: config.max_bytes: must be positive, got %d", c.MaxBytes)
	case c.MaxObjectBytes <= 0:
		return fmt.Errorf("pagecache: config.max_object_bytes: must be positive, got %d", c.MaxObjectBytes)
	case c.MaxObjectBytes > c.MaxBytes/4:
		return fmt.Errorf("pagecache: config.max_object_bytes: must be at most a quarter of max_bytes (%d), got %d", c.MaxBytes/4, c.MaxObjectBytes)
	case c.DefaultTTL <= 0:
		return fmt.Errorf("pagecache: config.default_ttl: must be positive, got %s", c.DefaultTTL)
	case c.DefaultTTL >= nonceTick:
		return fmt.Errorf("pagecache: config.default_ttl: must be far below WordPress's 12h nonce tick (minutes), got %s", c.DefaultTTL)
	case c.StaticTTL <= 0:
		return fmt.Errorf("pagecache: config.static_ttl: must be positive, got %s", c.StaticTTL)
	case c.StaleWhileRevalidate < 0:
		return fmt.Errorf("pagecache: config.stale_while_revalidate: must not be negative, got %s", c.StaleWhileRevalidate)
	case c.StaleIfError < 0:
		return fmt.Errorf("pagecache: config.stale_if_error: must not be negative, got %s", c.StaleIfError)
	case c.SoftPurgeGrace < 0:
		return fmt.Errorf("pagecache: config.soft_purge_grace: must not be negative (0: the next request waits for the refetch), got %s", c.SoftPurgeGrace)
	case c.HitForPass < 0:
		return fmt.Errorf("pagecache: config.hit_for_pass: must not be negative, got %s", c.HitForPass)
	case c.FetchTimeout <= 0:
		return fmt.Errorf("pagecache: config.fetch_timeout: must be positive, got %s", c.FetchTimeout)
	case c.TagHeader != "" && !validHeaderName(c.TagHeader):
		return fmt.Errorf("pagecache: config.tag_header: %q is not a valid header name", c.TagHeader)
	}
	for i, p := range c.IgnoreParams {
		if p == "" || p == "*" || strings.IndexByte(strings.TrimSuffix(p, "*"), '*') >= 0 {
			return fmt.Errorf("pagecache: config.ignore_params[%d]: %q must be a name, or a prefix ending in a single \"*\"", i, p)
		}
	}
	for i, t := range c.DefaultTTLTypes {
		if !strings.Contains(t, "/") || strings.ContainsAny(t, " ;,") {
			return fmt.Errorf("pagecache: config.default_ttl_types[%d]: %q is not a media type like \"text/html\"", i, t)
		}
	}
	return nil
}

func validHeaderName(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isTokenChar(s[i]) {
			return false
		}
	}
	return s != "" && textproto.CanonicalMIMEHeaderKey(s) != ""
}

// isTokenChar reports whether b may appear in an RFC 9110 token.
func isTokenChar(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0
}
