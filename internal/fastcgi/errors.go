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
	// ErrBodyTooLarge is returned by Forward for a request body larger than
	// Config.MaxBody; callers answer 413. Nothing reached PHP.
	ErrBodyTooLarge = errors.New("request body too large")
	// ErrBodyTimeout is returned by Forward when the client sent no body
	// bytes for Config.BodyTimeout; callers answer 408. Nothing reached PHP.
	ErrBodyTimeout = errors.New("request body too slow")
	// ErrBodyRead wraps another failure to read the request body (the
	// client went away, a malformed chunk); callers answer 400.
	ErrBodyRead = errors.New("request body unreadable")
)
