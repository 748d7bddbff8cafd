package fault

import (
	"errors"
	"time"
)

// retryAfterer is what [RetryAfter] looks for in an error chain. It is an
// interface, not a concrete type, so that a foreign error (a client library's
// throttling error) can carry its own hint without being rewrapped.
type retryAfterer interface {
	error
	RetryAfter() time.Duration
}

// retryAfterError attaches a server's Retry-After hint to an error. It adds
// no class and no context: ClassOf, ContextOf and errors.Is see straight
// through it to the wrapped error.
type retryAfterError struct {
	err error
	d   time.Duration
}

func (e *retryAfterError) Error() string             { return e.err.Error() }
func (e *retryAfterError) Unwrap() error             { return e.err }
func (e *retryAfterError) RetryAfter() time.Duration { return e.d }

// WithRetryAfter returns err carrying the hint "do not try again for d".
// A nil err stays nil; a negative d is treated as zero (retry now is allowed,
// but the server did say something).
func WithRetryAfter(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &retryAfterError{err: err, d: max(d, 0)}
}

// RetryAfter returns the outermost Retry-After hint in err's chain, and
// whether there was one. The outermost wins because a layer that re-attaches
// a hint (the resilience package, for an open breaker) knows more recently
// than the backend did when the caller may come back.
func RetryAfter(err error) (time.Duration, bool) {
	var ra retryAfterer
	if errors.As(err, &ra) {
		return ra.RetryAfter(), true
	}
	return 0, false
}
