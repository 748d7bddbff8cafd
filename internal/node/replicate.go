package node

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/backend/fs"
	"github.com/cairnstore/cairn/internal/backend/s3"
	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/reconcile"
	"github.com/cairnstore/cairn/internal/resilience"
	"github.com/cairnstore/cairn/internal/server"
	"github.com/cairnstore/cairn/internal/store"
	"github.com/cairnstore/cairn/internal/telemetry"
)

// Replication configures the backends a node replicates to. The zero value
// replicates nowhere.
//
// # Lifecycle
//
// Start opens every backend after the store (an S3 bucket that is missing
// or cannot be reached is a configuration error: the node does not start,
// and the error names the --backend), then gives each backend one
// resilience.Policy and one reconcile.Engine, and runs them. Shutdown stops
// the engines (Close waits for a round in progress to notice) after the
// listeners have drained and before the cache and the store close, so no
// round can touch a closed store. A backend that goes down after the start
// is not an error: its breaker opens and its rounds are skipped until it
// answers again; local reads and writes never wait on a backend.
//
// One reconcile.Collector runs over all the engines (and with none): each
// GCInterval it removes tombstones every backend holds once GCGrace has
// passed, and trims the change log below every backend's upload position.
// Shutdown stops it with the engines.
//
// # Change notification
//
// The store's Watcher (Docs.Committed, on the committer's goroutine) marks
// the tenant dirty in a set and wakes the feed goroutine without blocking;
// the feed tells every engine (Engine.Changed for a version this node
// wrote, Engine.Copied for one it took from elsewhere; both non-blocking),
// so the uploader drains the change log promptly. Commits of one tenant
// while the feed is busy coalesce into one notification.
type Replication struct {
	// Backends, in the order they are reconciled. Each is a spec as
	// --backend takes it (ParseBackendSpec), or an open Backend (tests).
	Backends []BackendSpec
	// Policies maps a tenant to its conflict policy; absent tenants use lww.
	Policies map[string]reconcile.Policy
	// Interval between full passes over every tenant; 0 means only on
	// demand (the admin endpoint) and on changes.
	Interval time.Duration
	// Resilience is the template of each backend's policy (Backend and
	// Observer are set per backend); the zero value means resilience's
	// defaults.
	Resilience resilience.Config
	// Guard is the mass-deletion guard; zero means reconcile.DefaultGuard.
	Guard reconcile.Guard
	// Limits maps a backend name to the bounds on the load the reconciler
	// puts on it (concurrent calls, ops/s, bytes/s); an absent backend
	// gets the zero Limits: reconcile.DefaultConcurrency calls at once, no
	// rate limit.
	Limits map[string]reconcile.Limits
	// GCGrace is how long a tombstone is kept after its delete before the
	// collector may remove it from the node and every backend; 0 means
	// reconcile.DefaultGrace. It must exceed the longest time a node
	// sharing a backend may go without a round (reconcile's package doc,
	// "Collecting tombstones").
	GCGrace time.Duration
	// GCInterval is the time between the collector's passes (tombstones
	// and change-log trimming, over every tenant); 0 means none.
	GCInterval time.Duration
	// FeedPoll is how often the peers' change feeds are read; 0 means
	// reconcile.DefaultFeedPoll. FeedOff turns the feed off: news then
	// travels by rounds only.
	FeedPoll time.Duration
	FeedOff  bool
	// FullRounds makes every round list the whole tenant instead of only
	// the key ranges whose digests differ (reconcile.Config.FullRounds).
	FullRounds bool
	// FeedRetention is how long the node keeps its own feed objects; the
	// node keeps them at least GCGrace (a feed object must outlive any
	// tombstone it may announce), so 0 means GCGrace.
	FeedRetention time.Duration
	// CheckpointEvery is how many keys a round handles between
	// checkpoints; 0 means reconcile's default.
	CheckpointEvery int
	// Packs configures the catch-up packs each engine writes and restores
	// from (reconcile.PackConfig; the zero value writes none).
	Packs reconcile.PackConfig
	// CoalesceWindow is reconcile.Config.CoalesceWindow: the least time
	// between two uploads of a tenant's changes; 0 means none.
	CoalesceWindow time.Duration
	// ScrubRate is how many objects a second the scrub reads and verifies
	// on each backend (reconcile.Config.ScrubRate); 0 means no scrub.
	// Rounds compare digests and skip what no node changed, so damage done
	// to a backend behind the nodes' backs is found by the scrub.
	ScrubRate float64
	// ClaimCheck is how often the node reads its identity claim on each
	// backend (claim.go); 0 means DefaultClaimCheck.
	ClaimCheck time.Duration

	gcNow func() time.Time // the collector's clock; nil is time.Now (tests skew it)
}

