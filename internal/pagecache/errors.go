package pagecache

import "errors"

var (
	// ErrOriginFailed is wrapped by Result.Err when the origin gave no
	// usable answer: the fetch failed (the result is STALE, or a 503), a 5xx
	// was replaced by a stale copy (STALE), or the request's context ended
	// while it waited for another request's fetch.
	ErrOriginFailed = errors.New("pagecache: origin failed")
	// ErrPurgeMethod: the purge request did not use POST (answer 405).
	ErrPurgeMethod = errors.New("pagecache: purge request: method not allowed")
	// ErrPurgeTooLarge: the purge body exceeds MaxPurgeBody (answer 413).
	ErrPurgeTooLarge = errors.New("pagecache: purge request: body too large")
	// ErrPurgeInvalid: any other problem with a purge request (answer 400).
	ErrPurgeInvalid = errors.New("pagecache: purge request: invalid")
)

// purgeError keeps the message that says what is wrong while matching the
// sentinel that tells the edge which status to answer.
type purgeError struct {
	kind error
	msg  string
}

func (e *purgeError) Error() string { return "pagecache: purge request: " + e.msg }
func (e *purgeError) Unwrap() error { return e.kind }
