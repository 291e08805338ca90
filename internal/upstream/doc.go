// Package upstream is the edge's HTTP/1.1 client for its one hop to the
// nodes: the request is written and the response read in the caller's own
// goroutine, over keep-alive connections pooled per node (a Pool, kept on
// the balancer's node), bounded per node and closed after IdleTimeout.
//
// It speaks only what the edge needs and refuses everything ambiguous:
//
//   - The request is framed by this package alone (Content-Length, or
//     chunked when the length is unknown); Host, framing and hop-by-hop
//     fields of the caller's header are not copied, and a field name or
//     value that could not be written unambiguously is an
//     ErrInvalidRequest, before any byte is sent.
//   - The response head must be strict RFC 9112: CRLF line ends (a bare
//     LF is an error), no obs-fold, token field names with no space before
//     the colon, no CR, LF, NUL or other control in values, one
//     Content-Length of digits only, Transfer-Encoding only "chunked" and
//     never together with Content-Length, at most MaxHeaderBytes.
//   - Chunk sizes are hex digits that fit in 63 bits, chunk extensions
//     hold no controls, every chunk ends in CRLF, trailers are parsed like
//     header fields (within the same byte budget) and dropped.
//   - A connection that saw any error, a body not read to its end, a
//     response without length or with "Connection: close", or an HTTP/1.0
//     answer is closed, never reused.
//
// Interim 1xx responses are handed to the caller (100 Continue is
// swallowed: the edge's own server answers Expect itself, and Expect is
// not forwarded).
package upstream
