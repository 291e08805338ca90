package pagecache

import (
	"hash/maphash"
	"net/http"
	"path"
	"strings"
)

// Decision is what Classify says about a request: either why it bypasses
// the cache, or the key it is cached under. Pass it to ServeHit and Fill.
type Decision struct {
	// Bypass is why the request must go to a node without the cache
	// ("" for a cacheable request). See the Bypass* constants.
	Bypass string
	// At, when set, is the time the request arrived (Unix nanoseconds, on
	// the cache's clock); ServeHit uses it instead of reading the clock. A
	// caller that reads the clock anyway (the edge, to time the request)
	// saves the cache hit a second read.
	At int64

	key    string // URL key: host, path, normalised query
	hash   uint64 // of key; picks the shard
	tls    bool   // scheme, part of every variant
	static bool   // a static asset path (StaticTTL, Accept-Ranges)
	ue     *urlEntry
}

// Key is the normalised URL key ("host/path?query"), for logs and tests.
func (d Decision) Key() string { return d.key }

// Bypass reasons. They are constants, so a bypass allocates nothing.
const (
	BypassMethod        = "method"
	BypassAuthorization = "authorization"
	BypassLoggedIn      = "cookie wordpress_logged_in_"
	BypassSecure        = "cookie wordpress_sec_"
	BypassPostPass      = "cookie wp-postpass_"
	BypassCommenter     = "cookie comment_author_"
	BypassWooCommerce   = "cookie woocommerce_"
	BypassWooSession    = "cookie wp_woocommerce_session_"
	BypassAdmin         = "path wp-admin"
	BypassLogin         = "path wp-login.php"
	BypassXMLRPC        = "path xmlrpc.php"
	BypassCron          = "path wp-cron.php"
	BypassPreview       = "query preview"
	BypassSearch        = "query s"
	BypassCart          = "query add-to-cart"
	BypassWooAjax       = "query wc-ajax"
)

// cookieRules: a cookie whose name starts with prefix bypasses the cache.
// Other cookies (analytics, wordpress_test_cookie, wp-settings-*) do not.
var cookieRules = [...]struct{ prefix, reason string }{
	{"wordpress_logged_in_", BypassLoggedIn},
	{"wordpress_sec_", BypassSecure},
	{"wp-postpass_", BypassPostPass},
	{"comment_author_", BypassCommenter},
	{"woocommerce_", BypassWooCommerce},
	{"wp_woocommerce_session_", BypassWooSession},
}

// Classify decides whether r may be served from or stored in the cache.
//
// Bypass rules, in order: a method other than GET or HEAD; an Authorization
// header; a cookie named wordpress_logged_in_*, wordpress_sec_*,
// wp-postpass_*, comment_author_*, woocommerce_* or
// wp_woocommerce_session_*; a path segment wp-admin (and below),
// wp-login.php, xmlrpc.php or wp-cron.php, anywhere in the path so that
// multisite subdirectories are covered; a query parameter preview,
// preview_id, preview_nonce, s (search), add-to-cart or wc-ajax. /wp-json/
// needs no rule of its own: with Authorization or a logged-in cookie it is
// bypassed by the rules above, and anonymous REST GETs may be cached.
// Parameter names are compared as sent (not percent-decoded).
//
// Request Cache-Control and Pragma are ignored, as Varnish does by default:
// a browser reload (no-cache, max-age=0) must not let one visitor make PHP
// render the page again, let alone many.
//
// The key is the host (lowercased, port 80/443 and a trailing dot removed),
// the escaped path, and the query without IgnoreParams, parameters sorted.
// GET and HEAD share entries (a fill always fetches with GET). The scheme
// and the request values of the response's Vary headers select a variant
// under that key.
func (c *Cache) Classify(r *http.Request) Decision {
	if d, ok := c.bypass(r); !ok {
		c.bypasses.Add(1)
		return d
	}
	var arr [512]byte
	buf, reason := c.appendURLKey(arr[:0], r.Host, r.URL.EscapedPath(), r.URL.RawQuery)
	if reason != "" {
		c.bypasses.Add(1)
		return Decision{Bypass: reason}
	}
	d := Decision{hash: maphash.Bytes(c.seed, buf), tls: r.TLS != nil, static: isStaticPath(r.URL.Path)}
	sh := c.shardOf(d.hash)
	sh.mu.RLock()
	// Reuse the stored key string: no allocation when the URL is cached.
	if ue := sh.urls[string(buf)]; ue != nil {
		d.key, d.ue = ue.key, ue
	}
	sh.mu.RUnlock()
	if d.key == "" {
		d.key = string(buf)
	}
	return d
}

// bypass applies the method, header, cookie and path rules.
func (c *Cache) bypass(r *http.Request) (Decision, bool) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return Decision{Bypass: BypassMethod}, false
	}
	if len(r.Header["Authorization"]) > 0 {
		return Decision{Bypass: BypassAuthorization}, false
	}
	for _, line := range r.Header["Cookie"] {
		if reason := cookieBypass(line); reason != "" {
			return Decision{Bypass: reason}, false
		}
	}
	if reason := pathBypass(r.URL.Path); reason != "" {
		return Decision{Bypass: reason}, false
	}
	return Decision{}, true
}

// cookieBypass scans one Cookie header line ("a=1; b=2") without
// allocating.
func cookieBypass(line string) string {
	for len(line) > 0 {
		var part string
		if i := strings.IndexByte(line, ';'); i >= 0 {
			part, line = line[:i], line[i+1:]
		} else {
			part, line = line, ""
		}
		part = strings.TrimLeft(part, " \t")
		for _, rule := range cookieRules {
			if strings.HasPrefix(part, rule.prefix) {
				return rule.reason
			}
		}
	}
	return ""
}

// pathBypass matches the private WordPress endpoints as path segments. A
// path with empty or dot segments is cleaned first, so that //wp-admin/ or
// /x/../wp-login.php do not slip through.
func pathBypass(p string) string {
	if strings.Contains(p, "//") || strings.Contains(p, "/.") {
		p = path.Clean("/" + p)
	}
	for len(p) > 0 {
		p = p[1:] // leading '/'
		seg := p
		if i := strings.IndexByte(p, '/'); i >= 0 {
			seg, p = p[:i], p[i:]
		} else {
			p = ""
		}
		switch seg {
		case "wp-admin":
			return BypassAdmin
		case "wp-login.php":
			return BypassLogin
		case "xmlrpc.php":
			return BypassXMLRPC
		case "wp-cron.php":
			return BypassCron
		}
	}
	return ""
}

// staticExts are the extensions of static assets under /wp-content/ and
// /wp-includes/.
var staticExts = [...]string{
	"css", "js", "png", "jpg", "jpeg", "gif", "webp", "avif", "svg", "ico",
	"woff", "woff2", "ttf", "eot", "mp4", "webm", "pdf",
}

func isStaticPath(p string) bool {
	if !strings.HasPrefix(p, "/wp-content/") && !strings.HasPrefix(p, "/wp-includes/") {
		return false
	}
	dot := strings.LastIndexByte(p, '.')
	if dot < 0 || strings.IndexByte(p[dot:], '/') >= 0 {
		return false
	}
	ext := p[dot+1:]
	for _, e := range staticExts {
		if strings.EqualFold(ext, e) {
			return true
		}
	}
	return false
}
