// Package deadline carries a request's deadline in its context as a plain
// value, so that a request which never waits costs no timer.
//
// A write request that finds room in the store's queue never waits on its
// context: the store checks the deadline when it takes the write, and
// that check is a clock read. context.WithDeadline would arm a timer and
// link the request into its parent's cancellation for every request,
// which is a measurable share of a durable PUT (docs/performance.md,
// "Mechanisms that replace the standard library"). So the server puts the
// deadline in the context with [With], code that only checks calls [Err],
// and code that must be woken at the deadline makes the standard timer
// with [Bound] at the point where it waits.
//
// # Use
//
//	ctx = deadline.With(r.Context(), time.Now().Add(5*time.Second), false)
//	if err := deadline.Err(ctx); err != nil { … } // instead of ctx.Err()
//	wctx, cancel := deadline.Bound(ctx)            // before waiting on Done
//	defer cancel()
//
// # Concurrency
//
// Everything here is a pure function of the context and the clock; safe
// for concurrent use.
//
// # Sharp edges
//
// The carried deadline is invisible to ctx.Deadline, ctx.Err and ctx.Done:
// code that receives such a context and waits must call Bound first, or
// it waits past the deadline. A context derived with
// context.WithoutCancel keeps the value (it keeps every value); [Without]
// drops it, for work that is meant to outlive the request's deadline.
package deadline

import (
	"context"
	"errors"
	"time"
)

type key struct{}

// carried is the value With stores.
type carried struct {
	at time.Time
	// client: the deadline is the one the client asked for and no sooner
	// deadline of the parent's comes first.
	client bool
}

// With returns parent carrying the deadline at. client says the deadline
// is the one the request's client asked for, rather than the server's
// default or maximum (see [ClientExceeded]); it is ignored when parent
// already has a sooner deadline, which is then not the client's.
func With(parent context.Context, at time.Time, client bool) context.Context {
	if client {
		if pd, ok := parent.Deadline(); ok && pd.Before(at) {
			client = false
		}
	}
	return context.WithValue(parent, key{}, &carried{at: at, client: client})
}

// Without returns ctx without a carried deadline (its values, cancellation
// and standard deadline stay).
func Without(ctx context.Context) context.Context {
	if from(ctx) == nil {
		return ctx
	}
	return context.WithValue(ctx, key{}, (*carried)(nil))
}

// At returns the deadline ctx carries, if any (not ctx.Deadline's).
func At(ctx context.Context) (time.Time, bool) {
	if c := from(ctx); c != nil {
		return c.at, true
	}
	return time.Time{}, false
}

// Err is ctx.Err, and context.DeadlineExceeded once the carried deadline
// has passed.
func Err(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if c := from(ctx); c != nil && !time.Now().Before(c.at) {
		return context.DeadlineExceeded
	}
	return nil
}

// Bound returns ctx with the carried deadline made a standard one
// (context.WithDeadline), for code about to wait on Done; without a
// carried deadline it returns ctx and a cancel that does nothing. Call
// cancel when the wait is over.
func Bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if c := from(ctx); c != nil {
		return context.WithDeadline(ctx, c.at)
	}
	return ctx, func() {}
}

// ClientExceeded reports whether ctx has ended (by [Err]) because the
// deadline the client asked for passed: With was given client true, no
// sooner deadline of the parent's applied, and the carried deadline itself
// has passed (a sooner deadline of a context derived from ctx is not the
// client's).
func ClientExceeded(ctx context.Context) bool {
	c := from(ctx)
	return c != nil && c.client && !time.Now().Before(c.at) && errors.Is(Err(ctx), context.DeadlineExceeded)
}

func from(ctx context.Context) *carried {
	c, _ := ctx.Value(key{}).(*carried)
	return c
}
