package reconcile

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/resilience"
	"github.com/cairnstore/cairn/internal/store"
	"go.opentelemetry.io/otel/trace"
)

// Round runs one anti-entropy round for tenant: a merge-join of the local
// listing (tombstones included) and the backend's listing, page by page,
// deciding and applying each key in order. It resumes after the
// checkpointed cursor if a previous round did not finish, checkpoints
// every Config.CheckpointEvery keys, and clears the cursor when it
// finishes. Memory is one page of each listing, whatever the tenant's size.
//
// Errors: ErrBackendUnavailable when the breaker is open (checked before
// every backend call); ErrNeedsConfirm from the guard; a backend or store
// error that is not about one key (a key's corrupt object, or a side that
// changed under it, is counted in Stats and skipped); ctx's error. On every
// error but ctx's the cursor of the last key fully handled is saved, so
// the next round continues from there.
//
// Round must not run concurrently with itself for one tenant: Run calls it
// from one goroutine. It may run concurrently with Upload.
func (e *Engine) Round(ctx context.Context, tenant string) (Stats, error) {
	r, err := e.startRound(ctx, tenant)
	if err != nil {
		return Stats{Tenant: tenant, Started: e.cfg.Now()}, err
	}
	_, err = r.step(ctx, 0)
	return e.finishRound(ctx, r, err)
}

// startRound loads tenant's cursor and starts a round after it: the state
// that Run's passes step through a turn at a time (see turn). A round from
// the first key of a tenant that has caught up compares digests first and
// lists only the segments that differ (see plan); verify makes it a scrub's
// round, reading every object listed.
func (e *Engine) startRound(ctx context.Context, tenant string) (*round, error) {
	return e.startRoundMode(ctx, tenant, false)
}

func (e *Engine) startRoundMode(ctx context.Context, tenant string, verify bool) (*round, error) {
	gen := e.holdGeneration(tenant) // before the checkpoint: a stop between them counts as after
	cp, err := e.loadCheckpoint(tenant)
	if err != nil {
		e.setProgress(tenant, func(p *Progress) { p.LastErr = err })
		return nil, err
	}
	if verify {
		cp.cursor = "" // a scrub walks from the first key; the round's cursor is not its own
	}
	r := &round{e: e, tenant: tenant, cursor: cp.cursor, verify: verify, heldAtStart: cp.held, held: cp.held, holdGen: gen,
		st: Stats{Tenant: tenant, Started: e.cfg.Now(), ResumedAfter: cp.cursor}}
	r.span = noSpan // a scrub's walk shows in neither Progress nor traces
	if !verify {
		r.span = e.startRoundSpan(ctx, r)
	}
	// The digests are read within the round's span: their calls are the round's.
	// A tenant catching up lists every object, unless it was restored
	// from a pack and every feed after the pack was replayed (cp.fed):
	// what neither brought shows as a segment whose digest differs.
	full := verify || cp.cursor != "" || (!cp.caughtUp && !cp.fed) || e.cfg.FullRounds
	r.plan, err = e.plan(trace.ContextWithSpan(ctx, r.span), tenant, full)
	if err != nil {
		endRoundSpan(r.span, &r.st, err)
		e.setProgress(tenant, func(p *Progress) { p.LastErr = err })
		if !verify {
			e.failedAtStart(ctx, &r.st, cp.cursor, err)
		}
		return nil, err
	}
	// A tenant catching up takes the backend's deletions unguarded: they
	// are deletions clients made, applied everywhere else already (a
	// side that lost documents is never mirrored as deletions), and a
	// restore must not wait for a confirmation of each share of them.
	r.confirmed = !verify && (e.takeConfirm(tenant) || !cp.caughtUp)
	r.track = newSegTrack(e, tenant, r.plan, cp.cursor == "")
	if r.partial() {
		r.st.Skipped = r.plan.lay.segments() - len(r.plan.ranges)
	}
	if verify {
		return r, nil
	}
	e.setProgress(tenant, func(p *Progress) {
		*p = Progress{Running: true, Started: r.st.Started, Cursor: cp.cursor, ResumedAfter: cp.cursor,
			Estimate: p.Estimate, Last: p.Last, LastErr: p.LastErr, LastUploadErr: p.LastUploadErr, restored: p.restored}
	})
	return r, nil
}