// BackendSpec names one backend: NAME=fs:/path or NAME=s3://bucket/prefix?….
type BackendSpec struct {
	Name string
	URL  string
	// Backend, if set, is used as is instead of opening URL.
	Backend backend.Backend
}

// ParseBackendSpec parses NAME=fs:/path or NAME=s3://bucket/prefix?endpoint=
// host:port&region=r&insecure=1, checking its syntax but doing no I/O. The
// error is fault.Config and names the --backend flag.
func ParseBackendSpec(s string) (BackendSpec, error) {
	bad := func(msg string) (BackendSpec, error) {
		shown := s
		if name, u, ok := strings.Cut(s, "="); ok && !strings.HasPrefix(u, "fs:") {
			shown = name + "=" + s3.Redact(u) // whatever the scheme, a URL can hold a secret
		}
		return BackendSpec{}, fault.New(fault.Config, fault.Context{Op: "node.config"}, fmt.Sprintf("--backend %q: %s", shown, msg))
	}
	name, url, ok := strings.Cut(s, "=")
	if !ok {
		return bad("want NAME=fs:/path or NAME=s3://bucket/prefix?endpoint=host:port")
	}
	// Backend names are metric labels and path-like identifiers: the tenant
	// syntax ([a-z0-9][a-z0-9-]*) fits.
	if err := doc.ValidateTenant(name); err != nil {
		return bad(fmt.Sprintf("name %q: want lower-case letters, digits and '-'", name))
	}
	switch {
	case strings.HasPrefix(url, "fs:"):
		dir := strings.TrimPrefix(url, "fs:")
		if dir == "" {
			return bad("fs: needs a directory")
		}
		if !filepath.IsAbs(dir) {
			// Relative to wherever the node happens to start (a service
			// manager's directory is not the shell's).
			return bad("fs: needs an absolute path")
		}
	case strings.HasPrefix(url, "s3://"):
		if _, err := s3.ParseURL(url); err != nil {
			return bad(err.Error())
		}
	default:
		return bad("want fs:/path or s3://bucket/prefix")
	}
	return BackendSpec{Name: name, URL: url}, nil
}

// Location is where the backend keeps its objects, the same string for
// two specs that name the same place (a cleaned directory, its symbolic
// links resolved when it exists; an S3 endpoint, bucket and prefix), or ""
// for one given as a Backend.
func (b BackendSpec) Location() string {
	if dir := b.Dir(); dir != "" {
		return "fs:" + dir
	}
	if c, err := s3.ParseURL(b.URL); err == nil {
		return "s3://" + c.Endpoint + "/" + c.Bucket + "/" + strings.TrimSuffix(c.Prefix, "/")
	}
	return ""
}

// heldElsewhere reports whether the mass-deletion guard holds tenant on a
// backend other than the one named. The engines are all made before any
// runs, so r.engines is not written once this can be called.
func (r *replicator) heldElsewhere(backend, tenant string) bool {
	for _, e := range r.engines {
		if e.Backend() != backend && e.Held(tenant) {
			return true
		}
	}
	return false
}

// Dir is an fs backend's directory, cleaned and with its symbolic links
// resolved when it exists; "" for another backend.
func (b BackendSpec) Dir() string {
	dir, ok := strings.CutPrefix(b.URL, "fs:")
	if !ok {
		return ""
	}
	dir = filepath.Clean(dir)
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	return dir
}

