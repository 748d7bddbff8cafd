package resilience

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/bulkhead"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/ratelimiter"
	"github.com/failsafe-go/failsafe-go/retrypolicy"
	"github.com/failsafe-go/failsafe-go/timeout"

	"github.com/cairnstore/cairn/internal/fault"
)

// Policy is the chain of policies around the calls to one backend. Build one
// per backend with New and share it: its breaker, budget, bulkhead and rate
// limiter are that backend's. Policy is safe for concurrent use.
type Policy struct {
	cfg    Config
	budget *Budget
	brk    *breaker
	exec   failsafe.Executor[struct{}] // the composed chain; WithContext per call
	// bulkExec is exec with a longer attempt timeout (WithBulkTransfer).
	bulkExec failsafe.Executor[struct{}]
	// throttles is Config.Observer if it counts throttled answers; else nil.
	throttles ThrottleObserver
}

// New builds the policy chain for one backend, or returns a Config-class
// error naming the bad setting.
func New(cfg Config) (*Policy, error) {
	c := cfg.withDefaults()
	if err := c.validate(); err != nil {
		return nil, err
	}
	p := &Policy{cfg: c, budget: NewBudget(c.BudgetShare, max(c.BudgetMinRetries, 0), c.BudgetWindow, c.Now)}
	p.brk = newBreaker(c, countsAsFailure)
	p.throttles, _ = c.Observer.(ThrottleObserver)

	// Outermost first; see "Policy order" in docs/design/resilience.md.
	chain := []failsafe.Policy[struct{}]{p.retryPolicy(), p.brk.consec, p.brk.rate}
	if c.RatePerSecond > 0 {
		chain = append(chain, ratelimiter.NewSmoothBuilder[struct{}](c.RatePerSecond, time.Second).
			WithMaxWaitTime(c.QueueWait).Build())
	}
	if c.MaxConcurrent > 0 {
		chain = append(chain, bulkhead.NewBuilder[struct{}](uint(c.MaxConcurrent)).
			WithMaxWaitTime(c.QueueWait).Build())
	}
	// The same policies (one breaker, one budget) with a longer attempt
	// for bulk transfers (WithBulkTransfer).
	bulk := slices.Clone(chain)
	if c.AttemptTimeout > 0 {
		chain = append(chain, timeout.New[struct{}](c.AttemptTimeout))
		bulk = append(bulk, timeout.New[struct{}](bulkAttempts*c.AttemptTimeout))
	}
	p.exec, p.bulkExec = failsafe.With(chain...), failsafe.With(bulk...)
	return p, nil
}

// bulkAttempts is how many attempt timeouts a bulk transfer's attempt may
// take: a catch-up pack's part of 8 MiB in a minute needs 140 KB/s, where
// 10 s needed 0.8 MB/s and a slower link never got a pack across.
const bulkAttempts = 6

type bulkKey struct{}

// WithBulkTransfer marks calls made with ctx as bulk transfers (a
// catch-up pack's parts), whose attempts may take bulkAttempts times the
// attempt timeout.
func WithBulkTransfer(ctx context.Context) context.Context {
	return context.WithValue(ctx, bulkKey{}, true)
}

func (p *Policy) retryPolicy() retrypolicy.RetryPolicy[struct{}] {
	c := p.cfg
	b := retrypolicy.NewBuilder[struct{}]().
		HandleIf(func(_ struct{}, err error) bool { return retryable(err) }).
		AbortIf(func(_ struct{}, err error) bool { return !p.mayRetry(err) }).
		// mayRetry took a budget token before failsafe knew the attempts or
		// the elapsed time were exhausted; give it back.
		OnRetriesExceeded(func(failsafe.ExecutionEvent[struct{}]) { p.budget.refund() })
	if ro, ok := c.Observer.(RetryObserver); ok {
		b = b.OnRetry(func(failsafe.ExecutionEvent[struct{}]) { ro.OnRetry(c.Backend) }).
			OnAbort(func(e failsafe.ExecutionEvent[struct{}]) {
				// mayRetry refused. It is asked after the last attempt too,
				// where no retry was due; and a Retry-After too long is not
				// the budget's doing.
				if e.Attempts() >= c.MaxAttempts || e.ElapsedTime() > c.MaxElapsed {
					return
				}
				if ra, ok := fault.RetryAfter(e.LastError()); ok && ra > c.MaxRetryAfter {
					return
				}
				ro.OnBudgetRejection(c.Backend)
			})
	}
	return b.
		WithMaxAttempts(c.MaxAttempts).
		WithMaxDuration(c.MaxElapsed).
		WithDelayFunc(p.delay).
		ReturnLastFailure().
		Build()
}

// mayRetry is asked once per retryable failure. A Retry-After longer than
// MaxRetryAfter is not waited for (the caller gets the error and the hint);
// otherwise the retry budget decides.
func (p *Policy) mayRetry(err error) bool {
	if ra, ok := fault.RetryAfter(err); ok && ra > p.cfg.MaxRetryAfter {
		return false
	}
	return p.budget.TryRetry()
}

// delay is full-jitter exponential backoff, but never shorter than the
// server's Retry-After (SlowDown carries one, see fault.FromS3).
func (p *Policy) delay(exec failsafe.ExecutionAttempt[struct{}]) time.Duration {
	d := fullJitter(exec.Attempts(), p.cfg.BaseDelay, p.cfg.MaxDelay, p.cfg.Rand)
	if ra, ok := fault.RetryAfter(exec.LastError()); ok {
		d = max(d, ra)
	}
	return d
}

