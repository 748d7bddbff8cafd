package resilience

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cairnstore/cairn/internal/deadline"
)

// TimeoutHeader lets a client ask for a shorter deadline than the server's
// default: a Go duration ("250ms", "2s") or a number of seconds ("1.5").
const TimeoutHeader = "X-Request-Timeout"

// Deadlines derives each request's deadline from the server's default,
// its maximum and the client's TimeoutHeader. The server calls
// [Deadlines.Carry] (or [Deadlines.Context]) as it takes a write and
// passes the result down: the store and whatever waits below it stop when
// it expires.
type Deadlines struct {
	Default time.Duration // when the client asks for none; 0 = 5s
	Max     time.Duration // a client's request is clamped to this; 0 = Default
}

// Carry returns r's context carrying its deadline as a value
// (deadline.With): the client's TimeoutHeader if it parses and is shorter
// than Max, else Default. It arms no timer: the store checks the deadline
// when it takes a write (deadline.Err), and code that waits makes the
// timer where it waits (deadline.Bound). A durable PUT that finds room in
// the store's queue never waits, so it pays for no timer, which is a
// measurable share of its cost (docs/performance.md). The cancel does
// nothing; it is there so that Carry and Context are interchangeable.
func (d Deadlines) Carry(r *http.Request) (context.Context, context.CancelFunc) {
	at, client := d.at(r)
	return deadline.With(r.Context(), at, client), func() {}
}

// Context is Carry with the standard deadline made at once
// (context.WithDeadline): for a caller that waits on Done. A deadline
// already on r's context that is sooner stays. Call cancel when the
// request ends.
func (d Deadlines) Context(r *http.Request) (context.Context, context.CancelFunc) {
	at, client := d.at(r)
	return context.WithDeadline(deadline.With(r.Context(), at, client), at)
}

// at returns r's deadline and whether it is the one the client asked for.
func (d Deadlines) at(r *http.Request) (time.Time, bool) {
	def := d.Default
	if def <= 0 {
		def = 5 * time.Second
	}
	limit := d.Max
	if limit <= 0 {
		limit = def
	}
	t, client := def, false
	if v, ok := ParseTimeout(r.Header.Get(TimeoutHeader)); ok {
		t, client = min(v, limit), v <= limit
	}
	return time.Now().Add(t), client
}

// ClientDeadlineExceeded reports whether ctx, made by [Deadlines.Carry] or
// [Deadlines.Context] or derived from such a context, has ended because the
// deadline the client asked for in TimeoutHeader passed: the client's own
// choice, as opposed to the server's default or maximum, which bound a
// request the client left open or asked too much for. The server answers
// the first as a client error and the second as its own failure to finish
// in time.
func ClientDeadlineExceeded(ctx context.Context) bool { return deadline.ClientExceeded(ctx) }

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
