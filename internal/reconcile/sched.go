package reconcile

import (
	"context"
	"errors"
	"slices"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/resilience"
)

// sched is Run's pass scheduler. It lives on Run's goroutine and is never
// shared.
//
// A pass gives every tenant turns in round-robin order: each turn handles
// up to Config.TurnKeys changes of the tenant's change log (the uploader)
// or up to TurnKeys keys of its round, the two alternating until the log
// is drained and then the round's alone, and puts the tenant at the back
// of the queue, until its round is done. The round's state (cursor, stats, guard
// counts, span) waits in the queue between turns; its listing pages do not
// (each turn lists afresh from the cursor), so a waiting tenant costs a few
// hundred bytes however large it is. A small tenant's round thus finishes
// within a few turns of the pass's start, whatever the size of the tenants
// before it.
//
// Backpressure: a turn lists a page only when it has handled the previous
// one, and handles one key at a time, each waiting for its backend calls
// (and the backend's Limits); a slow backend slows the listing, nothing
// queues up behind it. The only queues are Run's inboxes, all bounded:
// triggers (1, coalescing), changed (64; when full, Changed turns into a
// trigger, i.e. a pass, which drains every tenant) and requests
// (unbuffered: RunRound waits).
//
// An open breaker ends the pass: the rounds started are paused (their
// cursors saved, Progress showing ErrBackendUnavailable), the tenants not
// reached are skipped, and a timer brings the pass back when the breaker
// lets a probe through (Policy.OpenFor), whatever Config.Interval is.
type sched struct {
	e     *Engine
	queue []*turn     // the pass in progress: tenants waiting for a turn, next first
	again bool        // a pass was asked for while one was in progress
	retry *time.Timer // armed when an open breaker stopped a pass or an upload
	// retryArmed: retry is armed, or fired and not yet taken (retried).
	retryArmed bool

	// Coalescing (Config.CoalesceWindow): drained holds when each
	// tenant's last drain for Changed began; due the tenants whose next
	// drain waits for the window's end, and when it may begin; dueTimer
	// fires at the earliest of those.
	drained  map[string]time.Time
	due      map[string]time.Time
	dueTimer *time.Timer
}

// turn is one tenant's place in a pass.
type turn struct {
	tenant   string
	uploaded bool // its change log was drained (or failed to be)
	// roundNext gives the round the tenant's next turn after an upload
	// turn that left changes: the two take turns until the log is
	// drained, so that writes arriving as fast as a slow backend takes
	// them cannot hold the round (and what it downloads) back for good.
	roundNext bool
	restored  bool   // a restore from a pack was tried (restore.go)
	r         *round // nil until its round starts
	// discover marks the pass's last turn, which lists the backend's
	// tenants; covered holds the tenants the pass queued before it.
	discover bool
	covered  map[string]bool
}

// minRetry is the shortest wait before retrying a backend found
// unavailable, for when the breaker cannot say how long it stays open.
const minRetry = 100 * time.Millisecond

func (s *sched) busy() bool { return len(s.queue) > 0 }

func (s *sched) retryC() <-chan time.Time {
	if s.retry == nil {
		return nil
	}
	return s.retry.C
}

// start begins a pass over every tenant the engine serves: configured,
// in the store, or found in the backend. The backend's tenants are listed
// in the pass's last turn (discover), so a pass that an unavailable
// backend stops makes no more calls than its rounds; the tenants that
// listing finds for the first time get their turns in the same pass.
func (s *sched) start(ctx context.Context) {
	s.again = false
	s.queue = s.queue[:0]
	tenants, _ := s.e.knownTenants(ctx) // on an error, the tenants known so far still get their turns
	covered := make(map[string]bool, len(tenants))
	for _, tenant := range tenants {
		s.queue = append(s.queue, &turn{tenant: tenant})
		covered[tenant] = true
	}
	s.queue = append(s.queue, &turn{discover: true, covered: covered})
}

