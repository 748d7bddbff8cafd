// Package fault is cairn's error model: every error that leaves a package
// carries a Class (what kind of failure it is) and a Context (where it
// happened: operation, tenant, key, backend, request id).
//
// # Classes
//
// The class decides what the rest of the system does with an error: the HTTP
// status the server answers, whether the retry policy tries again, whether a
// circuit breaker counts it, whether the reconciler skips a key or stops. All
// of those decisions read the class with [ClassOf] or [errors.Is] against the
// class sentinels ([ErrTransient], [ErrNotFound], ...), never by matching
// error strings. The one table that maps a class to its HTTP status and its
// action is [Class.Policy].
//
// # Context
//
// [E] wraps an error with a class and context fields. Wrapping again (with
// fmt.Errorf("...: %w", err) or another [E]) keeps everything: [ContextOf]
// walks the chain and merges the fields, the innermost non-empty value of each
// field winning, because the innermost frame is closest to where the failure
// happened. A class set by an outer [E] overrides an inner one, so a layer
// that knows better (the server deciding a missing tenant is NotFound) can
// reclassify.
//
// # Conversions
//
// Foreign errors become classified at package boundaries:
//   - [Classify]: context errors, syscall errnos, net timeouts, fs and JSON
//     errors.
//   - [FromHTTPStatus] / [ClassOfHTTPStatus]: a dependency's HTTP status.
//   - [FromS3] / [ClassOfS3]: an S3 error code plus status; throttling codes
//     carry a Retry-After hint of at least [SlowDownDelay].
//
// Pebble errors are not converted here, on purpose: pebble marks corruption
// with cockroachdb/errors marks, which only pebble.IsCorruptionError can read,
// and fault must not import pebble. The store package converts them:
// pebble.ErrNotFound → NotFound, pebble.IsCorruptionError(err) → Corruption
// (except pebble.ErrBatchTooLarge, which pebble marks as corruption but is
// an oversize batch: Invalid), pebble.ErrClosed and pebble.ErrReadOnly →
// Config; disk errors reach Classify as syscall errnos (ENOSPC → Exhausted).
//
// # Retry-After
//
// [WithRetryAfter] attaches a "come back in d" hint to any error without
// changing its class or context; [RetryAfter] reads the outermost hint. Any
// error type with a RetryAfter() time.Duration method is also recognised.
// The retry policy waits at least that long; the server copies it into its
// Retry-After header ([FormatRetryAfter]).
//
// # Sharp edges
//
// An error with no [Error] in its chain has class [Unknown]; [Classify]
// recognises the common foreign errors so callers at package boundaries can
// convert. ClassOf looks at the outermost classified [Error] first, then at
// the foreign errors: fault.E(Unknown, ctx, err) adds context and never
// changes a class. [ParseRetryAfter] parses untrusted input; it caps hints at
// 24h and treats dates in the past as zero.
//
// # Concurrency
//
// Everything here is a value or immutable after construction; errors may be
// shared between goroutines.
package fault
