// Package pagecache is the edge's page cache and static-asset cache: an
// RFC 9111 shared cache with WordPress rules, cache tags, request
// coalescing and stale serving. It knows nothing of load balancing: the
// edge gives it a Fetch that reaches a node.
//
// # Request flow
//
// The edge handler calls, in order:
//
//	d := c.Classify(r)
//	if d.Bypass != "" {
//		// relay to a node; c.StripTagHeader on the response; X-Cache: BYPASS
//	}
//	if c.ServeHit(w, r, d) {
//		return // fresh hit, written (200, 304, 206, 416 or HEAD)
//	}
//	res := c.Fill(r.Context(), r, d, fetch) // coalesced; may be a HIT too
//	if err := c.Serve(w, r, res); err != nil {
//		panic(http.ErrAbortHandler) // origin failed mid-body: cut the connection
//	}
//
// A fetch for Fill (see Fetch) might be, with a raw Transport round trip:
//
//	fetch := func(ctx context.Context, cond pagecache.Conditional) (*pagecache.Response, error) {
//		out := r.Clone(ctx)
//		out.Method, out.Body, out.ContentLength = http.MethodGet, nil, 0
//		out.URL.Scheme, out.URL.Host, out.RequestURI = "http", node, ""
//		cond.Apply(out.Header)
//		out.Header.Set("Accept-Encoding", "identity") // the cache compresses once
//		// ... hop-by-hop removal and X-Forwarded-* as for any proxied request
//		resp, err := transport.RoundTrip(out)
//		if err != nil {
//			return nil, err
//		}
//		return pagecache.ResponseFrom(resp), nil
//	}
//
// # X-Cache
//
// The cache sets X-Cache on every response it writes:
//
//   - HIT: served from a stored object without this request reaching the
//     origin. ServeHit's fresh hits (200, 304, 206, 416, HEAD); Fill's
//     stale-while-revalidate and soft-purge-grace serves (a background
//     refresh runs); requests that waited on another request's fetch and
//     were served its stored result. Age is always set, and is the true
//     age (it may exceed max-age while revalidating).
//   - MISS: this request's fetch reached the origin: stored, revalidated
//     (origin 304), passed (not cacheable, hit-for-pass, too large), a 5xx
//     shared with the fetch's waiters, or the 503 Serve writes when the
//     origin failed and nothing is stored. Age only if the origin sent one.
//   - STALE: the origin failed (error or 5xx) and a copy within its
//     stale-if-error window was served. Age set; Result.Err says why.
//   - BYPASS: written by the edge, for Classify's bypasses.
//
// # Caching rules
//
// Classify documents the bypass rules and the key, planFor (policy.go) what
// is stored, for how long and when a stale copy may be served (RFC 9111,
// RFC 9213), Fill coalescing and stale serving, Invalidate what an unsafe
// method removes (RFC 9111 §4.4). In short: anonymous HTML gets
// Config.DefaultTTL unless the origin says otherwise, static assets
// Config.StaticTTL; Set-Cookie, no-store, private and Vary: * are never
// stored; CDN-Cache-Control, when valid, replaces Cache-Control and Expires
// and is never served; the configured stale windows are a grace policy
// for WordPress pages (tagged) and static assets only, and no-cache,
// must-revalidate, proxy-revalidate and s-maxage forbid any stale use; the
// request's Cache-Control is ignored (a reload must not reach PHP).
// Compressible bodies of 1 KiB or more are compressed once when stored, in
// gzip, br and zstd (each kept if smaller than the body); a hit sends the
// one the client's Accept-Encoding ranks highest, the smallest among
// equals (encoding.go), with a weak ETag; bodies the origin
// encoded are stored as they are, as a variant per Accept-Encoding class.
//
// # Tags and purges
//
// The origin names what a page shows in Config.TagHeader ("post-12 term-3
// home"). The tag header is never served from the cache (it is removed
// when storing and when relaying); the edge must call StripTagHeader on
// responses it relays itself. PurgeURL, PurgeTag and PurgeAll purge soft
// (stale: refreshed once, the others keep the old copy meanwhile) or hard
// (removed). ParsePurgeRequest parses the purge endpoint's body.
//
// # Hot path
//
// A hit costs one read lock on the URL's shard, a map lookup, and
// assignments of pre-rendered header slices into the response header: no
// formatting and, once the URL is stored, no allocation. The shared slices
// must never be written into (http.Header's Set, Add and Del do not).
package pagecache
