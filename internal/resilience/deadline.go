package resilience

import (
	"context"
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
	t := def
	if v, ok := ParseTimeout(r.Header.Get(TimeoutHeader)); ok {
		t = min(v, limit)
	}
	c := &lazyDeadline{Context: r.Context(), deadline: time.Now().Add(t)}
	return c, c.cancel
}

// lazyDeadline is a context with a deadline whose context.WithDeadline is
// made on first use of Done (arm). Before that, Err is computed from the
// parent and the clock; after, everything defers to the armed context, so
// that Err is non-nil exactly when Done is closed. context.Cause works on
// it: Cause asks Err first, and a parent without a cause makes it return
// Err. Deriving a context from it arms it (context asks the parent for
// Done).
type lazyDeadline struct {
	context.Context // the parent
	deadline        time.Time

	mu       sync.Mutex                    // orders arm against cancel
	armed    atomic.Pointer[armedDeadline] // set by arm, once
	canceled atomic.Bool                   // cancel has run
}

type armedDeadline struct {
	ctx    context.Context
	cancel context.CancelFunc
}

func (c *lazyDeadline) arm() *armedDeadline {
	if a := c.armed.Load(); a != nil {
		return a
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if a := c.armed.Load(); a != nil {
		return a
	}
	ctx, cancel := context.WithDeadline(c.Context, c.deadline)
	if c.canceled.Load() {
		cancel()
	}
	a := &armedDeadline{ctx, cancel}
	c.armed.Store(a)
	return a
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
	if c.canceled.Load() {
		return context.Canceled
	}
	if err := c.Context.Err(); err != nil {
		return err
	}
	if !time.Now().Before(c.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

// Value defers to the armed context once there is one, so that context's
// own lookups (a derived context finding its parent's cancellation, Cause)
// see the context that is actually cancelled.
func (c *lazyDeadline) Value(key any) any {
	if a := c.armed.Load(); a != nil {
		return a.ctx.Value(key)
	}
	return c.Context.Value(key)
}

// cancel ends the context. Unarmed, it only records that; the mutex makes
// an arm racing with it either see the record or be seen by it.
func (c *lazyDeadline) cancel() {
	c.mu.Lock()
	c.canceled.Store(true)
	a := c.armed.Load()
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
