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
// Retry, breaker, bulkhead, rate limiter and timeout are failsafe-go's
// (v0.9.8); this package owns the classification and the wiring. Three
// deviations, each with its reason:
//   - Backoff: failsafe's jitter is centred on the exponential curve
//     (d ± f·d); we want full jitter, uniform in [0, min(cap, base·2^n)),
//     so the delay is computed here and passed with WithDelayFunc.
//   - Budget: failsafe's budget bounds retries among executions in flight
//     at one instant; the issue asks for retries ≤ share × first attempts
//     over a sliding window, so [Budget] is ours, consulted through the
//     retry policy's public AbortIf hook.
//   - Fast path: on the reference machine failsafe's executor costs about
//     2.7 µs and 34 allocations per successful call (it builds one executor
//     object per policy per call), against a target of < 1 µs and ≤ 2. The
//     first attempt therefore runs outside the executor, through the same
//     failsafe policy objects' public permit APIs, whenever both breakers
//     are closed and the bulkhead and rate limiter have a permit at once. A
//     retryable failure hands over to the full chain, which replays it as
//     attempt 1 (so failsafe still owns attempts, backoff, budget and
//     elapsed time). The per-attempt timeout on that path is our own
//     context type; see "Per-attempt timeout". Measurements:
//     docs/benchmarks.md § 5.
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
// # Per-attempt timeout
//
// On the fast path the per-attempt timeout is an attemptCtx, not
// context.WithTimeout: with no caller deadline (the reconciler's and
// uploader's calls) WithTimeout cost 4 allocations (timer context, runtime
// timer, its callback closure, the cancel func) and a fifth once the
// callee asks for Done, against a target of ≤ 2 for the whole call.
// attemptCtx costs one allocation (itself) and its Done channel, made only
// when asked for. What makes that possible is that the timer is reused:
// each Policy keeps idle time.AfterFunc timers, their callback bound once,
// in a sync.Pool, and arms one per attempt with Reset. The same context
// type with a fresh time.AfterFunc per attempt measured 4 allocations (5
// with Done), no better than WithTimeout (docs/benchmarks.md § 5).
// A timer heap owned by one goroutine per Policy (not built) could also
// reach one allocation, but it needs Policy.Close, an owner for the
// goroutine and its own locking; the pool needs none of these.
//
// Pooling is safe for the timer and not for the context: the callee never
// sees the timer, but it may keep the context (a goroutine it started, a
// request it queued) after the attempt returns, and must then find it
// cancelled, not reused by another attempt. So the context is a fresh
// allocation each time. A timer goes back to the pool only when Stop, and
// the parent's stop, report that its callback never started; one whose
// callback did start is left to the GC, so a late callback can never
// cancel a later attempt (TestAttemptCtxNoCrossTalk).
//
// The parent's cancellation reaches the attempt through context.AfterFunc
// (no goroutine), registered only when the parent can be cancelled; that
// costs two allocations more. A context the callee derives from the
// attempt's (net/http's Transport derives one per request) links itself
// through attemptCtx's AfterFunc method, the stdlib's hook for contexts it
// does not know, instead of starting a goroutine to watch Done.
// TestAttemptCtxConformance runs the same assertions against attemptCtx
// and context.WithTimeout.
//
// # Request deadline
//
// [Deadlines.Context] bounds every write request the server serves, so its
// cost is paid per request. It returns a lazyDeadline: the deadline and
// the parent, and nothing else until someone asks for Done. Err compares
// the clock with the deadline, and keeps the first error it reports; Done
// makes the context.WithDeadline that then stands for it (arm), or one
// that has already ended as Err said (TestRequestDeadlineErrSticks). A PUT that finds room in the store's queue
// never asks (the store checks Err when it takes the write), so it costs
// two allocations and no timer, against context.WithTimeout's four and a
// timer, which was 3.7% of a node's CPU under durable PUTs
// (docs/benchmarks.md § 3). A mutex orders arm against cancel, so a Done
// racing the request's end still ends closed (TestRequestDeadlineCancel).
//
// # Concurrency
//
// Policy, Budget and Limiter are safe for concurrent use. Budget and
// Limiter each have one mutex; the breaker's reporting mutex is taken
// before a failsafe breaker's own (see breaker); attemptCtx has one, never
// held while its AfterFunc callbacks run. Nothing here starts a goroutine
// that outlives a call: a per-attempt timer that fires runs its callback
// in a goroutine time.AfterFunc starts, which only cancels a context.
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
//   - The fast path's per-attempt context (attemptCtx) is skipped when the
//     caller's deadline is sooner. When made, it costs 1 allocation, 2 once
//     the callee asks for Done, 2 more when the caller's context can be
//     cancelled (measured: 3 with a cancellable parent and no Done).
//   - A Policy's pooled timers belong to the synctest bubble (or the
//     outside) where they were made: a Policy must be built and used in
//     the same bubble. Misuse is loud: the runtime aborts when a bubbled
//     timer is stopped or reset from outside, and a real timer waited on
//     inside a bubble typically shows as a synctest deadlock.
//   - context.Cause of an attempt context that timed out reports the
//     parent's cause if the parent is cancelled later; Err stays
//     DeadlineExceeded. (context.WithTimeout keeps DeadlineExceeded.)
//   - attemptCtx's AfterFunc method runs its callbacks synchronously on
//     cancel; only the stdlib calls it (for derived contexts), with a
//     callback that cannot block.
//   - A tenant evicted from the Limiter's LRU comes back with a full token
//     bucket: bounded memory's price.
package resilience
