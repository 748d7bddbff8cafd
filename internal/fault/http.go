package fault

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ClassOfHTTPStatus maps a status code received from a dependency (an S3
// endpoint, another node) to a class. It is the inverse direction of
// [Class.HTTPStatus] and deliberately not its exact inverse: a 500 from a
// dependency is Transient (its problem, maybe passing), while cairn answers
// its own Unknown errors with 500.
//
// Outcomes:
//   - below 400: Unknown (not a failure), except 304 → PreconditionFailed
//     (an If-None-Match condition held)
//   - 401 → Unauthorized, 403 → Forbidden, 404 and 410 → NotFound,
//     409 → Conflict, 412 → PreconditionFailed
//   - 408 and 425 → Transient (the request can be sent again as is)
//   - 429 and 507 → Exhausted
//   - 501 and 505 → Config (the endpoint cannot do this; retrying will not help)
//   - any other 4xx → Invalid; any other 5xx → Transient
//   - anything else (≥ 600, negative) → Unknown
func ClassOfHTTPStatus(code int) Class {
	switch code {
	case http.StatusNotModified:
		return PreconditionFailed
	case http.StatusUnauthorized:
		return Unauthorized
	case http.StatusForbidden:
		return Forbidden
	case http.StatusNotFound, http.StatusGone:
		return NotFound
	case http.StatusConflict:
		return Conflict
	case http.StatusPreconditionFailed:
		return PreconditionFailed
	case http.StatusRequestTimeout, http.StatusTooEarly:
		return Transient
	case http.StatusTooManyRequests, http.StatusInsufficientStorage:
		return Exhausted
	case http.StatusNotImplemented, http.StatusHTTPVersionNotSupported:
		return Config
	}
	switch {
	case code >= 400 && code < 500:
		return Invalid
	case code >= 500 && code < 600:
		return Transient
	}
	return Unknown
}

// FromHTTPStatus converts a dependency's HTTP answer into an error: nil when
// the status is not a failure (see [ClassOfHTTPStatus]), otherwise an *Error
// of the status's class whose message names the status. retryAfter is the
// raw Retry-After header ("" if absent); when it parses, the error carries
// the hint for [RetryAfter]. Add context by wrapping the result with [E]
// and class Unknown, which keeps the class.
func FromHTTPStatus(code int, retryAfter string) error {
	return fromHTTPStatusAt(code, retryAfter, time.Now())
}

func fromHTTPStatusAt(code int, retryAfter string, now time.Time) error {
	c := ClassOfHTTPStatus(code)
	if c == Unknown {
		return nil
	}
	msg := "http " + strconv.Itoa(code)
	if t := http.StatusText(code); t != "" {
		msg += " " + t
	}
	err := error(New(c, Context{}, msg))
	if d, ok := ParseRetryAfter(retryAfter, now); ok {
		err = WithRetryAfter(err, d)
	}
	return err
}

// maxRetryAfter bounds what ParseRetryAfter returns, so that a hostile or
// broken server cannot park a caller for years (or overflow a Duration).
const maxRetryAfter = 24 * time.Hour

// ParseRetryAfter parses a Retry-After header value (RFC 9110 §10.2.3):
// either a non-negative number of seconds or an HTTP-date, relative to now.
// A date in the past means zero. The result is capped at 24h. It reports
// false for an empty or malformed value. The input is untrusted (it comes
// from a remote server) and the function is fuzzed.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if isDigits(v) {
		// Digits only: no sign, no fraction. Long runs saturate rather
		// than fail, because "a very long time" is still a valid answer.
		if len(v) > 6 {
			return maxRetryAfter, true
		}
		n, _ := strconv.Atoi(v)
		return min(time.Duration(n)*time.Second, maxRetryAfter), true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	d := t.Sub(now)
	return min(max(d, 0), maxRetryAfter), true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// FormatRetryAfter renders d as a Retry-After value in whole seconds,
// rounded up and at least 1: a client told "0" would retry at once, which is
// what shedding is trying to stop.
func FormatRetryAfter(d time.Duration) string {
	s := (d + time.Second - 1) / time.Second
	return strconv.FormatInt(int64(max(s, 1)), 10)
}
