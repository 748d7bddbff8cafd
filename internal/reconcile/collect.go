package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/store"
)

// DefaultGrace is how long a tombstone is kept, by default, after the
// delete that made it: see "Collecting tombstones" in docs/design/reconcile.md.
const DefaultGrace = 24 * time.Hour

// CollectorConfig configures a Collector. Store is required.
type CollectorConfig struct {
	Store *store.Store
	// Engines are the engines of every backend the node replicates to,
	// one per backend. With none, a tombstone is collected once the grace
	// period has passed, and the whole change log is trimmed.
	Engines []*Engine
	// Grace is how long after a delete (by its HLC time) its tombstone is
	// kept; 0 means DefaultGrace. It must exceed the longest time a node
	// sharing a backend may go without a round: see docs/design/reconcile.md.
	Grace time.Duration
	// Interval is how often Run starts a pass; 0 means only when asked
	// (Pass).
	Interval time.Duration
	// PageSize is how many keys a pass reads before acting on them; 0
	// means 1000.
	PageSize int
	Observer CollectObserver // nil: none
	Logger   *slog.Logger    // Run's passes: what they removed, and errors; nil: none
	Now      func() time.Time
}

// CollectObserver hears what a Collector removed; *telemetry.Metrics
// implements it.
type CollectObserver interface {
	TombstonesCollected(n int)
	ChangesTrimmed(n int)
}

// CollectStats describe one tenant's collection, or a pass's sum.
type CollectStats struct {
	Tenant string // "" for a pass's sum
	// Examined counts the tombstones past the grace period looked at;
	// Collected those removed from the node and every backend; Waiting
	// those left for a later pass because some backend's base is not the
	// tombstone yet (its round has not recorded it) or the backend now
	// holds something else.
	Examined, Collected, Waiting int
	// Held counts the tenants whose tombstones were all kept because a
	// node holds the tenant at the mass-deletion guard (holdmark.go).
	Held int
	// History counts the conflict-history records removed
	// (store.TrimConflicts).
	History int
	// Trimmed counts the change-log entries removed; TrimmedTo is the
	// position they were removed up to (inclusive), 0 if none.
	Trimmed   int
	TrimmedTo uint64
}

func (s *CollectStats) add(o CollectStats) {
	s.Examined += o.Examined
	s.Collected += o.Collected
	s.Waiting += o.Waiting
	s.Held += o.Held
	s.History += o.History
	s.Trimmed += o.Trimmed
	s.TrimmedTo = max(s.TrimmedTo, o.TrimmedTo)
}

// Collector removes what the node no longer needs to keep for its
// backends: tombstones every backend holds, after a grace period, and the
// change-log entries every backend's uploader has passed. It is one per
// node, over all of its engines, since both decisions need every
// backend's state. See "Collecting tombstones" in docs/design/reconcile.md.
type Collector struct {
	cfg     CollectorConfig
	st      *store.Store
	engines []*Engine
	sets    []*InFlight // the engines' distinct InFlight sets

	passMu sync.Mutex // serializes passes: one collector never races itself

	mu      sync.Mutex // guards the following
	runDone chan struct{}
	stop    context.CancelFunc
	last    CollectPass // the last finished Pass; Started zero before one
}

// CollectPass is the outcome of one Pass, for an admin endpoint.
type CollectPass struct {
	Started  time.Time
	Duration time.Duration
	Stats    CollectStats // the sum over the tenants
	Err      error
}

// Grace returns the grace period in force (the default filled in).
func (c *Collector) Grace() time.Duration { return c.cfg.Grace }

// Interval returns the time between Run's passes; 0: none.
func (c *Collector) Interval() time.Duration { return c.cfg.Interval }

// Last returns the last finished Pass (Run's, or a direct call's); false
// before the first. Safe from any goroutine.
func (c *Collector) Last() (CollectPass, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last, !c.last.Started.IsZero()
}