// failedAtStart counts and logs a round that failed before it listed
// anything (the backend's first call, its digests' layout, failed: wrong
// credentials, a bucket gone, an outage), as finishRound does a round that
// failed later: it is the failure an operator's alert on the rounds'
// outcomes is there for.
func (e *Engine) failedAtStart(ctx context.Context, st *Stats, cursor string, err error) {
	st.Duration = e.cfg.Now().Sub(st.Started)
	if o := e.cfg.Observer; o != nil && ctx.Err() == nil {
		o.ReconcileRound(e.name, err, st.Duration)
	}
	e.logRound(ctx, st, cursor, err)
}

// partial reports whether r lists only some segments (digests said the
// others are in sync): its position is not a cursor a full round could
// resume from.
func (r *round) partial() bool { return r.plan != nil && r.plan.ranges != nil }

// finishRound saves or clears the cursor after err (the round's outcome),
// and publishes the round's stats.
func (e *Engine) finishRound(ctx context.Context, r *round, err error) (Stats, error) {
	st := r.st
	st.Duration = e.cfg.Now().Sub(st.Started)
	switch {
	case err == nil && r.verify:
		e.digestsAfter(ctx, r)
	case err == nil:
		err = e.updateCheckpoint(r.tenant, func(c *checkpoint) { c.cursor, c.caughtUp = "", true })
		if err == nil {
			e.roundCompleted(r.tenant)
			// A round resumed from a cursor scanned only the keys after
			// it: its count is a lower bound of the tenant's size.
			size, whole := st.Scanned, st.ResumedAfter == ""
			if r.partial() {
				size, whole = r.plan.size, true // a digest round lists only what differs
			}
			e.wantPack(r.tenant, size, whole)
			e.digestsAfter(ctx, r)
		}
	case ctx.Err() == nil && !r.partial() && !r.verify:
		_ = e.saveCursor(r.tenant, r.cursor) // keep the earlier error
	}
	switch {
	case r.verify:
	case errors.Is(err, ErrNeedsConfirm):
		e.hold(ctx, r.tenant, true)
	case err == nil && (r.heldAtStart || r.confirmed):
		e.liftHold(ctx, r.tenant, r.holdGen)
	}
	e.setProgress(r.tenant, func(p *Progress) {
		est := p.Estimate
		switch {
		case err == nil && r.partial():
			est = r.plan.size // the keys counted by the digest compare
		case err == nil && st.ResumedAfter == "":
			est = st.Scanned // a whole round: the tenant's size, for percent done
		}
		*p = Progress{Cursor: r.cursor, Estimate: est, Last: st, LastErr: err, LastUploadErr: p.LastUploadErr, restored: p.restored}
	})
	r.report()
	if o := e.cfg.Observer; o != nil {
		o.ReconcileRound(e.name, err, st.Duration)
	}
	endRoundSpan(r.span, &st, err)
	if r.heldAtStart && errors.Is(err, ErrNeedsConfirm) {
		// Held already: every round stops at its first deletion until a
		// confirmation, and says so once a minute, not once a round.
		if o := e.cfg.Observer; o != nil && ctx.Err() == nil {
			o.ReconcileAction(e.name, ActionGuardStop)
		}
		e.warnHeld(ctx, r.tenant, "round", err)
	} else {
		e.logRound(ctx, &st, r.cursor, err)
	}
	return st, err
}

// roundNotStarted records tenant's round as failed with err without
// starting it: counted, logged and shown in its progress as a round that
// failed at once.
func (e *Engine) roundNotStarted(ctx context.Context, tenant string, err error) {
	st := Stats{Tenant: tenant, Started: e.cfg.Now()}
	var cursor string
	e.setProgress(tenant, func(p *Progress) {
		cursor = p.Cursor
		p.Last, p.LastErr = st, err
	})
	if o := e.cfg.Observer; o != nil {
		o.ReconcileRound(e.name, err, 0)
	}
	e.logRound(ctx, &st, cursor, err)
}

