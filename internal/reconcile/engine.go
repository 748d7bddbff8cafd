package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/logevery"
	"github.com/cairnstore/cairn/internal/resilience"
	"github.com/cairnstore/cairn/internal/store"
	"go.opentelemetry.io/otel/trace"
)

// DefaultCoalesceWindow is cairn serve's --coalesce-window: a key
// rewritten continuously is uploaded at most 20 times a second, and a
// change waits at most 50 ms longer to be uploaded.
const DefaultCoalesceWindow = 50 * time.Millisecond

// Errors a round ends with besides the store's and the backend's own.
var (
	// ErrNeedsConfirm: the round stopped before a deletion that the
	// mass-deletion guard refused; Confirm lets the next round through.
	ErrNeedsConfirm error = guardStop{}
	// ErrBackendUnavailable: the backend's breaker is open, so the round
	// was skipped (or ended early) rather than waiting on it. Its class is
	// fault.Exhausted: load shed, as the rounds' outcome counts it.
	ErrBackendUnavailable error = &fault.Error{Class: fault.Exhausted, Err: errors.New("reconcile: backend unavailable (breaker open)")}
)

// guardStop is ErrNeedsConfirm's type. A held round is no failure of the
// backend or the store, and the rounds' outcome metric must not count it
// as an unclassified one (runbook 1 reads "unknown" as the backend's
// fault): Outcome names it "held".
type guardStop struct{}

func (guardStop) Error() string {
	return "reconcile: round stopped by the mass-deletion guard; confirm to continue"
}

// Outcome is the round's outcome label in cairn_reconcile_rounds_total.
func (guardStop) Outcome() string { return "held" }

// Observer hears about rounds; *telemetry.Metrics implements it. Calls
// come from the engine's goroutines (Run's and the uploader's) and must
// not block.
type Observer interface {
	// ReconcileRound: a round ended, with err (nil: it finished), after d.
	ReconcileRound(backend string, err error, d time.Duration)
	// ReconcileKeys: n more keys scanned by a round's merge-join, reported
	// at each checkpoint and turn, so the count moves during a long round.
	ReconcileKeys(backend string, n int)
	// ReconcileAction: one decision applied (in_sync included), by a round
	// or the uploader.
	ReconcileAction(backend, action string)
	// ReconcileConflict: concurrent versions resolved under policy.
	ReconcileConflict(backend, policy string)
	// ReconcileBytes: document bytes written to the backend (up) and to
	// the store (down).
	ReconcileBytes(backend string, up, down int64)
}