// discover lists the backend's tenants and queues those the pass did not
// include.
func (s *sched) discover(ctx context.Context, t *turn) {
	found, err := s.e.discoverRemote(ctx)
	if s.unavailable(ctx, err, "") {
		return
	}
	if err != nil && ctx.Err() == nil && s.e.cfg.Logger != nil {
		s.e.cfg.Logger.WarnContext(ctx, "reconcile: listing the backend's tenants failed", "backend", s.e.name,
			"class", fault.ClassOf(err).String(), "err", err)
	}
	for _, tenant := range found {
		if !t.covered[tenant] {
			s.queue = append(s.queue, &turn{tenant: tenant})
		}
	}
}

// turn gives the tenant at the head of the queue one turn, then publishes
// the digest changes of the writes made (a failed publish is kept for the
// next).
func (s *sched) turn(ctx context.Context) {
	defer func() { _ = s.e.PublishDigests(ctx) }()
	e, t := s.e, s.queue[0]
	s.queue = slices.Delete(s.queue, 0, 1)
	if t.discover {
		s.discover(ctx, t)
		return
	}
	if !t.uploaded && !t.roundNext {
		_, more, err := e.uploadSome(ctx, t.tenant, e.cfg.TurnKeys)
		if ctx.Err() != nil || s.unavailable(ctx, err, t.tenant) {
			return
		}
		if more && err == nil {
			t.roundNext = true
			s.queue = append(s.queue, t)
			return
		}
		t.uploaded = true // an error is in its Progress; the round goes on
	}
	t.roundNext = false
	if t.r == nil && !t.restored {
		// An empty tenant is restored from a catch-up pack before its
		// first round, in this one turn (restore.go).
		t.restored = true
		_, err := e.Restore(ctx, t.tenant)
		if ctx.Err() != nil || s.unavailable(ctx, err, t.tenant) {
			return
		}
	}
	if t.r == nil {
		r, err := e.startRound(ctx, t.tenant)
		if err != nil {
			s.leave(t)
			s.unavailable(ctx, err, t.tenant) // else in the tenant's Progress; the others go on
			return
		}
		t.r = r
	}
	done, err := t.r.step(ctx, e.cfg.TurnKeys)
	if !done && err == nil {
		s.queue = append(s.queue, t)
		return
	}
	_, err = e.finishRound(ctx, t.r, err)
	s.leave(t)
	s.unavailable(ctx, err, "")
}

// leave ends t's turns in the pass: what its log still holds (its round
// ended, or failed to start, before the log was drained) drains as
// Changed's news does, without marking it as lag again (upload has marked
// what this node wrote).
func (s *sched) leave(t *turn) {
	if !t.uploaded {
		s.e.tell(t.tenant, false)
	}
}

// serve runs a requested round now and answers it. A round of the tenant
// already started by the pass is carried to its end (with a confirmation
// given since it started) rather than started over; either way the pass
// gives the tenant no more turns.
func (s *sched) serve(ctx context.Context, req roundRequest) {
	e := s.e
	if req.confirm {
		e.Confirm(req.tenant)
	}
	var r *round
	if i := slices.IndexFunc(s.queue, func(t *turn) bool { return t.tenant == req.tenant }); i >= 0 {
		r = s.queue[i].r
		s.queue = slices.Delete(s.queue, i, i+1)
	}
	var st Stats
	var err error
	if r == nil {
		rctx := ctx
		if req.parent.IsValid() {
			rctx = trace.ContextWithRemoteSpanContext(ctx, req.parent)
		}
		st, err = e.Round(rctx, req.tenant)
	} else {
		r.confirmed = r.confirmed || e.takeConfirm(req.tenant)
		_, err = r.step(ctx, 0)
		st, err = e.finishRound(ctx, r, err)
	}
	req.reply <- roundReply{st, err}
	s.unavailable(ctx, err, "")
}

