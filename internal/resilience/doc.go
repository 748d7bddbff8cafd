// Package resilience wraps calls to a dependency (a storage backend, mostly)
// in composable policies — retry with full-jitter backoff, a retry budget,
// a circuit breaker, a rate limiter, a bulkhead, a per-attempt timeout and
// a fallback — and gives the HTTP server its load-shedding pieces. The
// design, and where it departs from failsafe-go and why, is
// docs/design/resilience.md.
//
// # Basics
//
// Build one [Policy] per backend with [New] and share it; call the backend
// through [Policy.Run], [Get] or [GetOrFallback]. Every error that comes out
// is a fault error with Op and Backend set; retry, breaker and fallback
// decisions all read the fault class (fault.Class.Policy), never strings:
// Transient errors are retried; Transient, Exhausted and Unknown count
// against the breaker; answers (not found, precondition failed), the
// policy's own refusals and a cancelled caller do not. An open breaker
// answers at once, class Exhausted, with Retry-After the remaining open
// delay. The server uses [Limiter] (via [Limiter.Middleware] after
// authentication, and [Limiter.AuthFailed] for the requests that fail it)
// and [Deadlines].
//
// Outermost first: fallback → retry (+ budget) → breaker → rate limiter →
// bulkhead → per-attempt timeout → the call.
//
// Defaults ([Defaults], [DefaultLimiterConfig]): 4 attempts, backoff
// ceiling 50ms doubling to 5s, 30s max elapsed, 10s per attempt,
// Retry-After honoured up to 30s; budget 20% of first attempts + 10 per 10s
// window; breaker opens on 5 consecutive failures or ≥ 50% failures over
// 30s with at least 20 calls, stays open 10s, closes after 3 good probes;
// 64 concurrent calls per backend, no queueing, no rate limit. Server: 1024
// requests in flight, 64 per tenant, 200/s per tenant with bursts of 400,
// 10000 tenants tracked, 100 failed authentications/s node-wide with
// bursts of 200, request deadline 5s.
//
// # Concurrency
//
// Policy, Budget and Limiter are safe for concurrent use. Budget and
// Limiter each have one mutex; the breaker's reporting mutex is taken
// before a failsafe breaker's own. Nothing here starts a goroutine that
// outlives a call.
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