// NewCollector returns a collector; it does nothing until Run or Pass.
func NewCollector(cfg CollectorConfig) (*Collector, error) {
	if cfg.Store == nil {
		return nil, fault.New(fault.Config, fault.Context{Op: "reconcile.new_collector"}, "a store is required")
	}
	if cfg.Grace < 0 || cfg.Interval < 0 {
		return nil, fault.New(fault.Config, fault.Context{Op: "reconcile.new_collector"},
			fmt.Sprintf("grace %v and interval %v: want 0 (the default) or more", cfg.Grace, cfg.Interval))
	}
	if cfg.Grace == 0 {
		cfg.Grace = DefaultGrace
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = 1000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Collector{cfg: cfg, st: cfg.Store, engines: slices.Clone(cfg.Engines)}
	for _, e := range c.engines {
		if !slices.Contains(c.sets, e.inflight) {
			c.sets = append(c.sets, e.inflight)
		}
	}
	return c, nil
}

// Run passes over every tenant each Interval (never, with Interval 0)
// until ctx ends or Close is called. A pass's error is logged; the next
// pass tries again.
func (c *Collector) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	c.mu.Lock()
	if c.runDone != nil {
		c.mu.Unlock()
		cancel()
		return errors.New("reconcile: Collector.Run called twice")
	}
	c.runDone, c.stop = done, cancel
	c.mu.Unlock()
	defer close(done)
	defer cancel()
	if c.cfg.Interval <= 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(c.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			st, err := c.Pass(ctx)
			if ctx.Err() != nil {
				return nil // stopped during the pass: not a failure of it
			}
			c.log(st, err)
		}
	}
}

func (c *Collector) log(st CollectStats, err error) {
	l := c.cfg.Logger
	switch {
	case l == nil:
	case err != nil:
		l.Warn("collect: pass failed", "err", err, "tombstones_collected", st.Collected, "changes_trimmed", st.Trimmed)
	case st.Collected > 0 || st.Trimmed > 0 || st.Held > 0 || st.History > 0:
		l.Info("collect: pass", "tombstones_collected", st.Collected, "tombstones_waiting", st.Waiting, "changes_trimmed", st.Trimmed,
			"tenants_held", st.Held, "history_trimmed", st.History)
	}
}

// Close stops Run and waits for it. Safe without Run, and more than once.
func (c *Collector) Close() error {
	c.mu.Lock()
	done, stop := c.runDone, c.stop
	c.mu.Unlock()
	if done == nil {
		return nil
	}
	stop()
	<-done
	return nil
}