// Config configures an Engine. Store, Backend and Policy are required.
type Config struct {
	Store   *store.Store
	Backend backend.Backend
	Policy  *resilience.Policy // every backend call goes through it

	// TombstoneGrace is the collector's grace (Collector's Grace). A
	// round that finds the backend without the object of a tombstone
	// younger than half of it puts the object back: only the collector
	// removes tombstone objects, and never so young, so the object was
	// lost (deleted by hand, a bucket restored from an older copy), and a
	// node that had not seen the delete would upload its older copy over
	// the gap. 0: such a missing object is taken as collected.
	TombstoneGrace time.Duration

	// PolicyFor returns a tenant's conflict policy; nil means LWW for all.
	PolicyFor func(tenant string) Policy
	// Guard is the mass-deletion guard; the zero value means DefaultGuard.
	Guard Guard
	// HeldElsewhere, when set, reports whether the guard holds a tenant on
	// another backend of the node (another engine's Held). A held tenant's
	// deletions wait for a confirmation on every backend: each backend's
	// rounds count their own share, and the deletions one stopped would
	// otherwise arrive through another.
	HeldElsewhere func(tenant string) bool
	// RestoreClaim, when set, is asked before a tenant is restored from
	// this backend's catch-up pack: ok is false when another backend of
	// the node restores it or did (one restore makes the store's copy,
	// and a second would read a whole pack to skip every entry of it).
	// With ok, done must be told whether a pack was applied; false frees
	// the tenant for another backend's pack.
	RestoreClaim func(tenant string) (done func(applied bool), ok bool)
	// PageSize is the listing page size on both sides; 0 means
	// backend.DefaultLimit.
	PageSize int
	// CheckpointEvery is how many keys a round handles between
	// checkpoints; 0 means 1000.
	CheckpointEvery int
	// UploadConcurrency bounds the uploader's concurrent keys; 0 means 16.
	UploadConcurrency int
	// CoalesceWindow is the least time between two drains of a tenant's
	// change log that Changed asks for: changes told within it wait for
	// its end and are drained together, each key uploaded once at its
	// latest version (see sched.changed). 0 means none: every Changed
	// drains at once. DefaultCoalesceWindow is what serve uses.
	CoalesceWindow time.Duration
	// Limits bound the engine's calls to the backend (concurrency, ops/s,
	// bytes/s), shared by rounds and the uploader; the zero value means
	// DefaultConcurrency calls at once and no rate limits.
	Limits Limits
	// Tenants are the tenants the node serves by configuration: each pass
	// reconciles them even when neither the store nor the backend holds
	// anything of them yet, and they catch up (see Engine.CatchingUp).
	Tenants []string
	// Feed configures the change feed through the backend's blobs (feed.go);
	// the zero value turns it off.
	Feed FeedConfig
	// Interval is how often Run starts a full pass over the tenants; 0
	// means only when asked (Trigger, RunRound).
	Interval time.Duration
	// TurnKeys is how many keys a tenant's round handles in one turn of a
	// pass before the next tenant's turn (see Run); 0 means
	// CheckpointEvery.
	TurnKeys int
	// Tracer, if set, makes a span per round and sampled child spans per
	// decision: every action but InSync, and one InSync in SampleInSync
	// (0 means DefaultSampleInSync).
	Tracer       trace.Tracer
	SampleInSync int
	// InFlight is the set of keys being handled, shared with other engines
	// of the same store if they must not race; nil means a new one.
	InFlight *InFlight
	Observer Observer         // nil: none
	Now      func() time.Time // round timing; nil is time.Now
	// Failpoint, if set, is called around applying each decision that
	// changes something (not InSync): "reconcile.apply.before" before it,
	// "reconcile.apply.after" once it succeeded, before the key can be
	// checkpointed; and "reconcile.restore.part" once a part of a catch-up
	// pack is applied and checkpointed. The chaos package's failpoints
	// kill the process there.
	Failpoint func(name string)
	// Logger, if set, gets a warning for each failed round ("reconcile:
	// round failed", or "reconcile: round stopped by the mass-deletion
	// guard") and each corrupt remote object (repaired or left); nil logs nothing.
	Logger *slog.Logger
	// Packs configures catch-up packs (packs.go, restore.go).
	Packs PackConfig

	// Digests turns on anti-entropy digests (docs/design/replication.md,
	// "Anti-entropy digests") when the backend keeps blobs: a round of a
	// tenant that has caught up lists only the key ranges whose digests
	// differ, and every write keeps this node's delta of the backend's
	// digest. Changes made to the backend behind the nodes' backs (a
	// damaged or deleted object) are then found by the scrub, not by the
	// next round. Off: every round lists everything.
	Digests bool
	// FullRounds makes every round list the whole tenant, as without
	// Digests, while the digests are still kept up to date for the other
	// nodes sharing the backend (a node without Digests keeps none, which
	// would make theirs miss its writes).
	FullRounds bool
	// ScrubRate is how many objects a second the scrub reads and verifies,
	// walking every tenant's objects in a cycle (see scrub.go); 0 means no
	// scrub.
	ScrubRate float64

	// beforeApply, if set, runs after a key's decision and before it is
	// applied (tests inject concurrent writes here).
	beforeApply func(tenant, key string, d Decision)
	// onBaseLookup, if set, runs before each point lookup of a base (a
	// key the round's base listing could not answer for).
	onBaseLookup func(tenant, key string)
}

