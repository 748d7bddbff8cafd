package resilience

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/failsafe-go/failsafe-go/circuitbreaker"
)

// State is a circuit breaker's state as observers see it.
type State uint8

// The breaker states.
const (
	Closed   State = iota // calls go through; failures are counted
	Open                  // calls fail at once with class Exhausted
	HalfOpen              // a few probe calls go through; the rest fail at once
)

func (s State) String() string {
	switch s {
	case Open:
		return "open"
	case HalfOpen:
		return "half_open"
	}
	return "closed"
}

// Observer hears about breaker state changes. Telemetry implements it to
// turn them into logs, metrics and span events. OnStateChange is called
// synchronously, in order, with from equal to the previous call's to; it
// must be quick and must not call back into the Policy.
type Observer interface {
	OnStateChange(backend string, from, to State)
}

// RetryObserver is an optional capability of an Observer: it hears about
// each retry (an attempt after the first) and each retry the budget
// refused. Its methods are called from the calling goroutine and must be
// quick.
type RetryObserver interface {
	OnRetry(backend string)
	OnBudgetRejection(backend string)
}

// ThrottleObserver is told of each attempt the backend answered by asking
// to slow down ([fault.IsThrottled]), whether or not it was retried. Its
// method is called from the calling goroutine and must be quick.
type ThrottleObserver interface {
	OnThrottled(backend string)
}

// ObserverFunc adapts a function to an Observer.
type ObserverFunc func(backend string, from, to State)

// OnStateChange calls f.
func (f ObserverFunc) OnStateChange(backend string, from, to State) { f(backend, from, to) }

// breaker is the per-backend circuit breaker: two failsafe-go breakers
// composed, because one failsafe breaker thresholds either on a count
// (consecutive failures) or on a rate over a time window, and a backend
// must open on either: a burst of failures in a row, or a steady share of
// them. Either one opening makes the backend open; the state reported
// is the worst of the two.
type breaker struct {
	backend string
	consec  circuitbreaker.CircuitBreaker[struct{}] // opens on N failures in a row
	rate    circuitbreaker.CircuitBreaker[struct{}] // opens on failure rate over a window
	obs     Observer
	log     *slog.Logger

	// mu serialises state reports so that observers see a chain of
	// transitions (each from equal to the previous to) even when both
	// breakers change at once. Lock order: mu, then a failsafe breaker's
	// own lock (taken inside State()); failsafe calls our listener with its
	// lock released, so the reverse order never happens.
	mu   sync.Mutex
	last State // guarded by mu: the state last reported

	// failure is the last error counted against the backend: the log line
	// of a breaker opening names it, so that an operator sees why (a
	// refused connection, a timeout, a denied signature) without another
	// log line per failed call.
	failure atomic.Pointer[error]
}

func newBreaker(c Config, counts func(struct{}, error) bool) *breaker {
	b := &breaker{backend: c.Backend, obs: c.Observer, log: c.Logger}
	onChange := func(circuitbreaker.StateChangedEvent) { b.report() }
	// failsafe-go records every call counts does not call a failure as a
	// success, a call its caller cancelled included: a cancellation says
	// nothing of the backend, and as a failure a caller that keeps
	// cancelling (clients that give up on a slow backend) would hold the
	// breaker open against a backend that works. Callers must therefore not
	// cancel a call because a sibling failed or was refused
	// (reconcile's fanOut says why).
	counted := func(r struct{}, err error) bool {
		if !counts(r, err) {
			return false
		}
		b.failure.Store(&err)
		return true
	}
	b.consec = circuitbreaker.NewBuilder[struct{}]().
		HandleIf(counted).
		WithFailureThreshold(c.ConsecutiveFailures).
		WithSuccessThreshold(c.HalfOpenProbes).
		WithDelay(c.OpenDelay).
		OnStateChanged(onChange).
		Build()
	b.rate = circuitbreaker.NewBuilder[struct{}]().
		HandleIf(counted).
		WithFailureRateThreshold(c.FailureRate, c.MinCalls, c.FailureWindow).
		WithSuccessThreshold(c.HalfOpenProbes).
		WithDelay(c.OpenDelay).
		OnStateChanged(onChange).
		Build()
	return b
}

// state is the worst state of the two breakers.
func (b *breaker) state() State {
	worst := Closed
	for _, cb := range []circuitbreaker.CircuitBreaker[struct{}]{b.consec, b.rate} {
		switch cb.State() {
		case circuitbreaker.OpenState:
			return Open
		case circuitbreaker.HalfOpenState:
			worst = HalfOpen
		}
	}
	return worst
}

// remaining is how long until an open breaker lets a probe through.
func (b *breaker) remaining() time.Duration {
	return max(b.consec.RemainingDelay(), b.rate.RemainingDelay())
}

func (b *breaker) report() {
	b.mu.Lock()
	defer b.mu.Unlock()
	to := b.state()
	from := b.last
	if to == from {
		return
	}
	b.last = to
	level := slog.LevelInfo
	if to == Open {
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{slog.String("backend", b.backend), slog.String("from", from.String()), slog.String("to", to.String())}
	if err := b.failure.Load(); to == Open && err != nil {
		attrs = append(attrs, slog.String("err", (*err).Error()))
	}
	b.log.LogAttrs(context.Background(), level, "circuit breaker state change", attrs...)
	if b.obs != nil {
		b.obs.OnStateChange(b.backend, from, to)
	}
}
