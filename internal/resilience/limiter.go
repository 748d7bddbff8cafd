package resilience

import (
	"container/list"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/cairnstore/cairn/internal/fault"
)

// LimiterConfig configures server-side load shedding. Zero fields take the
// defaults of DefaultLimiterConfig.
type LimiterConfig struct {
	MaxInFlight       int           // requests in flight on the node; beyond: 503
	TenantMaxInFlight int           // requests in flight per tenant; beyond: 429
	TenantRate        float64       // requests per second per tenant (token bucket); beyond: 429
	TenantBurst       int           // token bucket depth
	MaxTenants        int           // per-tenant states kept (LRU); bounds memory
	BusyRetryAfter    time.Duration // Retry-After of a 503 or a concurrency 429
	// AuthFailureRate and AuthFailureBurst bound the requests that fail
	// authentication, node-wide (token bucket, see [Limiter.AuthFailed]).
	AuthFailureRate  float64
	AuthFailureBurst int
	Now              func() time.Time
}

// DefaultLimiterConfig returns the defaults.
func DefaultLimiterConfig() LimiterConfig {
	return LimiterConfig{
		MaxInFlight:       1024,
		TenantMaxInFlight: 64,
		TenantRate:        200,
		TenantBurst:       400,
		MaxTenants:        10000,
		BusyRetryAfter:    time.Second,
		AuthFailureRate:   100,
		AuthFailureBurst:  200,
	}
}

// Decision is the Limiter's answer for one request.
type Decision struct {
	Admit      bool
	Status     int           // 503 (node busy) or 429 (tenant over its share) when not admitted
	RetryAfter time.Duration // when not admitted
	Reason     string        // for the error message
}

// Limiter admits or sheds requests at once — it never queues: a global
// in-flight limit (503), and per tenant a concurrency limit and a token
// bucket (429). Per-tenant state lives in an LRU of MaxTenants entries, so
// memory is bounded whatever tenant ids clients send.
//
// It is meant for authenticated requests: charged before authentication,
// anyone who can name a tenant could spend its budget. Requests that fail
// authentication have a node-wide budget of their own ([Limiter.AuthFailed]).
//
// Limiter is safe for concurrent use.
type Limiter struct {
	cfg      LimiterConfig
	inFlight atomic.Int64  // node-wide requests admitted and not yet released
	failed   *rate.Limiter // requests that failed authentication; safe for concurrent use
	// Requests shed since the limiter was made: at the node's MaxInFlight,
	// and over a tenant's share (Shed).
	shedBusy, shedTenant atomic.Int64

	mu      sync.Mutex // guards tenants and lru, and every tenantState
	tenants map[string]*list.Element
	lru     *list.List // of *tenantState, most recently used at the front
}

type tenantState struct {
	name     string
	inFlight int
	tokens   float64
	last     time.Time // tokens were computed at
}

// NewLimiter returns a Limiter, or a Config-class error naming a bad setting.
func NewLimiter(cfg LimiterConfig) (*Limiter, error) {
	c := cfg.withDefaults()
	if c.MaxInFlight < 1 || c.TenantMaxInFlight < 1 || c.TenantRate <= 0 || c.TenantBurst < 1 ||
		c.MaxTenants < 1 || c.BusyRetryAfter < 0 || c.AuthFailureRate <= 0 || c.AuthFailureBurst < 1 {
		return nil, fault.New(fault.Config, fault.Context{Op: "resilience.newlimiter"},
			"resilience: LimiterConfig limits must be positive")
	}
	return &Limiter{cfg: c, tenants: make(map[string]*list.Element), lru: list.New(),
		failed: rate.NewLimiter(rate.Limit(c.AuthFailureRate), c.AuthFailureBurst)}, nil
}