// open opens the backend, checking an S3 bucket exists and answers.
func (b BackendSpec) open(ctx context.Context) (backend.Backend, func() error, error) {
	none := func() error { return nil }
	if b.Backend != nil {
		return b.Backend, none, nil
	}
	wrap := func(err error) error {
		return fault.E(fault.Config, fault.Context{Op: "node.start", Backend: b.Name}, fmt.Errorf("--backend %s=%s: %w", b.Name, b.URL, err))
	}
	if dir, ok := strings.CutPrefix(b.URL, "fs:"); ok {
		// A directory that is not there is refused, as a missing bucket
		// is: more often a typo or a volume not mounted than a new
		// backend, and a node that made it would serve as ready a restore
		// that holds nothing.
		if _, err := os.Stat(dir); errors.Is(err, iofs.ErrNotExist) {
			return nil, nil, wrap(fmt.Errorf("the directory does not exist (a typo, or a volume not mounted?); for a new backend, create it first: mkdir -p %s", dir))
		}
		f, err := fs.Open(b.Name, dir)
		if err != nil {
			return nil, nil, wrap(err)
		}
		return f, none, nil
	}
	cfg, err := s3.ParseURL(b.URL)
	if err != nil {
		return nil, nil, wrap(err)
	}
	s, err := s3.New(b.Name, cfg)
	if err != nil {
		return nil, nil, wrap(err)
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := s.CheckBucket(ctx); err != nil {
		if fault.ClassOf(err) == fault.Transient {
			// No answer: the caller decides whether the node may start
			// without one (errUnreachable).
			return s, s.Close, fault.E(fault.Transient, fault.Context{Op: "node.start", Backend: b.Name},
				fmt.Errorf("--backend %s=%s: %w: %w", b.Name, b.URL, errUnreachable, err))
		}
		s.Close()
		return nil, nil, wrap(err)
	}
	return s, s.Close, nil
}

// errUnreachable: an S3 backend gave no answer at start (refused,
// unreachable, timed out). A node whose store holds documents starts
// without it, as a running node rides out a partition; an empty one, which
// would restore from it, does not (startUnreachable).
var errUnreachable = errors.New("the bucket cannot be reached")

// startUnreachable decides, for a backend open returned with err
// (errUnreachable), whether the start goes on without it answering.
func (n *Node) startUnreachable(ctx context.Context, name string, err error) error {
	for _, terr := range n.store.Tenants(ctx) { // the first tenant says the store holds documents
		if terr != nil {
			return errors.Join(err, terr)
		}
		n.log.Warn(msgBackendUnreachable, "backend", name, "err", err, "starting_without_it", true, "runbook", runbookPartition)
		return nil
	}
	n.log.Error(msgBackendUnreachable, "backend", name, "err", err, "runbook", runbookPartition)
	return fault.E(fault.Config, fault.Context{Backend: name}, fmt.Errorf( // err names node.start
		"%w: the data directory holds no documents, so the node would restore from this backend: start it once the backend answers; see %q in %s",
		err, runbookPartition, runbookPath))
}

// replicator owns the engines, their goroutines and the change feed.
type replicator struct {
	engines   []*reconcile.Engine
	collector *reconcile.Collector // runs with or without engines
	policies  []*resilience.Policy // parallel to engines
	closers   []func() error       // backends to close after the engines stop
	feed      *changeFeed
	claims    *claims // the node's identity claims (claim.go); nil without backends
	log       *slog.Logger
	stop      context.CancelFunc
	running   sync.WaitGroup // the engines', the collector's and the feed's goroutines
	// failedStart: the node's start failed; close withdraws its claims.
	failedStart bool
	// startClaims makes the node-id claims and starts the claim checks,
	// once the node's start has succeeded; nil without backends.
	startClaims func(start context.Context)
	restores    reconcile.RestoreClaims // which backend restores a tenant from its pack
}

// startReplication opens the backends and runs one engine per backend.
// The feed must be the one the store's Watcher marks.
func (n *Node) startReplication(start context.Context, feed *changeFeed) error {
	rc := n.cfg.Replication
	r := &replicator{feed: feed, log: n.log}
	n.repl = r // set first, so a failure below is cleaned up by closeData
	if p := rc.packs(); len(rc.Backends) > 0 && p.Every >= p.MaxAge {
		n.log.Warn("replication: --pack-interval is not below half --gc-grace: the newest catch-up pack can be older than that, and an empty node does not restore from such a pack but fetches every object",
			"pack_interval", p.Every, "half_gc_grace", p.MaxAge)
	}
	var claims *claims
	if len(rc.Backends) > 0 {
		var err error
		if claims, err = newClaims(n.cfg.DataDir, n.store.Identity(), time.Now(), n.log); err != nil {
			return err
		}
		claims.raised = n.tel.Metrics.IdentityConflict
	}
	seen := map[string]bool{}
	for _, spec := range rc.Backends {
		be, closer, err := spec.open(start)
		if errors.Is(err, errUnreachable) {
			if err = n.startUnreachable(start, spec.Name, err); err != nil {
				closer()
			}
		}
		if err != nil {
			return err
		}
		r.closers = append(r.closers, closer)
		name := be.Name()
		if seen[name] {
			return fault.New(fault.Config, fault.Context{Op: "node.start"}, fmt.Sprintf("--backend %s: named twice", name))
		}
		seen[name] = true
		be = n.wrapChaos(be) // chaos.go: with --enable-chaos only
		claims.add(name, be)
		pc := rc.Resilience
		pc.Backend, pc.Observer, pc.Logger = name, n.tel.Metrics, n.log
		pol, err := resilience.New(pc)
		if err != nil {
			return err
		}
		n.tel.Metrics.AddBackend(name)
		feedCfg := rc.feed(n.store.Identity().NodeID)
		eng, err := reconcile.New(reconcile.Config{Feed: feedCfg,
			Store: n.store, Backend: be, Policy: pol, Tenants: slices.Sorted(maps.Keys(n.cfg.Auth.Tenants)),
			TombstoneGrace: cmp.Or(rc.GCGrace, reconcile.DefaultGrace),
			PolicyFor:      policyFor(rc.Policies, cmp.Or(n.cfg.MaxBodyBytes, server.DefaultMaxBodyBytes)), Guard: rc.Guard, Interval: rc.Interval, CheckpointEvery: rc.CheckpointEvery,
			HeldElsewhere:  func(tenant string) bool { return r.heldElsewhere(name, tenant) },
			RestoreClaim:   r.restores.For(name),
			CoalesceWindow: rc.CoalesceWindow, Limits: rc.Limits[name], Observer: n.tel.Metrics, Failpoint: n.failpoint(),
			Digests: true, FullRounds: rc.FullRounds, ScrubRate: rc.ScrubRate,
			Logger: n.log, Packs: rc.packs(),
			Tracer: n.tel.Tracer("github.com/cairnstore/cairn/reconcile"),
		})
		if err != nil {
			return err
		}
		n.tel.Metrics.ReplicationLagFunc(name, eng.ReplicationLag)
		n.discover(eng)
		r.engines = append(r.engines, eng)
		r.policies = append(r.policies, pol)
	}
	for name := range rc.Limits {
		if !seen[name] {
			return fault.New(fault.Config, fault.Context{Op: "node.start"}, fmt.Sprintf("backend limits for %q: no --backend of that name", name))
		}
	}
	if claims != nil {
		r.claims = claims // before start: a refusal on one backend withdraws the claims made on those before it
		if err := claims.start(start); err != nil {
			return err
		}
	}
	col, err := reconcile.NewCollector(reconcile.CollectorConfig{
		Store: n.store, Engines: r.engines, Grace: rc.GCGrace, Interval: rc.GCInterval,
		Observer: n.tel.Metrics, Logger: n.log, Now: rc.gcNow,
	})
	if err != nil {
		return err
	}
	r.collector = col
	ctx, cancel := context.WithCancel(context.Background())
	r.stop = cancel
	r.running.Go(func() {
		if err := col.Run(ctx); err != nil {
			n.log.Error("collector stopped", "err", err)
		}
	})
	if len(r.engines) == 0 {
		return nil
	}
	for _, e := range r.engines {
		r.running.Go(func() {
			if err := e.Run(ctx); err != nil {
				n.log.Error("reconcile engine stopped", "backend", e.Backend(), "err", err)
			}
		})
		e.Trigger() // a first pass: catch up with what changed while down
	}
	r.running.Go(func() { r.feedLoop(ctx) })
	if claims != nil {
		r.startClaims = func(start context.Context) {
			claims.claimNode(start)
			r.running.Go(func() { claims.run(ctx, cmp.Or(rc.ClaimCheck, DefaultClaimCheck)) })
		}
	}
	return nil
}

// discover lists the backend's tenants before the node serves, so that
// the tenants to restore from it are catching up from the first request.
// A backend that does not answer in time is no reason not to start: every
// tenant the node knows of without a completed round then catches up, and
// the first pass lists the backend again.
func (n *Node) discover(e *reconcile.Engine) {
	ctx, cancel := context.WithTimeout(context.Background(), discoverTimeout)
	defer cancel()
	if _, err := e.Discover(ctx); err != nil {
		n.log.Warn("reconcile: the backend's tenants could not be listed at start", "backend", e.Backend(), "err", err)
	}
}

// discoverTimeout bounds the listing of a backend's tenants at start.
const discoverTimeout = 15 * time.Second

// The engines report the change feed to the node's metrics.
var _ reconcile.FeedObserver = (*telemetry.Metrics)(nil)

// feed is the engines' change-feed configuration.
func (rc *Replication) feed(nodeID string) reconcile.FeedConfig {
	if rc.FeedOff {
		return reconcile.FeedConfig{}
	}
	grace := rc.GCGrace
	if grace <= 0 {
		grace = reconcile.DefaultGrace
	}
	return reconcile.FeedConfig{NodeID: nodeID, Poll: rc.FeedPoll, Retention: max(rc.FeedRetention, grace)}
}

// policyFor is each tenant's policy (the zero Policy is lww), its merges
// bounded by the largest document the node takes.
func policyFor(m map[string]reconcile.Policy, maxBytes int64) func(string) reconcile.Policy {
	return func(tenant string) reconcile.Policy {
		p := m[tenant]
		p.MaxBytes = maxBytes
		return p
	}
}

// feedLoop tells every engine of the tenants the store committed to.
func (r *replicator) feedLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.feed.wake:
			for t, own := range r.feed.take() {
				for _, e := range r.engines {
					if own {
						e.Changed(t)
					} else {
						e.Copied(t)
					}
				}
			}
		}
	}
}

