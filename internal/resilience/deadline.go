package resilience

import (
	"context"
	"errors"
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
// cache and the backends all stop when it expires; a backend attempt ends
// at this deadline or at its Policy's per-attempt timeout, whichever is
// sooner.
type Deadlines struct {
	Default time.Duration // when the client asks for none; 0 = 5s
	Max     time.Duration // a client's request is clamped to this; 0 = Default
}

// Context returns r's context bounded by the client's TimeoutHeader (if it
// parses and is shorter than Max) or by Default, made with
// context.WithDeadline. A deadline already on the context that is sooner
// stays. Call cancel when the request ends.
func (d Deadlines) Context(r *http.Request) (context.Context, context.CancelFunc) {
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
	parent, dl := r.Context(), time.Now().Add(t)
	ctx, cancel := context.WithDeadline(parent, dl)
	if client {
		// A sooner deadline of the parent's is not the client's.
		if pd, ok := parent.Deadline(); !ok || !pd.Before(dl) {
			ctx = context.WithValue(ctx, clientDeadlineKey{}, clientDeadline{ctx})
		}
	}
	return ctx, cancel
}

// ClientDeadlineExceeded reports whether ctx, made by [Deadlines.Context]
// or derived from such a context, has ended because the deadline the
// client asked for in TimeoutHeader passed: the client's own choice, as
// opposed to the server's default or maximum, which bound a request the
// client left open or asked too much for. The server answers the first as
// a client error and the second as its own failure to finish in time.
func ClientDeadlineExceeded(ctx context.Context) bool {
	c, ok := ctx.Value(clientDeadlineKey{}).(clientDeadline)
	return ok && errors.Is(c.ctx.Err(), context.DeadlineExceeded)
}

// clientDeadlineKey marks a request context whose deadline is the one the
// client asked for; its value is a clientDeadline.
type clientDeadlineKey struct{}

// clientDeadline is the context.WithDeadline that carries the client's
// deadline, so a context derived from it with a sooner deadline of its own
// is not mistaken for the client's.
type clientDeadline struct{ ctx context.Context }

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
