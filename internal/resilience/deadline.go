package resilience

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
//
// The context behaves as context.WithTimeout's, but it creates that
// context (a timer, a channel, a link to the parent) only once something
// asks for Done: until then Err compares the clock with the deadline. Most
// requests never wait on Done (a write that finds room in the store's
// queue is checked with Err), and under durable PUTs the eager
// context.WithTimeout cost 3.7% of a node's CPU.
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
	c := &lazyDeadline{Context: r.Context(), deadline: time.Now().Add(t), client: client}
	return c, c.cancel
}

// ClientDeadlineExceeded reports whether ctx, made by [Deadlines.Context]
// or derived from such a context, has ended because the deadline the
// client asked for in TimeoutHeader passed: the client's own choice, as
// opposed to the server's default or maximum, which bound a request the
// client left open or asked too much for. The server answers the first as
// a client error and the second as its own failure to finish in time.
func ClientDeadlineExceeded(ctx context.Context) bool {
	c, _ := ctx.Value(lazyDeadlineKey{}).(*lazyDeadline)
	if c == nil || !c.client || !errors.Is(c.Err(), context.DeadlineExceeded) {
		return false
	}
	// A sooner deadline of the parent's is not the client's.
	d, ok := c.Context.Deadline()
	return !ok || !d.Before(c.deadline)
}

// lazyDeadlineKey finds the lazyDeadline among a context's ancestors.
type lazyDeadlineKey struct{}

// lazyDeadline is a context with a deadline whose context.WithDeadline is
// made on first use of Done (arm). Before that, Err is computed from the
// parent and the clock, and the first error it reports (or cancel's) is
// recorded and kept, as a context's must be; arm then makes a context that
// has already ended that way. Once armed, everything defers to the armed
// context, so that Err is non-nil exactly when Done is closed.
// context.Cause works on it (Cause asks Err first, and a parent without a
// cause makes it return Err), with attemptCtx's sharp edge: after it ends
// unarmed, a parent cancelled later with a cause lends Cause that cause.
// Deriving a context from it arms it (context asks the parent for Done).
type lazyDeadline struct {
	context.Context // the parent
	deadline        time.Time
	client          bool // the deadline is the one the client asked for

	mu    sync.Mutex                    // orders arm, end and cancel
	armed atomic.Pointer[armedDeadline] // set once, by arm
	ended atomic.Pointer[error]         // how it ended before arm; set once
}

type armedDeadline struct {
	ctx    context.Context
	cancel context.CancelFunc
}

// The errors a lazyDeadline records, as pointers that cost no allocation.
var (
	errCanceled = context.Canceled
	errDeadline = context.DeadlineExceeded
)

func (c *lazyDeadline) arm() *armedDeadline {
	if a := c.armed.Load(); a != nil {
		return a
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if a := c.armed.Load(); a != nil {
		return a
	}
	a := new(armedDeadline)
	if e := c.ended.Load(); e != nil {
		a.ctx, a.cancel = endedContext(c.Context, *e)
	} else {
		a.ctx, a.cancel = context.WithDeadline(c.Context, c.deadline)
	}
	c.armed.Store(a)
	return a
}

// endedContext returns a context, with parent's values, that has already
// ended with err: what Done stands for after Err reported err.
func endedContext(parent context.Context, err error) (context.Context, context.CancelFunc) {
	base := context.WithoutCancel(parent)
	if errors.Is(err, context.DeadlineExceeded) {
		return context.WithDeadline(base, time.Time{}) // long past: ended at once
	}
	ctx, cancel := context.WithCancelCause(base)
	cancel(context.Cause(parent)) // nil (so Canceled) unless the parent has a cause
	return ctx, func() { cancel(nil) }
}

func (c *lazyDeadline) Deadline() (time.Time, bool) {
	if d, ok := c.Context.Deadline(); ok && d.Before(c.deadline) {
		return d, true
	}
	return c.deadline, true
}

func (c *lazyDeadline) Done() <-chan struct{} { return c.arm().ctx.Done() }

func (c *lazyDeadline) Err() error {
	if a := c.armed.Load(); a != nil {
		return a.ctx.Err()
	}
	if e := c.ended.Load(); e != nil {
		return *e
	}
	err := c.Context.Err()
	if err == nil && !time.Now().Before(c.deadline) {
		err = context.DeadlineExceeded
	}
	if err == nil {
		return nil
	}
	return c.end(err)
}

// end records err as how the context ended, unless it has already ended or
// been armed, and returns the context's error.
func (c *lazyDeadline) end(err error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if a := c.armed.Load(); a != nil {
		return a.ctx.Err()
	}
	if e := c.ended.Load(); e != nil {
		return *e
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		c.ended.Store(&errDeadline)
	case errors.Is(err, context.Canceled):
		c.ended.Store(&errCanceled)
	default: // a parent of another kind
		e := err
		c.ended.Store(&e)
	}
	return *c.ended.Load()
}

// Value defers to the armed context once there is one, so that context's
// own lookups (a derived context finding its parent's cancellation, Cause)
// see the context that is actually cancelled.
func (c *lazyDeadline) Value(key any) any {
	if key == (lazyDeadlineKey{}) {
		return c
	}
	if a := c.armed.Load(); a != nil {
		return a.ctx.Value(key)
	}
	return c.Context.Value(key)
}

// cancel ends the context with Canceled, unless it has already ended.
// Unarmed, it only records that; the mutex makes an arm racing with it
// either see the record or be seen by it.
func (c *lazyDeadline) cancel() {
	c.mu.Lock()
	a := c.armed.Load()
	if a == nil && c.ended.Load() == nil {
		c.ended.Store(&errCanceled)
	}
	c.mu.Unlock()
	if a != nil {
		a.cancel()
	}
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