// Engine replicates one store to one backend: anti-entropy rounds
// (Round) and the change-log uploader (Upload), both driven by Run.
// See docs/design/reconcile.md, "Engine".
type Engine struct {
	cfg      Config
	warns    logevery.Limiter // warnRepeated; Period warnEvery
	st       *store.Store
	be       backend.Backend
	name     string
	inflight *InFlight
	feed     *feed // nil when the feed is off
	lim      *limiter
	dig      digests
	// scrubTick is how often Run gives the scrub a turn (scrub.go); a
	// field so that tests can shorten it.
	scrubTick time.Duration

	cpMu sync.Mutex // guards read-modify-write of the checkpoint row
	// holdMu makes each change of a tenant's hold (its checkpoint flag
	// and its marker in the backend) whole against another.
	holdMu sync.Mutex

	mu       sync.Mutex // guards the following
	progress map[string]Progress
	pending  map[string]time.Time // tenant → its oldest change not yet uploaded (ReplicationLag)
	told     map[string]time.Time // tenant → its first change told by Changed since its log was last read
	confirm  map[string]bool      // tenants whose next round may pass the guard
	holdGen  map[string]uint64    // tenant → its stops at the guard (holdGeneration)
	marked   map[string]time.Time // tenant → when its hold marker was last written (refreshHold)
	// changedWant holds the tenants Changed told of that Run has not taken
	// yet: a set, so that any number of notifications for any number of
	// tenants wait in room bounded by the tenants, and none is dropped.
	changedWant map[string]bool
	tenants     map[string]*tenantState // every tenant served, for catching up (catchup.go)
	listed      bool                    // the backend's tenants were listed once
	catching    atomic.Int32            // how many of tenants are catching up; changed under mu
	runDone     chan struct{}           // closed when Run returns; nil before Run
	stop        context.CancelFunc

	// Run's inboxes, read only by the Run goroutine.
	triggers chan struct{} // "a pass over every tenant is wanted"
	// requests holds one request, so that a request made while Run is busy
	// is seen at Run's next look at its inboxes (between turns), not only
	// if the caller happens to be blocked in the send at that moment.
	requests chan roundRequest // "run this tenant's round now and answer"
	changed  chan struct{}     // "changedWant grew"

	packWant map[string]bool // guarded by mu: tenants the pack goroutine is to consider
	packDrop map[string]bool // guarded by mu: tenants below the pack minimum whose packs are to go
	// packFailed: when each tenant's last pack failed to be written, until
	// one is; the pack goroutine's own.
	packFailed map[string]time.Time
	packNone   map[string]bool // guarded by mu: tenants below the pack minimum known to have no pack
	// heldAtStart: the tenants the store held rows of when the engine was
	// made (seedTenants); read-only after.
	heldAtStart map[string]bool
	packKick    chan struct{} // "packWant grew", to the pack goroutine
}

type roundRequest struct {
	tenant  string
	parent  trace.SpanContext // the caller's span: the round's span is its child
	reply   chan<- roundReply
	confirm bool // RunRoundConfirmed
}

type roundReply struct {
	stats Stats
	err   error
}