// Pass collects and trims every tenant once and returns the sum. It goes
// on past a tenant's error (a backend that is down stops only the
// collection of tombstones, not the trimming) and returns the first.
func (c *Collector) Pass(ctx context.Context) (sum CollectStats, first error) {
	start := c.cfg.Now()
	defer func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.last = CollectPass{Started: start, Duration: c.cfg.Now().Sub(start), Stats: sum, Err: first}
	}()
	var tenants []string
	for t, err := range c.st.Tenants(ctx) {
		if err != nil {
			return CollectStats{}, err
		}
		tenants = append(tenants, t)
	}
	for _, t := range tenants {
		st, err := c.Collect(ctx, t)
		sum.add(st)
		if err != nil && first == nil {
			first = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return sum, first
}

// Collect collects tenant's tombstones, trims its change log and bounds
// its conflict history (store.TrimConflicts). Passes
// (Collect, and Run's) are serialized.
func (c *Collector) Collect(ctx context.Context, tenant string) (CollectStats, error) {
	c.passMu.Lock()
	defer c.passMu.Unlock()
	st := CollectStats{Tenant: tenant}
	errGC := c.collectTombstones(ctx, tenant, &st)
	errTrim := c.trim(ctx, tenant, &st)
	var errHist error
	st.History, errHist = c.st.TrimConflicts(ctx, tenant, store.MaxConflictHistory)
	if o := c.cfg.Observer; o != nil {
		o.TombstonesCollected(st.Collected)
		o.ChangesTrimmed(st.Trimmed)
	}
	return st, errors.Join(errGC, errTrim, errHist)
}

// candidate is a tombstone to look at: its key and version.
type candidate struct {
	key string
	v   doc.Version
}

// collectTombstones goes through tenant's tombstones past the grace
// period a page at a time (no iterator is held while acting on them).
// With engines, the candidates are the first engine's tombstone bases: a
// key can only be collected when every backend's base is its tombstone,
// and the sync state is much smaller than the documents to scan. Without,
// they are the local tombstones.
func (c *Collector) collectTombstones(ctx context.Context, tenant string, st *CollectStats) error {
	cutoff := c.cfg.Now().Add(-c.cfg.Grace)
	old := func(v *doc.Version) bool { return v.Tombstone && v.HLC.Time().Before(cutoff) }
	after, checked := "", false
	for {
		var page []candidate
		var next string
		var err error
		if len(c.engines) > 0 {
			page, next, err = c.syncPage(ctx, tenant, after, old)
		} else {
			page, next, err = c.localPage(ctx, tenant, after, old)
		}
		if err != nil {
			return err
		}
		if len(page) > 0 && !checked {
			checked = true
			// Once a pass has a tombstone to collect: while a node holds
			// the tenant's deletions at the guard, their tombstones are
			// what tells it they were made (holdmark.go).
			if held, err := c.held(ctx, tenant); err != nil || held {
				if held {
					st.Held++
				}
				return err
			}
		}
		for _, cand := range page {
			st.Examined++
			ok, err := c.collectKey(ctx, tenant, cand)
			switch {
			case err != nil:
				return err
			case ok:
				st.Collected++
			default:
				st.Waiting++
			}
		}
		if after = next; after == "" {
			return nil
		}
	}
}

// held reports whether a node holds tenant at the mass-deletion guard on
// one of the backends (a hold marker younger than the grace).
func (c *Collector) held(ctx context.Context, tenant string) (bool, error) {
	for _, e := range c.engines {
		if e.Held(tenant) { // this node's own hold, whatever its marker's age
			return true, nil
		}
	}
	for _, e := range c.engines {
		node, err := e.heldBy(ctx, tenant, c.cfg.Grace, c.cfg.Now())
		if err != nil || node == "" {
			if err != nil {
				return false, err
			}
			continue
		}
		if l := c.cfg.Logger; l != nil {
			l.Debug("collect: tombstones kept: a node holds the tenant at the mass-deletion guard",
				"backend", e.name, "tenant", tenant, "node", node)
		}
		return true, nil
	}
	return false, nil
}

// syncPage reads up to PageSize sync states of the first engine after
// after and returns the tombstones among them that old accepts, and the
// key the next page starts after ("" when this was the last page).
func (c *Collector) syncPage(ctx context.Context, tenant, after string, old func(*doc.Version) bool) (page []candidate, next string, err error) {
	n := 0
	for rec, err := range c.st.ListSyncState(ctx, c.engines[0].name, tenant, after) {
		if err != nil {
			return nil, "", err
		}
		if n++; n > c.cfg.PageSize {
			return page, next, nil
		}
		next = rec.Key
		if old(&rec.Base) {
			page = append(page, candidate{rec.Key, rec.Base})
		}
	}
	return page, "", nil
}

// localPage is syncPage over the local documents.
func (c *Collector) localPage(ctx context.Context, tenant, after string, old func(*doc.Version) bool) (page []candidate, next string, err error) {
	n := 0
	o := store.ListOptions{After: after, Limit: c.cfg.PageSize, Tombstones: true, KeysOnly: true}
	for rec, err := range c.st.List(ctx, tenant, o) {
		if err != nil {
			return nil, "", err
		}
		n++
		next = rec.Key
		if old(&rec.Version) {
			page = append(page, candidate{rec.Key, rec.Version})
		}
	}
	if n < c.cfg.PageSize {
		next = ""
	}
	return page, next, nil
}

// errRemoteChanged: a backend holds something other than the tombstone
// its base records; the key waits for the next round.
var errRemoteChanged = errors.New("the backend holds another object")

// collectKey collects one tombstone, t, if it still qualifies, holding the
// key in every engine's InFlight set so that no round or uploader acts on
// it meanwhile. It qualifies when the node holds t or nothing (a previous
// collection removed the row but not every base) and every backend's base
// is t with its ETag recorded. Then it deletes each backend's object
// if-match that ETag (already gone counts as deleted: another node sharing
// the backend collected it), and only then the local row and the bases,
// in one batch: a failure in between leaves the local tombstone, which the
// next pass finds again, and a side without the key while the base is the
// tombstone stands for the tombstone (the floor rule), so no round undoes
// a partial collection. false, nil: not collected now.
func (c *Collector) collectKey(ctx context.Context, tenant string, t candidate) (bool, error) {
	for _, set := range c.sets {
		release, err := set.Acquire(ctx, tenant, t.key)
		if err != nil {
			return false, err
		}
		defer release()
	}
	id := t.v.ID()
	rec, err := c.st.Get(ctx, tenant, t.key)
	switch {
	case fault.ClassOf(err) == fault.NotFound:
	case err != nil:
		return false, err
	case rec.Version.ID() != id:
		return false, nil // written since: not a tombstone to collect
	}
	etags := make([]string, len(c.engines))
	names := make([]string, len(c.engines))
	for i, e := range c.engines {
		base, ok, err := c.st.SyncState(e.name, tenant, t.key)
		if err != nil {
			return false, err
		}
		if !ok || base.Base.ID() != id || base.RemoteETag == "" {
			return false, nil
		}
		etags[i], names[i] = base.RemoteETag, e.name
	}
	for i, e := range c.engines {
		err := e.deleteRemote(ctx, tenant, t.key, etags[i])
		if errors.Is(err, errRemoteChanged) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
	}
	err = c.st.Collect(ctx, tenant, t.key, id, names)
	if fault.ClassOf(err) == fault.PreconditionFailed {
		// A client wrote the key since the Get: that version descends
		// from the tombstone, and the rounds upload it over the objects
		// just deleted (the floor rule stands for them).
		return false, nil
	}
	return err == nil, err
}

// deleteRemote removes the backend's object if it still has etag. A
// missing object counts as deleted; errRemoteChanged when it holds
// another one.
func (e *Engine) deleteRemote(ctx context.Context, tenant, key, etag string) error {
	_, err := call(ctx, e, backend.OpDelete, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, e.be.Delete(ctx, tenant, key, backend.Precondition{IfMatch: etag})
	})
	if err == nil {
		e.wrote(tenant, key, etag, "")
	}
	if fault.ClassOf(err) != fault.PreconditionFailed {
		return e.unavailable(err)
	}
	_, err = call(ctx, e, backend.OpStat, func(ctx context.Context) (backend.Entry, error) {
		return e.be.Stat(ctx, tenant, key)
	})
	switch {
	case fault.ClassOf(err) == fault.NotFound:
		return nil
	case err != nil:
		return e.unavailable(err)
	}
	return errRemoteChanged
}

// trim removes tenant's change-log entries that every engine's uploader
// has passed: those at or below the smallest upload position. With no
// engines nothing reads the log, and every entry committed so far goes.
// The entries are counted first (one read of what is removed anyway), for
// the stats and the metric.
func (c *Collector) trim(ctx context.Context, tenant string, st *CollectStats) error {
	upto := ^uint64(0)
	for _, e := range c.engines {
		cp, err := e.loadCheckpoint(tenant)
		if err != nil {
			return err
		}
		upto = min(upto, cp.uploadSeq)
	}
	if upto == 0 {
		return nil
	}
	n, last := 0, uint64(0)
	for ch, err := range c.st.Changes(ctx, tenant, 0, 0) {
		if err != nil {
			return err
		}
		if ch.Seq > upto {
			break
		}
		n, last = n+1, ch.Seq
	}
	if n == 0 {
		return nil
	}
	if err := c.st.TrimChanges(tenant, last); err != nil {
		return err
	}
	st.Trimmed, st.TrimmedTo = n, last
	return nil
}
