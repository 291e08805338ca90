package pagecache

import (
	"net/http"
	"net/url"
)

// SafeMethod reports whether method is safe (RFC 9110 §9.2.1): GET, HEAD,
// OPTIONS and TRACE. Every other method, known or not, is unsafe.
func SafeMethod(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// Invalidate applies RFC 9111 §4.4 to the origin's answer to r: when r's
// method is unsafe and the status is not an error (2xx or 3xx), it removes
// every stored variant of r's target URI, and of the URIs in the answer's
// Location and Content-Location fields when they name the same host (a
// relative reference is resolved against r's URL). It returns the number
// of entries removed.
//
// Entries are removed, not marked stale: a stale mark may still be served
// under the grace policy, and an invalidated response must not be (§4.4:
// "in need of a mandatory validation before they can be sent").
//
// Same host, not same origin: the cache key has no scheme (the scheme is a
// variant), so http and https copies of a path are one entry, and both are
// invalidated. A different host is never touched (§4.4: a cache "MUST NOT
// invalidate" a Location or Content-Location URI of another origin), so a
// site cannot invalidate another site's pages on a shared edge.
//
// A purge racing a fill makes the fill store its response soft-purged
// (refetched on the next request), so a GET whose fetch started before the
// unsafe request completed cannot leave the old page fresh.
func (c *Cache) Invalidate(r *http.Request, status int, h http.Header) int {
	if SafeMethod(r.Method) || status < 200 || status >= 400 {
		return 0
	}
	host := string(appendHost(nil, r.Host))
	base := &url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	n := c.PurgeURL(r.Host, base.RequestURI(), false)
	for _, name := range [...]string{"Location", "Content-Location"} {
		v := h.Get(name)
		if v == "" {
			continue
		}
		ref, err := url.Parse(v)
		if err != nil {
			continue
		}
		u := base.ResolveReference(ref)
		if string(appendHost(nil, u.Host)) != host || u.Scheme != "http" && u.Scheme != "https" {
			continue
		}
		if u.String() == base.String() {
			continue // the target URI, done above
		}
		n += c.PurgeURL(r.Host, u.RequestURI(), false)
	}
	return n
}