// changed handles Changed's news of tenant: a drain now (it reports
// true, and the drain's start is noted), or, within
// Config.CoalesceWindow of the tenant's last drain, one at the window's
// end. Every change told meanwhile rides on that one drain, which uploads
// each key of a page once, at its latest version: a key rewritten
// continuously is uploaded at most once a window, and a change waits at
// most a window longer than it would without coalescing (the first
// change after a quiet window is drained at once).
func (s *sched) changed(tenant string, now time.Time) bool {
	w := s.e.cfg.CoalesceWindow
	if w <= 0 {
		return true
	}
	if _, waiting := s.due[tenant]; waiting {
		return false // the drain at the window's end reads this change too
	}
	if at := s.drained[tenant].Add(w); now.Before(at) {
		s.wait(tenant, at)
		return false
	}
	s.markDrained(tenant, now)
	return true
}

// drainThenScrub gives the scrub its turn, after a drain if one is
// waiting. A drain is writes waiting for their upload, a scrub turn
// background reading that a backend's rate limit can stretch; taken at
// random among ready inboxes, the drains of a long change log waited
// behind scrub turn after scrub turn, and new writes with them. The scrub
// still has its turn every tick, so steady writes do not stop it.
func (s *sched) drainThenScrub(ctx context.Context, sc *scrubber) {
	select {
	case <-s.e.changed:
		s.changedAll(ctx)
	case <-s.dueC():
		s.drainDue(ctx)
	default:
	}
	if ctx.Err() == nil {
		sc.turn(ctx)
	}
}

// changedAll answers the change notifications waiting (Engine.Changed):
// changed for each tenant told of, once.
func (s *sched) changedAll(ctx context.Context) {
	now := time.Now()
	var drain []string
	for _, tenant := range s.e.takeChanged() {
		if s.changed(tenant, now) {
			drain = append(drain, tenant)
		}
	}
	s.upload(ctx, drain)
}

// markDrained notes that tenant's drain begins now, for the window.
func (s *sched) markDrained(tenant string, now time.Time) {
	if s.drained == nil {
		s.drained = map[string]time.Time{}
	}
	s.drained[tenant] = now
}

// wait schedules tenant's drain at at.
func (s *sched) wait(tenant string, at time.Time) {
	if s.due == nil {
		s.due = map[string]time.Time{}
	}
	s.due[tenant] = at
	s.armDue()
}

func (s *sched) dueC() <-chan time.Time {
	if s.dueTimer == nil || len(s.due) == 0 {
		return nil
	}
	return s.dueTimer.C
}

// armDue sets the timer to the earliest scheduled drain.
func (s *sched) armDue() {
	var first time.Time
	for _, at := range s.due {
		if first.IsZero() || at.Before(first) {
			first = at
		}
	}
	if first.IsZero() {
		return
	}
	d := time.Until(first)
	if s.dueTimer == nil {
		s.dueTimer = time.NewTimer(d)
		return
	}
	s.dueTimer.Reset(d)
}

// drainDue drains the tenants whose window has ended.
func (s *sched) drainDue(ctx context.Context) {
	now := time.Now()
	var drain []string
	for tenant, at := range s.due {
		if !now.Before(at) {
			delete(s.due, tenant)
			s.markDrained(tenant, now)
			drain = append(drain, tenant)
		}
	}
	s.upload(ctx, drain)
	s.armDue()
}

// upload drains up to TurnKeys changes of each tenant's log, as Changed
// asked. A longer log goes back to the changed inbox (Changed, which never
// blocks), taken after the pass's next turn, so a tenant that wrote a
// million documents holds Run for one turn at a time, like a round; its
// next turn does not wait for a coalescing window (a backlog is not a hot
// key).
//
// The tenants' drains run at once, up to maxTenantDrains: a drain's
// fixed costs (its checkpoint, the document's upload, its digest) are
// waits on the backend and the disk, and a node whose writes spread over
// thousands of tenants must not pay them one tenant after another. The
// backend's Limits still bound its calls. No drain starts once ctx has
// ended. The digests of all of them are published once after.
func (s *sched) upload(ctx context.Context, tenants []string) {
	if len(tenants) == 0 {
		return
	}
	type result struct {
		more bool
		err  error
	}
	res := make([]result, len(tenants))
	eachTenant(ctx, tenants, func(i int, tenant string) {
		_, res[i].more, res[i].err = s.e.uploadSome(ctx, tenant, s.e.cfg.TurnKeys)
	})
	_ = s.e.PublishDigests(ctx) // a failed publish is kept for the next
	for i, tenant := range tenants {
		switch more, err := res[i].more, res[i].err; {
		case errors.Is(err, ErrBackendUnavailable):
			s.armRetry() // the change waits for the backend: come back for it
		case more && err == nil:
			if s.drained != nil {
				delete(s.drained, tenant)
			}
			// Told again without marking it as lag: upload has marked what
			// this node wrote, and the rest may be copies (Engine.Copied).
			s.e.tell(tenant, false)
		}
	}
}

