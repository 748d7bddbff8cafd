package resilience

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// TimeoutHeader lets a client ask for a shorter deadline than the server's
// default: a Go duration ("250ms", "2s") or a number of seconds ("1.5").
const TimeoutHeader = "X-Request-Timeout"

// Deadlines derives each request's deadline. The server calls Context at
// the top of every handler and passes the result down: the store, the
// cache and the backends all stop when it expires, and the resilience
// Policy skips its per-attempt context when this deadline comes first.
type Deadlines struct {
	Default time.Duration // when the client asks for none; 0 = 5s
	Max     time.Duration // a client's request is clamped to this; 0 = Default
}

// Context returns r's context bounded by the client's TimeoutHeader (if it
// parses and is shorter than Max) or by Default. A deadline already on the
// context that is sooner stays. Call cancel when the request ends.
func (d Deadlines) Context(r *http.Request) (context.Context, context.CancelFunc) {
	def := d.Default
	if def <= 0 {
		def = 5 * time.Second
	}
	limit := d.Max
	if limit <= 0 {
		limit = def
	}
	t := def
	if v, ok := ParseTimeout(r.Header.Get(TimeoutHeader)); ok {
		t = min(v, limit)
	}
	return context.WithTimeout(r.Context(), t)
}

// ParseTimeout parses a TimeoutHeader value: a positive Go duration or a
// positive number of seconds, at most 24h. It reports false otherwise. The
// input is untrusted and the function is fuzzed.
func ParseTimeout(v string) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" || len(v) > 32 {
		return 0, false
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		f, ferr := strconv.ParseFloat(v, 64)
		if ferr != nil || f != f || f <= 0 || f > (24*time.Hour).Seconds() { // f != f: NaN
			return 0, false
		}
		d = time.Duration(f * float64(time.Second))
	}
	if d <= 0 || d > 24*time.Hour {
		return 0, false
	}
	return d, true
}