// New returns an engine; it does nothing until Run or a direct call.
func New(cfg Config) (*Engine, error) {
	if cfg.Store == nil || cfg.Backend == nil || cfg.Policy == nil {
		return nil, fault.New(fault.Config, fault.Context{Op: "reconcile.new"}, "store, backend and policy are required")
	}
	if cfg.Guard == (Guard{}) {
		cfg.Guard = DefaultGuard
	}
	if err := cfg.Guard.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.Limits.Validate(); err != nil {
		return nil, err
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = backend.DefaultLimit
	}
	if cfg.CheckpointEvery <= 0 {
		cfg.CheckpointEvery = 1000
	}
	if cfg.UploadConcurrency <= 0 {
		cfg.UploadConcurrency = defaultUploadConcurrency
	}
	if cfg.TurnKeys <= 0 {
		cfg.TurnKeys = cfg.CheckpointEvery
	}
	if cfg.SampleInSync <= 0 {
		cfg.SampleInSync = DefaultSampleInSync
	}
	if cfg.InFlight == nil {
		cfg.InFlight = NewInFlight()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Packs.fill()
	e := &Engine{
		cfg: cfg, st: cfg.Store, be: cfg.Backend, name: cfg.Backend.Name(), inflight: cfg.InFlight,
		lim: newLimiter(cfg.Limits), progress: map[string]Progress{}, pending: map[string]time.Time{}, told: map[string]time.Time{},
		confirm:  map[string]bool{},
		holdGen:  map[string]uint64{},
		marked:   map[string]time.Time{},
		tenants:  map[string]*tenantState{},
		warns:    logevery.Limiter{Period: warnEvery},
		triggers: make(chan struct{}, 1), requests: make(chan roundRequest, 1), changed: make(chan struct{}, 1),
		changedWant: map[string]bool{},
		packWant:    map[string]bool{}, packKick: make(chan struct{}, 1),
		packDrop: map[string]bool{}, packNone: map[string]bool{}, packFailed: map[string]time.Time{},
		scrubTick: defaultScrubTick,
	}
	if cfg.Digests {
		e.dig.bl, _ = backend.BlobsOf(cfg.Backend)
	}
	e.dig.tenants = map[string]*tenantDigest{}
	if err := e.seedTenants(context.Background()); err != nil {
		return nil, err
	}
	e.feed = newFeed(e)
	return e, nil
}

// Backend returns the backend's name.
func (e *Engine) Backend() string { return e.name }

func (e *Engine) policyFor(tenant string) Policy {
	if e.cfg.PolicyFor == nil {
		return Policy{Strategy: LWW}
	}
	return e.cfg.PolicyFor(tenant)
}

// Confirm lets tenant's next round pass the mass-deletion guard once.
func (e *Engine) Confirm(tenant string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.confirm[tenant] = true
}

// hold records that the guard stopped a round or the feed of tenant, or,
// with on false, that a round of it ended without a stop: until then every
// deletion of its rounds and feed waits for a confirmation (allowDelete).
// A round that ends without meeting a deletion ends it too: a tenant whose
// clients delete often trips the guard's share now and then (a poll that
// brings many deletions of a small tenant), and its deletions must not
// wait for an operator ever after.
// It is kept in the tenant's checkpoint, so that a restart does not
// forget it, and told to the other nodes by a marker in the backend
// (holdmark.go), which keeps their collectors from removing the tombstones
// meanwhile; each stop writes the marker again, so its time is recent
// while the hold lasts.
func (e *Engine) hold(ctx context.Context, tenant string, on bool) {
	e.holdMu.Lock()
	defer e.holdMu.Unlock()
	if on {
		e.mu.Lock()
		e.holdGen[tenant]++
		e.mu.Unlock()
	}
	_ = e.updateCheckpoint(tenant, func(c *checkpoint) { c.held = on }) // a failed write fails the next read of it
	e.markHold(ctx, tenant, on)
}

// liftHold ends tenant's hold (hold false) if it is held and no stop came
// since the round that calls it read gen (holdGeneration): one check and
// change, so that a feed's stop meanwhile is neither erased from the
// checkpoint nor left without its marker.
func (e *Engine) liftHold(ctx context.Context, tenant string, gen uint64) {
	e.holdMu.Lock()
	defer e.holdMu.Unlock()
	if e.holdGeneration(tenant) != gen {
		return
	}
	if held, err := e.held(tenant); err != nil || !held {
		return
	}
	_ = e.updateCheckpoint(tenant, func(c *checkpoint) { c.held = false })
	e.markHold(ctx, tenant, false)
}

// holdGeneration counts the stops at the guard of tenant since the engine
// started: a round may lift the hold only if none came while it ran.
func (e *Engine) holdGeneration(tenant string) uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.holdGen[tenant]
}

// Held reports whether the mass-deletion guard holds tenant on this
// engine's backend: a round or the feed stopped at it, and no round has
// passed since.
func (e *Engine) Held(tenant string) bool {
	h, _ := e.held(tenant)
	return h
}

// held reports whether tenant is held (hold).
func (e *Engine) held(tenant string) (bool, error) {
	cp, err := e.loadCheckpoint(tenant)
	return cp.held, err
}

// feedGuard is the mass-deletion guard's window for the feed: one poll of
// tenant, or a restore's replay. A tenant catching up passes it, as its
// rounds do (startRoundMode).
func (e *Engine) feedGuard(tenant string) *round {
	cp, err := e.loadCheckpoint(tenant)
	return &round{e: e, tenant: tenant, st: Stats{Tenant: tenant, Started: e.cfg.Now()}, confirmed: err == nil && !cp.caughtUp}
}

func (e *Engine) takeConfirm(tenant string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	ok := e.confirm[tenant]
	delete(e.confirm, tenant)
	return ok
}

// Trigger asks Run for a pass over every tenant, without waiting. Triggers
// made while one is pending coalesce.
func (e *Engine) Trigger() {
	select {
	case e.triggers <- struct{}{}:
	default:
	}
}

// Changed tells Run that tenant's change log grew with a version this node
// wrote, so the uploader drains it; until it does, the change counts in
// ReplicationLag. It never blocks: notifications Run has not taken yet
// coalesce, per tenant. A burst of writes costs drains, never a pass: a
// pass would also run every tenant's round, which is the interval's work,
// not a write's.
func (e *Engine) Changed(tenant string) { e.tell(tenant, true) }

// Copied tells Run that tenant's change log grew with versions other nodes
// wrote (downloaded from a backend or a peer's feed, or restored), as
// Changed does but without counting them in ReplicationLag: like
// pendingSince, the lag counts what this node wrote. A restore marked as
// changed would show a lag growing for as long as its round holds the
// engine, on a node that wrote nothing.
func (e *Engine) Copied(tenant string) { e.tell(tenant, false) }

