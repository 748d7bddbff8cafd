package resilience

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// attemptCtx is the fast path's per-attempt context: context.WithTimeout's
// behaviour at one allocation instead of four (five once Done is called).
// See "Per-attempt timeout" in docs/design/resilience.md for why it exists
// and for its sharp edges.
//
// It is never pooled: the callee may keep it (a goroutine it started, a
// request it queued) after the attempt returns, and must then see it
// cancelled, never reused for another attempt. What is pooled is the timer
// that fires it (attemptTimer), which the callee never sees.
type attemptCtx struct {
	context.Context // the caller's; Value and the stdlib's Cause lookup pass through

	deadline time.Time

	mu     sync.Mutex    // guards following
	done   chan struct{} // nil until Done or cancel; closedCh if cancelled first
	err    error         // nil until cancelled; then the first cause, never changed
	afters *afterFunc    // registered by AfterFunc and not stopped; nil once cancelled
}

// afterFunc is one AfterFunc registration, in a singly linked list: a
// callee rarely derives more than one or two contexts from an attempt's.
type afterFunc struct {
	c    *attemptCtx
	f    func()
	next *afterFunc
}

// closedCh is the Done channel of an attemptCtx cancelled before anyone
// asked for Done, so that cancelling never allocates.
var closedCh = make(chan struct{})

func init() { close(closedCh) }

func (c *attemptCtx) Deadline() (time.Time, bool) { return c.deadline, true }

// Done makes the channel on first use: a callee that only polls Err (or
// does not look at its context at all) costs no channel.
func (c *attemptCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
	}
	return c.done
}

func (c *attemptCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *attemptCtx) String() string {
	return "resilience.attemptCtx(deadline " + c.deadline.String() + ")"
}

// AfterFunc is the method the stdlib looks for on a parent it does not
// know (context.propagateCancel's afterFuncer): with it, a context derived
// from this one — net/http's Transport derives one per request — is
// cancelled through f instead of through a goroutine started per derived
// context to watch Done. f runs once, when this context is cancelled;
// stop reports whether it removed f before that.
//
// Unlike context.AfterFunc, f is called synchronously by cancel, outside
// the lock (in a goroutine of its own only if this context was already
// cancelled when f was registered): the stdlib only ever passes a closure that cancels the derived
// context (context.AfterFunc itself wraps its caller's f so that it runs in
// a goroutine of its own). A caller reaching this method through a type
// assertion must not pass an f that blocks.
func (c *attemptCtx) AfterFunc(f func()) (stop func() bool) {
	a := &afterFunc{c: c, f: f}
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		// Not synchronously here: propagateCancel calls AfterFunc holding
		// the derived context's lock, which f takes.
		go f()
		return func() bool { return false }
	}
	a.next, c.afters = c.afters, a
	c.mu.Unlock()
	return a.stop
}

func (a *afterFunc) stop() bool {
	c := a.c
	c.mu.Lock()
	defer c.mu.Unlock()
	for p := &c.afters; *p != nil; p = &(*p).next {
		if *p == a {
			*p = a.next
			return true
		}
	}
	return false // already run, or already stopped
}

// cancel records err (DeadlineExceeded from the timer, the parent's error
// from the parent, Canceled when the attempt ends), closes Done and runs
// the AfterFunc callbacks. The first call wins; later ones do nothing, so
// Done is closed and each callback run exactly once.
func (c *attemptCtx) cancel(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	if c.done == nil {
		c.done = closedCh
	} else {
		close(c.done)
	}
	afters := c.afters
	c.afters = nil
	c.mu.Unlock()
	// Outside the lock: the stdlib's callback reads c.Err.
	for a := afters; a != nil; a = a.next {
		a.f()
	}
}

// attemptTimer is a time.AfterFunc timer with its callback bound once, so
// that arming it for an attempt allocates nothing (time.AfterFunc itself
// allocates the timer, and binding a callback to a context allocates a
// closure). It sits in Policy.timers between attempts.
//
// Invariant: a timer in the pool has no callback running or pending, so
// whoever takes it out owns cur outright. release keeps it only when both
// Stop and the parent's stop report that their callback never started; a
// timer whose callback did start is dropped for the GC, since the callback
// may still be about to read cur.
type attemptTimer struct {
	t   *time.Timer
	cur atomic.Pointer[attemptCtx] // the attempt the timer is armed for

	// onParent is fire-on-parent-cancel bound once; the registration with
	// the parent (context.AfterFunc) still costs two allocations per
	// attempt, and only when the parent can be cancelled.
	onParent func()
}

func (t *attemptTimer) expire() {
	if c := t.cur.Load(); c != nil {
		c.cancel(context.DeadlineExceeded)
	}
}

func (t *attemptTimer) parentDone() {
	if c := t.cur.Load(); c != nil {
		c.cancel(c.Context.Err())
	}
}

// attemptScope is what release needs to undo startAttempt.
type attemptScope struct {
	ctx        *attemptCtx
	timer      *attemptTimer
	stopParent func() bool // nil when the parent cannot be cancelled
}

// startAttempt returns a context that is cancelled by the parent, or with
// DeadlineExceeded after d, whichever comes first. Call release when the
// attempt returns.
func (p *Policy) startAttempt(parent context.Context, d time.Duration) attemptScope {
	deadline := time.Now().Add(d)
	if dl, ok := parent.Deadline(); ok && dl.Before(deadline) {
		deadline = dl // as context.WithDeadline reports it
	}
	c := &attemptCtx{Context: parent, deadline: deadline}
	s := attemptScope{ctx: c}
	if err := parent.Err(); err != nil {
		c.cancel(err) // as context.WithTimeout does: no timer, already done
		return s
	}
	t, _ := p.timers.Get().(*attemptTimer)
	if t == nil {
		t = &attemptTimer{}
		t.onParent = t.parentDone
		t.cur.Store(c)
		t.t = time.AfterFunc(d, t.expire)
	} else {
		t.cur.Store(c)
		t.t.Reset(d)
	}
	s.timer = t
	if parent.Done() != nil {
		// The stdlib links a derived context into its parent's children
		// without a goroutine only for its own types; context.AfterFunc is
		// the public way that costs no goroutine either.
		s.stopParent = context.AfterFunc(parent, t.onParent)
	}
	return s
}

// release ends the attempt; call it once. The context is cancelled
// (Canceled, unless the timer or the parent got there first, whose error
// stays), and the timer goes back to the pool if neither callback started.
func (p *Policy) release(s attemptScope) {
	s.ctx.cancel(context.Canceled)
	if s.timer == nil {
		return
	}
	reusable := s.timer.t.Stop()
	if s.stopParent != nil && !s.stopParent() {
		reusable = false
	}
	if reusable {
		s.timer.cur.Store(nil)
		p.timers.Put(s.timer)
	}
}