// eachTenant calls f for each of tenants, with its index, up to
// maxTenantDrains at once, and returns when every call has; once ctx has
// ended it starts no more. f reports nothing: one tenant's failure must
// not stop the others' drains, as a fanOut's first error would.
func eachTenant(ctx context.Context, tenants []string, f func(i int, tenant string)) {
	fan := newFanOut(maxTenantDrains)
	for i, tenant := range tenants {
		if !fan.Go(ctx, func() error { f(i, tenant); return nil }) {
			break
		}
	}
	_ = fan.Wait() // only ctx's end, which the callers see in their own results
}

// maxTenantDrains bounds the tenants whose change logs are drained at
// once (sched.upload, Engine.Flush). Each drain's keys fan out up to
// Config.UploadConcurrency (16) within it: eight tenants of a few changes
// each fill the backend's DefaultConcurrency (32) call slots, and at most
// 128 calls wait on them.
const maxTenantDrains = 8

// unavailable ends the pass if err says the backend's breaker is open, and
// arms the retry; it reports whether it did. notStarted names the tenant
// whose turn met err before its round began (its upload, restore or the
// round's start), "" when none did.
func (s *sched) unavailable(ctx context.Context, err error, notStarted string) bool {
	if !errors.Is(err, ErrBackendUnavailable) {
		return false
	}
	counted := false
	for _, t := range s.queue {
		if t.r != nil {
			s.e.finishRound(ctx, t.r, err)
			counted = true
		}
	}
	if !counted && notStarted != "" && ctx.Err() == nil && s.e.cfg.Policy.State() != resilience.Closed {
		// No round of the pass began: a node taking writes through a
		// partition starts every pass with an upload, which finds the
		// breaker open. That tenant's round counts and logs as failed,
		// as an idle node's first round does, or the rounds would show
		// nothing wrong for as long as the writes go on. Not once the
		// breaker has closed again: the upload was refused while the
		// half-open probe that closed it was in flight, and the backend
		// is back.
		s.e.roundNotStarted(ctx, notStarted, err)
	}
	s.queue = s.queue[:0]
	s.armRetry()
	return true
}

// armRetry arms the retry unless it is armed already: a later failure
// does not push it back, or writes arriving faster than the retry's delay,
// each drain failing on the open breaker, would hold every pass (and the
// rounds that show the backend failing) off for as long as they came.
func (s *sched) armRetry() {
	if s.retryArmed {
		return
	}
	s.retryArmed = true
	d := max(s.e.cfg.Policy.OpenFor(), minRetry)
	if s.retry == nil {
		s.retry = time.NewTimer(d)
		return
	}
	s.retry.Reset(d)
}

// retried notes that Run took the retry's tick.
func (s *sched) retried() { s.retryArmed = false }

// stop ends the rounds a pass left started (ctx is done: their cursors
// stay at their last checkpoint) and the retry timer.
func (s *sched) stop(ctx context.Context) {
	for _, t := range s.queue {
		if t.r != nil {
			s.e.finishRound(ctx, t.r, ctx.Err())
		}
	}
	s.queue = nil
	if s.retry != nil {
		s.retry.Stop()
	}
	if s.dueTimer != nil {
		s.dueTimer.Stop()
	}
}
