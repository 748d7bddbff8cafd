// Package resilience wraps calls to a dependency (a storage backend, mostly)
// in composable policies — retry with full-jitter backoff, a retry budget,
// a circuit breaker, a rate limiter, a bulkhead, a per-attempt timeout and
// a fallback — and gives the HTTP server its load-shedding pieces.
//
// # Basics
//
// Build one [Policy] per backend with [New] and share it; call the backend
// through [Policy.Run], [Get] or [GetOrFallback]. Every error that comes out
// is a fault error with Op and Backend set; retry, breaker and fallback
// decisions all read the fault class (fault.Class.Policy), never strings.
// The server uses [Limiter] (via [Limiter.Middleware] after authentication,
// and [Limiter.AuthFailed] for the requests that fail it) and [Deadlines].
//
// # Why failsafe-go
//
// Retry, breaker, bulkhead, rate limiter and timeout are failsafe-go's,
// used through its executor as it is designed; this package owns the
// classification and the wiring. Two deviations, each with its reason:
//   - Backoff: failsafe's jitter is centred on the exponential curve
//     (d ± f·d); we want full jitter, uniform in [0, min(cap, base·2^n)),
//     so the delay is computed here and passed with WithDelayFunc.
//   - Budget: failsafe's budget bounds retries among executions in flight
//     at one instant; retries must stay under a share of first attempts
//     over a sliding window, so [Budget] is ours, consulted through the
//     retry policy's public AbortIf hook.
//
// The executor costs a few microseconds and a few dozen allocations per
// call. Every call it wraps is a backend request (a file write, an S3
// round trip) made by the uploader, the reconciler or a catching-up
// node's read-through, never on the path of a cached GET, a durable PUT
// or an ingest.
//
// The breaker is two failsafe breakers composed: one failsafe breaker
// thresholds on a count (consecutive failures) or on a rate over a time
// window, not both. Either one opening opens the backend; the state
// reported is the worse of the two.
//
// # Policy order
//
// Outermost first: fallback → retry (+ budget) → breaker (consecutive,
// rate) → rate limiter → bulkhead → per-attempt timeout → the call.
// Retry outside the breaker so every attempt is counted and an open breaker
// stops the retries; rate limiter and bulkhead inside so their refusals are
// not counted as the backend failing; the timeout innermost so it bounds one
// attempt, not the whole call.
//
// # Per class
//
// Transient (timeouts, resets, 5xx, SlowDown) is retried. Corruption,
// configuration, invalid input, not-found, precondition and Exhausted (429,
// open breaker) are not. Transient, Exhausted and Unknown errors count
// against the breaker; answers (NotFound, PreconditionFailed, ...), our own
// bulkhead or rate refusals and a cancelled caller do not. An open breaker
// answers at once without calling, class Exhausted, with Retry-After the
// remaining open delay. A server's Retry-After (fault.RetryAfter) is a floor
// on the next delay; one longer than MaxRetryAfter is not waited for and
// goes back to the caller. Configuration errors from New name the setting.
//
// # Defaults
//
// See [Defaults] and [DefaultLimiterConfig]: 4 attempts, backoff ceiling
// 50ms doubling to 5s, 30s max elapsed, 10s per attempt, Retry-After
// honoured up to 30s; budget 20% of first attempts + 10 per 10s window;
// breaker opens on 5 consecutive failures or ≥ 50% failures over 30s with
// at least 20 calls, stays open 10s, closes after 3 good probes; 64
// concurrent calls per backend, no queueing, no rate limit. Server: 1024
// requests in flight, 64 per tenant, 200/s per tenant with bursts of 400,
// 10000 tenants tracked, 100 failed authentications/s node-wide with
// bursts of 200, request deadline 5s.
//
// # Request deadline
//
// [Deadlines.Context] bounds every write request the server serves with
// context.WithDeadline; [ClientDeadlineExceeded] tells the deadline the
// client asked for from the server's own.
//
// # Concurrency
//
// Policy, Budget and Limiter are safe for concurrent use. Budget and
// Limiter each have one mutex; the breaker's reporting mutex is taken
// before a failsafe breaker's own (see breaker). Nothing here starts a
// goroutine that outlives a call.
//
// # Sharp edges
//
//   - fn must honour its context: the per-attempt timeout cancels it, and
//     Run waits for fn to return.
//   - Config.Rand must be safe for concurrent use.
//   - Observer.OnStateChange is called synchronously under a mutex; it
//     must not call back into the Policy.
//   - MaxElapsed bounds when a retry may start, not how long an attempt in
//     flight runs; the caller's context bounds the whole call.
//   - A tenant evicted from the Limiter's LRU comes back with a full token
//     bucket: bounded memory's price.
package resilience