// classOf is fault.ClassOf that also knows failsafe's own errors.
func classOf(err error) fault.Class {
	switch {
	case errors.Is(err, timeout.ErrExceeded):
		return fault.Transient
	case errors.Is(err, circuitbreaker.ErrOpen), errors.Is(err, bulkhead.ErrFull),
		errors.Is(err, ratelimiter.ErrExceeded):
		return fault.Exhausted
	}
	return fault.ClassOf(err)
}

// retryable: only classes whose action is Retry (Transient); corruption,
// configuration, invalid input, not-found and an open breaker never are.
func retryable(err error) bool {
	return classOf(err).Policy().Action == fault.Retry
}

// countsAsFailure decides what the breaker counts against the backend. A
// full bulkhead or a spent rate limit is our own limit, not the backend
// failing, and a cancelled caller is nobody's failure.
func countsAsFailure(_ struct{}, err error) bool {
	if err == nil || errors.Is(err, bulkhead.ErrFull) || errors.Is(err, ratelimiter.ErrExceeded) {
		return false
	}
	return classOf(err).Policy().CountsAsFailure
}

// State returns the backend's breaker state.
func (p *Policy) State() State { return p.brk.state() }

// OpenFor is how long the breaker stays open before it lets a probe
// through; 0 when it is not open. A caller that skipped the backend can
// come back then instead of polling.
func (p *Policy) OpenFor() time.Duration {
	if p.State() != Open {
		return 0
	}
	return p.brk.remaining()
}

// Budget returns the backend's retry budget (for metrics and tests).
func (p *Policy) Budget() *Budget { return p.budget }

// Run calls fn under the policy chain: retried on transient errors with
// full-jitter backoff within the budget, each attempt under the per-attempt
// timeout (fn must honour the context it is given), refused at once when
// the breaker is open or the bulkhead or rate limit is full.
//
// Outcomes (every non-nil error is classified and carries Op and Backend):
//   - nil: an attempt succeeded.
//   - fn's last error: not retryable, attempts, elapsed time or budget spent,
//     or a Retry-After longer than MaxRetryAfter.
//   - Exhausted "circuit breaker open", with RetryAfter = the remaining open
//     delay; fn was not called.
//   - Exhausted "bulkhead full" / "rate limit exceeded"; fn was not called.
//   - Transient wrapping timeout.ErrExceeded: the last attempt timed out.
//   - Canceled: ctx was cancelled.
func (p *Policy) Run(ctx context.Context, op string, fn func(context.Context) error) error {
	ex := p.exec
	if bulk, _ := ctx.Value(bulkKey{}).(bool); bulk {
		ex = p.bulkExec
	}
	_, err := ex.WithContext(ctx).GetWithExecution(func(exec failsafe.Execution[struct{}]) (struct{}, error) {
		if exec.IsFirstAttempt() {
			p.budget.RecordFirst()
		}
		err := fn(exec.Context())
		if p.throttles != nil && err != nil && fault.IsThrottled(err) {
			p.throttles.OnThrottled(p.cfg.Backend)
		}
		return struct{}{}, err
	})
	if err != nil {
		return p.classify(op, err)
	}
	return nil
}

// classify turns what comes out of failsafe into a fault error with context.
func (p *Policy) classify(op string, err error) error {
	ctx := fault.Context{Op: op, Backend: p.cfg.Backend}
	switch {
	case errors.Is(err, circuitbreaker.ErrOpen):
		return fault.WithRetryAfter(fault.E(fault.Exhausted, ctx, err), p.brk.remaining())
	case errors.Is(err, bulkhead.ErrFull), errors.Is(err, ratelimiter.ErrExceeded):
		return fault.E(fault.Exhausted, ctx, err)
	case errors.Is(err, timeout.ErrExceeded):
		return fault.E(fault.Transient, ctx, err)
	}
	return fault.E(fault.Unknown, ctx, err)
}

// Get is Run for a call that returns a value.
func Get[R any](ctx context.Context, p *Policy, op string, fn func(context.Context) (R, error)) (R, error) {
	var r R
	err := p.Run(ctx, op, func(ctx context.Context) error {
		v, err := fn(ctx)
		if err == nil {
			r = v
		}
		return err
	})
	return r, err
}

// Fallback produces a degraded answer when the backend cannot: what the
// cache holds, say. cause is the classified error of the failed call.
type Fallback[R any] func(ctx context.Context, cause error) (R, error)

// GetOrFallback is Get with graceful degradation: when the call fails with a
// failure of the dependency (Transient, Exhausted — open breaker included —,
// Corruption or Unknown), fb is asked instead and degraded is true when its
// answer is used. The caller marks such an answer as stale (the server sets
// a header). Answers like NotFound or Invalid and a cancelled caller are
// returned as they are: a fallback must not hide them.
//
// Outcomes: (v, false, nil) fresh; (v, true, nil) from fb; (zero, false,
// err) not degradable; (zero, true, err) fb failed too, err is fb's error
// joined with the cause.
func GetOrFallback[R any](ctx context.Context, p *Policy, op string, fn func(context.Context) (R, error), fb Fallback[R]) (v R, degraded bool, err error) {
	v, err = Get(ctx, p, op, fn)
	if err == nil || fb == nil || !degradable(err) {
		return v, false, err
	}
	v, ferr := fb(ctx, err)
	if ferr != nil {
		var zero R
		return zero, true, errors.Join(ferr, err)
	}
	return v, true, nil
}

func degradable(err error) bool {
	switch fault.ClassOf(err) {
	case fault.Transient, fault.Exhausted, fault.Corruption, fault.Unknown:
		return true
	}
	return false
}