// flushWait bounds the upload of a stopping node's pending changes.
const flushWait = 5 * time.Second

// close stops the engines and the feed, waits for them, then closes the
// backends. With flush (a graceful stop), it first uploads each backend's
// pending changes (Engine.Flush, within flushWait), so a node stopped
// gracefully leaves its backends up to date. Safe on a partly started
// replicator and on nil.
func (r *replicator) close(flush bool) error {
	if r == nil {
		return nil
	}
	if r.stop != nil {
		r.stop()
	}
	if r.collector != nil {
		r.collector.Close()
	}
	for _, e := range r.engines {
		e.Close()
	}
	r.running.Wait()
	if r.failedStart && r.claims != nil {
		// Once the claim checks have stopped, so that none writes the
		// claim again after it is withdrawn.
		r.claims.withdraw(context.Background())
	}
	if flush && len(r.engines) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), flushWait)
		for _, e := range r.engines {
			n, err := e.Flush(ctx)
			if err != nil {
				r.log.Warn("shutdown: pending changes not uploaded; they are uploaded when the node runs again", "backend", e.Backend(), "uploaded", n, "err", err)
			} else if n > 0 {
				r.log.Info("shutdown: pending changes uploaded", "backend", e.Backend(), "uploaded", n)
			}
		}
		cancel()
	}
	var first error
	for _, c := range r.closers {
		if err := c(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// engine returns the engine of backend name, or nil.
func (r *replicator) engine(name string) (*reconcile.Engine, *resilience.Policy) {
	for i, e := range r.engines {
		if e.Backend() == name {
			return e, r.policies[i]
		}
	}
	return nil, nil
}

// changeFeed is the set of tenants committed to since the feed last looked,
// each with whether a version this node wrote was among the commits. mark
// is called by the store's committer and must never block it: it takes a
// short lock and pokes wake without waiting.
type changeFeed struct {
	wake chan struct{} // capacity 1: "dirty is not empty"
	// self is the store's incarnation, the Writer of the versions this
	// node writes; set once the store is open, before any engine runs.
	self atomic.Uint64

	mu    sync.Mutex // guards dirty
	dirty map[string]bool
}

func newChangeFeed() *changeFeed {
	return &changeFeed{wake: make(chan struct{}, 1), dirty: map[string]bool{}}
}

func (f *changeFeed) mark(rec *store.Record) {
	own := rec.Version.Writer == f.self.Load()
	f.mu.Lock()
	was, had := f.dirty[rec.Tenant]
	f.dirty[rec.Tenant] = was || own
	f.mu.Unlock()
	if had {
		return // the feed has not taken it yet: it will
	}
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *changeFeed) take() map[string]bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	ts := maps.Clone(f.dirty)
	clear(f.dirty)
	return ts
}

// packs is the engines' pack settings: a pack older than half the
// tombstones' grace is not restored from (reconcile.PackConfig.MaxAge).
// Past the grace the tombstones of documents deleted after the pack may be
// collected; the other half is the restore's own time, a resume after a
// crash included, since the check is made when the restore starts.
func (rc *Replication) packs() reconcile.PackConfig {
	p := rc.Packs
	if p.MaxAge == 0 {
		p.MaxAge = cmp.Or(rc.GCGrace, reconcile.DefaultGrace) / 2
	}
	return p
}