// Observer.ReconcileAction values for what a round meets besides its
// decisions, so that an alert can be written on them.
const (
	// ActionCorrupt: a remote object failed verification and was skipped.
	ActionCorrupt = "corrupt"
	// ActionGuardStop: the mass-deletion guard stopped a round.
	ActionGuardStop = "guard_stop"
	// ActionRaced: a side changed between a key's decision and its
	// application (a failed compare-and-set or precondition, or a stale
	// listing); the key was left for the next round.
	ActionRaced = "raced"
)

// digestsAfter brings the backend's digests up to date after a round that
// completed (see segTrack.finish). A failure there is logged, not the
// round's: the next round finds the digests differing and lists again.
func (e *Engine) digestsAfter(ctx context.Context, r *round) {
	err := r.track.finish(ctx)
	if err == nil || ctx.Err() != nil || errors.Is(err, ErrBackendUnavailable) {
		return
	}
	if l := e.cfg.Logger; l != nil {
		l.WarnContext(ctx, "reconcile: updating the digests failed", "backend", e.name, "tenant", r.tenant,
			"class", fault.ClassOf(err).String(), "err", err)
	}
}

// logRound warns of a round that failed (not one its caller cancelled),
// and counts a guard stop.
func (e *Engine) logRound(ctx context.Context, st *Stats, cursor string, err error) {
	if err == nil || ctx.Err() != nil {
		return
	}
	l := e.cfg.Logger
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	if errors.Is(err, ErrNeedsConfirm) {
		if o := e.cfg.Observer; o != nil {
			o.ReconcileAction(e.name, ActionGuardStop)
		}
		l.WarnContext(ctx, "reconcile: round stopped by the mass-deletion guard", "backend", e.name,
			"tenant", st.Tenant, "cursor", cursor, "deletes", st.Deletes)
		return
	}
	l.WarnContext(ctx, "reconcile: round failed", "backend", e.name, "tenant", st.Tenant, "cursor", cursor,
		"class", fault.ClassOf(err).String(), "err", err)
}

// round is one Round's state. It lives on the goroutine running it, and
// between the turns of a pass in Run's queue.
type round struct {
	e         *Engine
	tenant    string
	st        Stats
	span      trace.Span
	confirmed bool // the guard was confirmed for this round
	// heldAtStart: the guard held the tenant when the round began, and
	// holdGen its stops so far (Engine.holdGeneration). Only a round that
	// began held, or was confirmed, and saw no stop while it ran, lifts
	// the hold by finishing: one that began before the feed stopped at
	// the guard listed keys before those deletions.
	heldAtStart bool
	holdGen     uint64
	// held: the tenant is held, at the start or since, as the round last
	// looked (scan keeps the hold's marker fresh meanwhile).
	held   bool
	cursor string // the last key fully handled
	// replay: the restore's replay of the feeds, whose entries are the
	// catch-up's progress (feed.apply publishes them; a poll's do not).
	replay bool
	// mu guards live, counted, deletes and inSync: the feed applies a
	// feed object's entries concurrently under one round's guard (feed.go).
	mu      sync.Mutex
	live    int // live local documents, counted at the first deletion; -1 unknown
	counted bool
	deletes int // deletions planned so far (applied or about to be)

	bases *basePager // the step's base listing; nil between steps

	plan    *digestPlan // the tenant's digests; nil without a layout
	track   *segTrack
	ri      int  // partial round: index in plan.ranges of the segment listed
	inRange bool // partial round: that segment's listing has begun
	verify  bool // a scrub's round: read and verify every object listed

	sinceCheckpoint int // keys handled since the last checkpoint
	reported        int // st.Scanned last reported to the observer
	inSync          int // InSync decisions seen, for span sampling
}

