package reconcile

import (
	"context"
	"errors"
	"slices"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/cairnstore/cairn/internal/fault"
)

// ScrubObserver is optionally implemented by a Config.Observer
// (*telemetry.Metrics does): it hears of the scrub's progress.
type ScrubObserver interface {
	// ScrubObjects: n more objects read and verified by the scrub.
	ScrubObjects(backend string, n int)
	// ScrubCycle: the scrub walked every tenant's objects, in d.
	ScrubCycle(backend string, d time.Duration)
	// ScrubFailed: the scrub's walk of one tenant's objects ended in an
	// error (not an unavailable backend, where the walk waits): the rest
	// of that tenant goes unverified until the next cycle.
	ScrubFailed(backend string)
	// ScrubFailing: n tenants' last walk ended in an error. A tenant
	// whose walk fails every cycle stays in it however long a cycle
	// takes, where the failures' rate falls as cycles lengthen.
	ScrubFailing(backend string, n int)
}

// defaultScrubTick is how often Run gives the scrub a turn of
// Config.ScrubRate × the tick's objects.
const defaultScrubTick = time.Second

// scrubber is the scrub: a walk over every object of every tenant the
// engine serves, one tenant after the other, reading and verifying each
// object as a round would (a round with verify set: every listed object
// is read, and what it finds is handled as a round handles it, a damaged
// object quarantined and repaired, a missing one uploaded again). Each
// tenant's walk ends with the digest corrections of a whole listing (see
// correct), so a delta a node never published is repaired by the scrub
// too. It exists because digests let rounds skip what no node changed,
// and nothing a node does changes when an object is damaged or removed
// behind its back. It lives on Run's goroutine; its position is in memory
// only, so a restarted node starts a new cycle.
type scrubber struct {
	e       *Engine
	tenants []string // the cycle's tenants not walked yet, next first
	r       *round   // the walk of tenants[0]; nil before it starts
	started time.Time
	credit  float64         // objects allowed and not yet walked, below one
	failing map[string]bool // the tenants whose last walk ended in an error
}

// turn walks up to ScrubRate × the engine's scrub tick objects, and no
// more than the backend's call rate (Limits.OpsPerSec) allows in a tick:
// a turn holds Run, so one that the rate limit stretched past its tick
// would hold up uploads for as long.
func (s *scrubber) turn(ctx context.Context) {
	e := s.e
	rate := e.cfg.ScrubRate
	if ops := e.cfg.Limits.OpsPerSec; ops > 0 {
		rate = min(rate, ops/2) // a read, and the listing's share and a repair's
	}
	s.credit += rate * e.scrubTick.Seconds() // rates below one a tick add up over ticks
	budget := int(s.credit)
	s.credit -= float64(budget)
	cycled := false // at most one new cycle a turn: small tenants are not read over and over
	for budget > 0 && ctx.Err() == nil {
		if s.r == nil {
			if len(s.tenants) == 0 {
				if cycled || !s.newCycle(ctx) {
					return
				}
				cycled = true
			}
			r, err := e.startRoundMode(ctx, s.tenants[0], true)
			if err != nil {
				return // the backend or the store failed: the next tick tries again
			}
			s.r = r
		}
		before := s.r.st.Scanned
		done, err := s.r.step(ctx, budget)
		n := s.r.st.Scanned - before
		budget -= max(n, 1)
		if o, ok := e.cfg.Observer.(ScrubObserver); ok && n > 0 {
			o.ScrubObjects(e.name, n)
		}
		switch {
		case errors.Is(err, ErrBackendUnavailable) || ctx.Err() != nil:
			return // keep the position: the walk goes on when the backend answers
		case err == nil && !done:
			continue
		}
		s.finish(ctx, err)
	}
}

// newCycle starts a cycle over the tenants the engine serves; false when
// there are none or they cannot be listed.
func (s *scrubber) newCycle(ctx context.Context) bool {
	e := s.e
	if !s.started.IsZero() {
		if o, ok := e.cfg.Observer.(ScrubObserver); ok {
			o.ScrubCycle(e.name, e.cfg.Now().Sub(s.started))
		}
	}
	tenants, err := e.knownTenants(ctx)
	if err != nil || len(tenants) == 0 {
		s.started = time.Time{}
		return false
	}
	s.tenants, s.started = tenants, e.cfg.Now()
	for t := range s.failing { // a tenant no longer served is not failing
		if !slices.Contains(tenants, t) {
			delete(s.failing, t)
		}
	}
	s.reportFailing()
	return true
}

// reportFailing tells the observer how many tenants' last walk failed.
func (s *scrubber) reportFailing() {
	if o, ok := s.e.cfg.Observer.(ScrubObserver); ok {
		o.ScrubFailing(s.e.name, len(s.failing))
	}
}

// finish ends the current tenant's walk after err (nil: it reached the
// end) and moves to the next tenant.
func (s *scrubber) finish(ctx context.Context, err error) {
	e, r := s.e, s.r
	s.r, s.tenants = nil, s.tenants[1:]
	if err == nil || errors.Is(err, ErrNeedsConfirm) {
		if s.failing[r.tenant] {
			delete(s.failing, r.tenant)
			s.reportFailing()
		}
	}
	if err == nil {
		e.digestsAfter(ctx, r)
		return
	}
	if errors.Is(err, ErrNeedsConfirm) {
		e.warnHeld(ctx, r.tenant, "scrub", err)
		return
	}
	if s.failing == nil {
		s.failing = map[string]bool{}
	}
	s.failing[r.tenant] = true
	s.reportFailing()
	if o, ok := e.cfg.Observer.(ScrubObserver); ok {
		o.ScrubFailed(e.name)
	}
	e.warnRepeated(ctx, "scrub "+r.tenant, "reconcile: scrub of a tenant failed", "backend", e.name, "tenant", r.tenant,
		"cursor", r.cursor, "class", fault.ClassOf(err).String(), "err", err)
}

// Scrub walks all of tenant's objects now, reading and verifying each as
// the scrub does, without its rate: for tests and operators' tools.
func (e *Engine) Scrub(ctx context.Context, tenant string) (Stats, error) {
	r, err := e.startRoundMode(ctx, tenant, true)
	if err != nil {
		return Stats{Tenant: tenant}, err
	}
	_, err = r.step(ctx, 0)
	if err == nil {
		e.digestsAfter(ctx, r)
	}
	r.st.Duration = e.cfg.Now().Sub(r.st.Started)
	return r.st, err
}

// noSpan is the span of a scrub's round: the scrub is not traced.
var noSpan = trace.SpanFromContext(context.Background())
