package api

// HeaderEdge carries an edge's signature of the forwarded headers of a
// request it sends to a node: "EDGE-ID UNIX-TIME MAC" (internal/forward).
// A node believes X-Forwarded-For, -Proto and -Host only when it checks,
// and never passes it to PHP.
const HeaderEdge = "X-Scalepress-Edge"