// step handles up to n keys after r.cursor (n 0: to the end) and reports
// whether the round is done. The listings are read afresh from the cursor
// at each step, so a round between turns holds no page. A partial round
// lists its segments one after the other.
func (r *round) step(ctx context.Context, n int) (done bool, err error) {
	ctx = trace.ContextWithSpan(ctx, r.span)
	defer r.publish(true)
	if !r.partial() {
		_, done, err := r.scan(ctx, r.cursor, "", true, n)
		if done {
			r.track.done(&r.st)
		}
		return done, err
	}
	handled := 0
	for r.ri < len(r.plan.ranges) {
		if n > 0 && handled >= n {
			return false, nil
		}
		i := r.plan.ranges[r.ri]
		after, last, open := r.plan.lay.span(i)
		if !r.inRange {
			r.track.begin(i, true, &r.st)
			r.inRange, r.cursor = true, after
		}
		h, done, err := r.scan(ctx, r.cursor, last, open, max(0, n-handled))
		handled += h
		if err != nil || !done {
			return false, err
		}
		r.track.end(&r.st)
		r.inRange = false
		r.ri++
	}
	return true, nil
}

// scan merge-joins the keys after after, up to and including last (open:
// to the end), handling up to n of them (0: all); done reports that it
// reached the end of the window.
func (r *round) scan(ctx context.Context, after, last string, open bool, n int) (handled int, done bool, err error) {
	e := r.e
	lp := &localPager{st: e.st, tenant: r.tenant, after: after, limit: e.cfg.PageSize}
	rp := &remotePager{e: e, tenant: r.tenant, after: after, limit: e.cfg.PageSize}
	if n > 0 {
		// Pages no longer than the turn: a turn lists no more than it uses.
		lp.limit, rp.limit = min(lp.limit, n), min(rp.limit, n)
	}
	r.bases = &basePager{st: e.st, backend: e.name, tenant: r.tenant, after: after, max: lp.limit, limit: lp.limit}
	defer func() { r.bases = nil }()
	for ; n == 0 || handled < n; handled++ {
		l, err := lp.peek(ctx)
		if err != nil {
			return handled, false, err
		}
		rem, err := rp.peek(ctx)
		if err != nil {
			return handled, false, err
		}
		var key string
		switch {
		case l == nil && rem == nil:
			return handled, true, nil
		case l == nil:
			key = rem.Key
		case rem == nil:
			key = l.Key
		default:
			key = min(l.Key, rem.Key)
		}
		if !open && key > last {
			return handled, true, nil
		}
		var local *store.Record
		var remote *backend.Entry
		if l != nil && l.Key == key {
			local = l
			lp.i++
		}
		if rem != nil && rem.Key == key {
			remote = rem
			rp.i++
		}
		r.st.Scanned++
		if err := e.syncKey(ctx, r.tenant, key, local, remote, &r.st, r); err != nil {
			return handled, false, err
		}
		r.track.key(key, remote, &r.st, !r.partial()) // the listed entry: syncKey does not change it
		r.cursor = key
		if r.st.Scanned%progressEvery == 0 {
			r.publish(false)
			if !r.held && e.holdGeneration(r.tenant) != r.holdGen {
				r.held = true // the feed stopped at the guard meanwhile
			}
		}
		if r.held {
			e.refreshHold(ctx, r.tenant) // a round of a held tenant may outlast the marker's age
		}
		if r.partial() || r.verify {
			continue // no cursor to save: a failed partial round or scrub is redone whole
		}
		if r.sinceCheckpoint++; r.sinceCheckpoint >= e.cfg.CheckpointEvery {
			r.sinceCheckpoint = 0
			if err := e.saveCursor(r.tenant, key); err != nil {
				return handled, false, err
			}
			r.publish(true)
		}
	}
	return handled, false, nil
}

// progressEvery is how often, in keys, a round shows its counts between
// checkpoints: an operator watching a restore (cairn reconcile status)
// sees them move every few hundred documents, not every CheckpointEvery.
// The cursor shown moves only at checkpoints: it is where a round stopped
// now would resume.
const progressEvery = 100