func (c LimiterConfig) withDefaults() LimiterConfig {
	d := DefaultLimiterConfig()
	orDefault(&c.MaxInFlight, d.MaxInFlight)
	orDefault(&c.TenantMaxInFlight, d.TenantMaxInFlight)
	orDefault(&c.TenantRate, d.TenantRate)
	orDefault(&c.TenantBurst, d.TenantBurst)
	orDefault(&c.MaxTenants, d.MaxTenants)
	orDefault(&c.BusyRetryAfter, d.BusyRetryAfter)
	orDefault(&c.AuthFailureRate, d.AuthFailureRate)
	orDefault(&c.AuthFailureBurst, d.AuthFailureBurst)
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Acquire decides for one request of tenant. When d.Admit, the caller must
// call Release(tenant) when the request is done.
//
// Outcomes:
//   - admitted;
//   - 503, Retry-After BusyRetryAfter: the node has MaxInFlight requests;
//   - 429, Retry-After BusyRetryAfter: the tenant has TenantMaxInFlight;
//   - 429, Retry-After until the next token: the tenant's rate is spent.
func (l *Limiter) Acquire(tenant string) Decision { return l.AcquireN(tenant, 1) }

// AcquireN decides for one request of tenant that acts on n documents (a
// RESP MSET, MGET or DEL of n keys), as Acquire does, but takes n of the
// tenant's rate: one token admits it, and the rest are owed, so that the
// tenant's next requests wait until the rate has paid for them. A request
// of more documents than MaxN (the burst) is refused with 413 and no
// Retry-After: it could never be paid for, and admitting it for a burst
// would let one command take any multiple of the rate. Callers split
// such requests, or refuse them, before asking.
func (l *Limiter) AcquireN(tenant string, n int) Decision {
	if n > l.cfg.TenantBurst {
		return Decision{Status: http.StatusRequestEntityTooLarge,
			Reason: "the request acts on " + strconv.Itoa(n) + " documents, more than a tenant's burst of " + strconv.Itoa(l.cfg.TenantBurst)}
	}
	if l.inFlight.Add(1) > int64(l.cfg.MaxInFlight) {
		l.inFlight.Add(-1)
		l.shedBusy.Add(1)
		return Decision{Status: http.StatusServiceUnavailable, RetryAfter: l.cfg.BusyRetryAfter, Reason: "server busy"}
	}
	d := l.acquireTenant(tenant, max(n, 1))
	if !d.Admit {
		l.inFlight.Add(-1)
		l.shedTenant.Add(1)
	}
	return d
}

// MaxN is the most documents one request may act on: the tenant burst
// (AcquireN refuses more).
func (l *Limiter) MaxN() int { return l.cfg.TenantBurst }

// Shed returns how many requests the limiter has refused: busy at the
// node's MaxInFlight (503), tenant over a tenant's concurrency or rate
// (429). Requests refused for failed authentication are not counted.
func (l *Limiter) Shed() (busy, tenant int64) { return l.shedBusy.Load(), l.shedTenant.Load() }

func (l *Limiter) acquireTenant(tenant string, n int) Decision {
	now := l.cfg.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	ts := l.stateLocked(tenant, now)
	if ts.inFlight >= l.cfg.TenantMaxInFlight {
		return Decision{Status: http.StatusTooManyRequests, RetryAfter: l.cfg.BusyRetryAfter,
			Reason: "too many concurrent requests for tenant"}
	}
	ts.tokens = min(float64(l.cfg.TenantBurst), ts.tokens+now.Sub(ts.last).Seconds()*l.cfg.TenantRate)
	ts.last = now
	if ts.tokens < 1 {
		wait := time.Duration((1 - ts.tokens) / l.cfg.TenantRate * float64(time.Second))
		return Decision{Status: http.StatusTooManyRequests, RetryAfter: wait, Reason: "tenant request rate exceeded"}
	}
	ts.tokens = max(ts.tokens-float64(n), -float64(l.cfg.TenantBurst))
	ts.inFlight++
	return Decision{Admit: true}
}

// stateLocked finds or makes tenant's state, evicting the least recently
// used idle tenant when the LRU is full. A tenant with requests in flight
// is never evicted (its count would be lost); at most MaxInFlight tenants
// are busy, so the scan from the back finds an idle one within
// MaxInFlight+1 steps when MaxTenants > MaxInFlight, and otherwise the map
// grows past MaxTenants by at most MaxInFlight entries.
func (l *Limiter) stateLocked(tenant string, now time.Time) *tenantState {
	if e, ok := l.tenants[tenant]; ok {
		l.lru.MoveToFront(e)
		return e.Value.(*tenantState)
	}
	if l.lru.Len() >= l.cfg.MaxTenants {
		for e := l.lru.Back(); e != nil; e = e.Prev() {
			if ts := e.Value.(*tenantState); ts.inFlight == 0 {
				l.lru.Remove(e)
				delete(l.tenants, ts.name)
				break
			}
		}
	}
	// A new (or evicted and returning) tenant starts with a full bucket:
	// the price of bounded memory is that an evicted tenant gets its burst
	// again, which needs MaxTenants other tenants to have come in between.
	ts := &tenantState{name: tenant, tokens: float64(l.cfg.TenantBurst), last: now}
	l.tenants[tenant] = l.lru.PushFront(ts)
	return ts
}

// AuthFailed charges one request that failed authentication to the
// node-wide budget of such requests, which no tenant's budget shares, and
// reports whether it was within it. Outcomes:
//   - true: within budget; answer the request's 401 or 403;
//   - false, with the time until the budget has room again: answer 429
//     with that Retry-After, so clients that keep failing back off.
//
// It costs one token-bucket update under the bucket's lock, no allocation.
func (l *Limiter) AuthFailed() (ok bool, retryAfter time.Duration) {
	now := l.cfg.Now()
	if l.failed.AllowN(now, 1) {
		return true, 0
	}
	wait := (1 - l.failed.TokensAt(now)) / l.cfg.AuthFailureRate
	return false, time.Duration(wait * float64(time.Second))
}

// Release ends a request admitted by Acquire.
func (l *Limiter) Release(tenant string) {
	l.inFlight.Add(-1)
	l.mu.Lock()
	if e, ok := l.tenants[tenant]; ok {
		if ts := e.Value.(*tenantState); ts.inFlight > 0 {
			ts.inFlight--
		}
	}
	l.mu.Unlock()
}

// InFlight returns the node-wide requests in flight and the tenants tracked.
func (l *Limiter) InFlight() (requests int64, tenants int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.inFlight.Load(), l.lru.Len()
}
