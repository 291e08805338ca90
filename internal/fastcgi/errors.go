package fastcgi

import "errors"

var (
	// ErrClosed is returned by Do after Close.
	ErrClosed = errors.New("fastcgi: client closed")
	// ErrHeaderTooLarge means the CGI header block exceeded 64 KiB.
	ErrHeaderTooLarge = errors.New("fastcgi: response header too large")
	// ErrProtocol is wrapped by every error caused by a record stream that
	// breaks the FastCGI protocol (bad version, unexpected request id or
	// record type, malformed END_REQUEST).
	ErrProtocol = errors.New("protocol violation")
	// ErrCantMpxConn, ErrOverloaded and ErrUnknownRole are wrapped when
	// END_REQUEST carries that protocol status.
	ErrCantMpxConn = errors.New("protocol status FCGI_CANT_MPX_CONN")
	ErrOverloaded  = errors.New("protocol status FCGI_OVERLOADED")
	ErrUnknownRole = errors.New("protocol status FCGI_UNKNOWN_ROLE")
	// ErrAborted is wrapped by Forward's error when the response failed after
	// its status line was written: the caller must not write an error page.
	// Inside an http.Handler, panic(http.ErrAbortHandler) makes net/http cut
	// the connection so the client cannot mistake the truncated body for a
	// complete one.
	ErrAborted = errors.New("fastcgi: response aborted after headers were written")
	// ErrLengthRequired is returned by Forward for a request body of unknown
	// length (no Content-Length, and no CONTENT_LENGTH param): PHP reads
	// exactly CONTENT_LENGTH bytes of stdin. Callers answer 411.
	ErrLengthRequired = errors.New("fastcgi: request body without content length")
)