// publish shows the round's counts in Progress, and its cursor with
// withCursor (where a round stopped now would resume: at checkpoints and
// turns), and reports the keys scanned since the last report to the
// observer.
func (r *round) publish(withCursor bool) {
	if r.verify {
		return
	}
	r.e.setProgress(r.tenant, func(p *Progress) {
		if withCursor {
			p.Cursor = r.cursor
		}
		p.Scanned, p.Downloaded = r.st.Scanned, r.st.Actions[Download]
	})
	r.report()
}

func (r *round) report() {
	if r.verify {
		return
	}
	if o := r.e.cfg.Observer; o != nil && r.st.Scanned > r.reported {
		o.ReconcileKeys(r.e.name, r.st.Scanned-r.reported)
	}
	r.reported = r.st.Scanned
}

// allowDelete is consulted before applying an action that deletes a live
// document: it counts it and reports whether the guard lets it through.
// The share is taken of the tenant's live documents: the larger of the
// live local documents and the live bases (what the node and the backend
// last agreed on, standing for the backend's documents), counted once per
// round at its first deletion (store scans, no backend I/O).
func (r *round) allowDelete(ctx context.Context) error {
	if r == nil || r.confirmed {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	// Once the guard stopped a round or the feed of the tenant (this one
	// included, the feed meanwhile included), every deletion waits for a
	// confirmation: counted afresh, each round would let another share of
	// what is left go, and the deletions stopped would all pass, a share a
	// round.
	if held, err := r.e.held(r.tenant); err != nil || held {
		if err != nil {
			return err
		}
		return fmt.Errorf("%w (tenant %s, backend %s: a round or the feed stopped at the guard)", ErrNeedsConfirm, r.tenant, r.e.name)
	}
	if h := r.e.cfg.HeldElsewhere; h != nil && h(r.tenant) {
		return fmt.Errorf("%w (tenant %s, backend %s: the guard holds the tenant on another backend)", ErrNeedsConfirm, r.tenant, r.e.name)
	}
	if !r.counted {
		n := 0
		for _, err := range r.e.st.List(ctx, r.tenant, store.ListOptions{KeysOnly: true}) {
			if err != nil {
				return err
			}
			n++
		}
		synced := 0
		for rec, err := range r.e.st.ListSyncState(ctx, r.e.name, r.tenant, "") {
			if err != nil {
				return err
			}
			if !rec.Base.Tombstone {
				synced++
			}
		}
		r.live, r.counted = max(n, synced), true
	}
	if r.e.cfg.Guard.Stop(r.live, r.deletes+1) {
		return fmt.Errorf("%w (tenant %s, backend %s: more than %d deletions of %d live documents)",
			ErrNeedsConfirm, r.tenant, r.e.name, r.deletes, r.live)
	}
	r.deletes++
	return nil
}

// localPager holds one page of the local listing.
type localPager struct {
	st     *store.Store
	tenant string
	after  string
	limit  int
	page   []store.Record
	i      int
	done   bool
}

func (p *localPager) peek(ctx context.Context) (*store.Record, error) {
	if p.i < len(p.page) {
		return &p.page[p.i], nil
	}
	if p.done {
		return nil, nil
	}
	p.page, p.i = p.page[:0], 0
	for rec, err := range p.st.List(ctx, p.tenant, store.ListOptions{After: p.after, Limit: p.limit, Tombstones: true, KeysOnly: true}) {
		if err != nil {
			return nil, err
		}
		p.page = append(p.page, rec)
	}
	if len(p.page) < p.limit {
		p.done = true
	}
	if len(p.page) == 0 {
		return nil, nil
	}
	p.after = p.page[len(p.page)-1].Key
	return &p.page[0], nil
}

// basePager holds one page of the sync-state listing: the bases, the
// third stream of the round's merge-join, read a page at a time instead of
// with one point lookup per key.
//
// A listed base can be stale by the time its key is handled: the uploader,
// the collector and other rounds' applies write sync states while a round
// runs. So a page is used only while Store.SyncUnchanged holds for the
// generation taken before it was read, checked when the key is handled
// (holding its in-flight slot); otherwise the caller looks the base up.
// Any sync-state write invalidates the page, including the round's own
// applies: after one, the page is read again from the next key, shorter
// (minBasePage) and doubling with each read back to a full page, so a
// stretch of keys that all write costs a short listing each, and a long
// stretch in sync costs full pages again.
type basePager struct {
	st      *store.Store
	backend string
	tenant  string
	after   string // the page is read after this key
	limit   int    // the next page's size
	max     int    // a full page
	gen     uint64 // Store.SyncGen before the page was read
	page    []store.SyncRecord
	i       int
	read    bool // page holds a listing (done and page are meaningful)
	done    bool // the listing ended with this page
}

// minBasePage is the size of the first page read after a sync-state write
// invalidated the previous one.
const minBasePage = 32

// lookup returns key's base from the listing, and whether the listing can
// answer for key (false: the caller must look it up). Keys must be asked
// for in ascending order.
func (p *basePager) lookup(ctx context.Context, key string) (base *store.SyncState, usable bool, err error) {
	for {
		if !p.read || (p.i >= len(p.page) && !p.done) {
			if err := p.next(ctx); err != nil {
				return nil, false, err
			}
		}
		for p.i < len(p.page) && p.page[p.i].Key < key {
			p.i++
		}
		if p.i < len(p.page) || p.done {
			break
		}
	}
	if !p.st.SyncUnchanged(p.gen) {
		// Start over after key with a fresh generation, from a short page.
		p.after, p.read, p.page, p.limit = key, false, p.page[:0], min(p.max, minBasePage)
		return nil, false, nil
	}
	if p.i < len(p.page) && p.page[p.i].Key == key {
		st := p.page[p.i].SyncState
		return &st, true, nil
	}
	return nil, true, nil
}

// next reads the page after p.after.
func (p *basePager) next(ctx context.Context) error {
	if p.read && len(p.page) > 0 {
		p.after = p.page[len(p.page)-1].Key
	}
	p.gen = p.st.SyncGen() // before the listing takes its snapshot
	p.page, p.i = p.page[:0], 0
	n := 0
	for rec, err := range p.st.ListSyncState(ctx, p.backend, p.tenant, p.after) {
		if err != nil {
			return err
		}
		p.page = append(p.page, rec)
		if n++; n == p.limit {
			break
		}
	}
	p.read, p.done = true, n < p.limit
	p.limit = min(p.limit*2, p.max)
	return nil
}

// remotePager holds one page of the backend's listing.
type remotePager struct {
	e      *Engine
	tenant string
	after  string
	limit  int
	page   []backend.Entry
	i      int
	done   bool
}

func (p *remotePager) peek(ctx context.Context) (*backend.Entry, error) {
	for p.i >= len(p.page) {
		if p.done {
			return nil, nil
		}
		page, err := call(ctx, p.e, backend.OpList, func(ctx context.Context) (backend.Page, error) {
			return p.e.be.List(ctx, p.tenant, backend.ListOptions{StartAfter: p.after, Limit: p.limit})
		})
		if err != nil {
			return nil, p.e.unavailable(err)
		}
		p.page, p.i, p.done = page.Entries, 0, !page.More
		if n := len(page.Entries); n > 0 {
			p.after = page.Entries[n-1].Key
		}
	}
	return &p.page[p.i], nil
}

// unavailable maps an error from a backend call made while the breaker is
// (now) open to ErrBackendUnavailable, keeping the cause.
func (e *Engine) unavailable(err error) error {
	if err != nil && !errors.Is(err, ErrBackendUnavailable) && fault.ClassOf(err) == fault.Exhausted && e.cfg.Policy.State() != resilience.Closed {
		return fmt.Errorf("%w: %w", ErrBackendUnavailable, err)
	}
	return err
}

// checkpoint is the persisted state of one (backend, tenant): the round's
// cursor ("" between rounds), the uploader's change-log position, whether
// a round has ever completed (the tenant is no longer catching up; see
// catchup.go), and a restore from a catch-up pack (restore.go): the
// generation being restored and the next part to apply, or packDone once
// the restore is over (or there was no pack), so it is not tried again;
// fed when the restore's pack and the feeds replayed after it cover the
// backend but for what the digests show (feedreplay.go).
type checkpoint struct {
	cursor    string
	uploadSeq uint64
	caughtUp  bool
	packDone  bool
	fed       bool
	held      bool // the guard stopped a round or the feed, and no round has ended without a stop since (Engine.hold)
	packGen   string
	packPart  int
}

// Checkpoint formats: 1 is format, uvarint upload position, cursor; 2 adds
// a flags byte after the format; 3 adds, after the upload position, the
// restore's generation (uvarint length, bytes) and next part (uvarint). A
// format 1 checkpoint predates catching up and says nothing of a completed
// round: its tenant catches up once.
const (
	checkpointFormat1 = 1
	checkpointFormat2 = 2
	checkpointFormat  = 3
	flagCaughtUp      = 1
	flagPackDone      = 2
	flagFed           = 4
	flagHeld          = 8
)

func (c checkpoint) encode() []byte {
	var flags byte
	if c.caughtUp {
		flags |= flagCaughtUp
	}
	if c.packDone {
		flags |= flagPackDone
	}
	if c.fed {
		flags |= flagFed
	}
	if c.held {
		flags |= flagHeld
	}
	b := []byte{checkpointFormat, flags}
	b = binary.AppendUvarint(b, c.uploadSeq)
	b = binary.AppendUvarint(b, uint64(len(c.packGen)))
	b = append(b, c.packGen...)
	b = binary.AppendUvarint(b, uint64(c.packPart))
	return append(b, c.cursor...)
}

func decodeCheckpoint(b []byte) (checkpoint, error) {
	bad := errors.New("reconcile: malformed checkpoint")
	var c checkpoint
	format := byte(0)
	if len(b) > 0 {
		format = b[0]
	}
	switch {
	case len(b) >= 2 && format == checkpointFormat1:
		b = b[1:]
	case len(b) >= 3 && (format == checkpointFormat2 || format == checkpointFormat):
		c.caughtUp = b[1]&flagCaughtUp != 0
		c.packDone = b[1]&flagPackDone != 0
		c.fed = b[1]&flagFed != 0
		c.held = b[1]&flagHeld != 0
		b = b[2:]
	default:
		return checkpoint{}, bad
	}
	seq, n := binary.Uvarint(b)
	if n <= 0 {
		return checkpoint{}, bad
	}
	c.uploadSeq, b = seq, b[n:]
	if format == checkpointFormat {
		l, n := binary.Uvarint(b)
		if n <= 0 || l > uint64(len(b)-n) {
			return checkpoint{}, bad
		}
		c.packGen, b = string(b[n:n+int(l)]), b[n+int(l):]
		part, n := binary.Uvarint(b)
		if n <= 0 || part > 1<<30 {
			return checkpoint{}, bad
		}
		c.packPart, b = int(part), b[n:]
	}
	c.cursor = string(b)
	return c, nil
}

func (e *Engine) loadCheckpoint(tenant string) (checkpoint, error) {
	b, ok, err := e.st.Checkpoint(e.name, tenant)
	if err != nil || !ok {
		return checkpoint{}, err
	}
	c, err := decodeCheckpoint(b)
	if err != nil {
		return checkpoint{}, fault.E(fault.Corruption, fault.Context{Op: "reconcile.checkpoint", Backend: e.name, Tenant: tenant}, err)
	}
	return c, nil
}

func (e *Engine) updateCheckpoint(tenant string, f func(c *checkpoint)) error {
	e.cpMu.Lock()
	defer e.cpMu.Unlock()
	c, err := e.loadCheckpoint(tenant)
	if err != nil {
		return err
	}
	before := c.encode()
	f(&c)
	if after := c.encode(); !bytes.Equal(after, before) {
		return e.st.PutCheckpoint(e.name, tenant, after)
	}
	return nil
}

func (e *Engine) saveCursor(tenant, cursor string) error {
	return e.updateCheckpoint(tenant, func(c *checkpoint) { c.cursor = cursor })
}