func (e *Engine) tell(tenant string, own bool) {
	e.mu.Lock()
	if own {
		now := e.cfg.Now()
		if _, ok := e.pending[tenant]; !ok {
			e.pending[tenant] = now
		}
		if _, ok := e.told[tenant]; !ok {
			e.told[tenant] = now
		}
	}
	e.changedWant[tenant] = true
	e.mu.Unlock()
	select {
	case e.changed <- struct{}{}:
	default: // Run has a notification pending, and takes this tenant with it
	}
}

// takeChanged returns the tenants Changed told of since the last call, in
// name order, and forgets them.
func (e *Engine) takeChanged() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	tenants := make([]string, 0, len(e.changedWant))
	for t := range e.changedWant {
		tenants = append(tenants, t)
		delete(e.changedWant, t)
	}
	slices.Sort(tenants)
	return tenants
}

// RunRound asks Run to run tenant's round now and waits for its result.
// The round's span (Config.Tracer) is a child of the span in ctx, if any.
func (e *Engine) RunRound(ctx context.Context, tenant string) (Stats, error) {
	return e.runRound(ctx, tenant, false)
}

// RunRoundConfirmed is RunRound for a round that passes the mass-deletion
// guard (Confirm): the confirmation is given on Run's goroutine just before
// the round, so that no other round takes it first and this one's result
// is the one that applied the deletions.
func (e *Engine) RunRoundConfirmed(ctx context.Context, tenant string) (Stats, error) {
	return e.runRound(ctx, tenant, true)
}

func (e *Engine) runRound(ctx context.Context, tenant string, confirm bool) (Stats, error) {
	reply := make(chan roundReply, 1)
	select {
	case e.requests <- roundRequest{tenant, trace.SpanContextFromContext(ctx), reply, confirm}:
	case <-ctx.Done():
		return Stats{}, ctx.Err()
	}
	select {
	case r := <-reply:
		return r.stats, r.err
	case <-ctx.Done():
		return Stats{}, ctx.Err()
	}
}

// Run is the engine's loop: it drains change logs as they are reported,
// runs requested rounds, and on each trigger or interval runs a pass: the
// uploader and a round for every tenant, the rounds interleaved a turn of
// Config.TurnKeys keys at a time (see sched.go), so a tenant with a million
// keys does not hold up a small one for its whole round. Between turns Run
// answers its inboxes. Rounds run on this goroutine; drains of change logs
// run on goroutines it starts and waits for, one per tenant and never two
// of one tenant at once (sched.upload), so what the uploader touches must
// be safe from several goroutines. A pass stopped by an open breaker is
// retried when the breaker lets a probe through. With the change feed on
// (Config.Feed), Run also owns the feed's publisher and tailer goroutines,
// and waits for them. Run returns when ctx ends or Close is called.
func (e *Engine) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	e.mu.Lock()
	if e.runDone != nil {
		e.mu.Unlock()
		cancel()
		return errors.New("reconcile: Run called twice")
	}
	e.runDone, e.stop = done, cancel
	e.mu.Unlock()
	defer close(done)
	var packs sync.WaitGroup
	defer packs.Wait()
	defer cancel()
	packs.Go(func() { e.packLoop(ctx) })
	e.notePending(ctx)
	if e.feed != nil {
		e.feed.prime(ctx) // before the first pass (feed.go)
		var feedDone sync.WaitGroup
		feedDone.Go(func() { e.feed.run(ctx) })
		defer func() { cancel(); feedDone.Wait() }()
	}

	var tick <-chan time.Time
	if e.cfg.Interval > 0 {
		t := time.NewTicker(e.cfg.Interval)
		defer t.Stop()
		tick = t.C
	}
	var scrub <-chan time.Time
	sc := &scrubber{e: e}
	if e.cfg.ScrubRate > 0 {
		t := time.NewTicker(e.scrubTick)
		defer t.Stop()
		scrub = t.C
	}
	s := &sched{e: e}
	defer s.stop(ctx)
	for {
		if s.busy() {
			// A pass is in progress: answer one thing waiting, if any,
			// then take the pass's next turn. The two alternate because
			// the inboxes' work (a drain of a change log, a scrub turn)
			// can outlast the time for the next item to arrive over a
			// slow backend: a pass whose turns waited for idle inboxes
			// would then never finish.
			select {
			case <-ctx.Done():
				return nil
			case <-scrub:
				s.drainThenScrub(ctx, sc)
			case <-e.changed:
				s.changedAll(ctx)
			case <-s.dueC():
				s.drainDue(ctx)
			case req := <-e.requests:
				s.serve(ctx, req)
			case <-e.triggers:
				s.again = true
			case <-tick:
				s.again = true
			case <-s.retryC():
				s.retried()
				s.again = true
			default:
			}
			if s.busy() && ctx.Err() == nil {
				s.turn(ctx)
			}
			continue
		}
		if s.again {
			s.start(ctx)
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-scrub:
			s.drainThenScrub(ctx, sc)
		case <-e.changed:
			s.changedAll(ctx)
		case <-s.dueC():
			s.drainDue(ctx)
		case req := <-e.requests:
			s.serve(ctx, req)
		case <-e.triggers:
			s.start(ctx)
		case <-tick:
			s.start(ctx)
		case <-s.retryC():
			s.retried()
			s.start(ctx)
		}
	}
}

// Close stops Run and waits for it to return. It is safe to call when Run
// was never called, and more than once.
func (e *Engine) Close() error {
	e.mu.Lock()
	done, stop := e.runDone, e.stop
	e.mu.Unlock()
	if done == nil {
		return nil
	}
	stop()
	<-done
	return nil
}

// Progress returns tenant's progress: the cursor of the round in progress
// (or "" between rounds), the last round's result, and whether it is
// catching up; false when the engine has not worked on it yet. Safe to
// call from any goroutine.
func (e *Engine) Progress(tenant string) (Progress, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p, ok := e.progress[tenant]
	s, known := e.tenants[tenant]
	return p.view(known && s.catchingUp()), ok
}

// view is p as shown, for a tenant catching up or not: the versions a
// restore wrote count as downloaded only while its catch-up lasts.
func (p Progress) view(catchingUp bool) Progress {
	p.CatchingUp = catchingUp
	if catchingUp {
		p.Downloaded += p.restored
	}
	p.restored = 0
	return p
}

// AllProgress returns the progress of every tenant the engine serves or
// has worked on.
func (e *Engine) AllProgress() map[string]Progress {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := make(map[string]Progress, len(e.progress))
	for k, v := range e.progress {
		s, known := e.tenants[k]
		m[k] = v.view(known && s.catchingUp())
	}
	for t, s := range e.tenants {
		if _, done := m[t]; !done {
			m[t] = Progress{}.view(s.catchingUp())
		}
	}
	return m
}

func (e *Engine) setProgress(tenant string, f func(p *Progress)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.progress[tenant]
	f(&p)
	e.progress[tenant] = p
}

// call runs fn on the backend under the policy, refusing at once when the
// breaker is open. It holds one of the backend's call slots (Limits) for
// the whole call, retries included, after taking an ops token: the wait
// happens outside the policy, so time spent waiting on the limiter never
// counts against an attempt's timeout or the breaker.
func call[R any](ctx context.Context, e *Engine, op string, fn func(context.Context) (R, error)) (R, error) {
	var zero R
	if e.cfg.Policy.OpenFor() > 0 { // refuse before waiting for a slot
		return zero, fmt.Errorf("%s %s: %w", op, e.name, ErrBackendUnavailable)
	}
	release, err := e.lim.acquire(ctx)
	if err != nil {
		return zero, err
	}
	defer release()
	return callUnlimited(ctx, e, op, fn)
}

// callUnlimited is call without the backend's limits (Limits): for a
// client's read that must not queue behind the reconciler's own load.
func callUnlimited[R any](ctx context.Context, e *Engine, op string, fn func(context.Context) (R, error)) (R, error) {
	var zero R
	// OpenFor, not State: an open breaker whose delay has passed reports
	// Open until a call asks it for a permit, which is what turns it
	// half-open; refusing on State alone would never probe again.
	if e.cfg.Policy.OpenFor() > 0 {
		return zero, fmt.Errorf("%s %s: %w", op, e.name, ErrBackendUnavailable)
	}
	start := time.Now()
	r, err := resilience.Get(ctx, e.cfg.Policy, op, fn)
	if o, ok := e.cfg.Observer.(BackendObserver); ok {
		o.ObserveBackend(e.name, op, err, time.Since(start))
	}
	return r, err
}

// BackendObserver is an optional capability of an Observer: it hears about
// every backend call, after its retries (cairn_backend_operations_total).
// A call refused because the breaker is open, or that never got a call
// slot, is not a call.
type BackendObserver interface {
	ObserveBackend(backend, op string, err error, d time.Duration)
}
