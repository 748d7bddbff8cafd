package reconcile

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/store"
)

// Catching up. An engine serves every tenant it knows of: the configured
// ones (Config.Tenants), those with rows in the store and those the backend
// holds (backend.TenantLister). A tenant is catching up with the backend
// until a round of it has completed once: from then on the node holds what
// the backend held when that round listed it, so a "not found" or a failed
// condition decided by the node is an answer; before, it may only mean the
// node has not fetched the document yet. The completed round is kept in the
// tenant's checkpoint, so a restart does not catch up again. A tenant the
// backend holds nothing of has nothing to catch up, once the backend's
// tenants have been listed; until then every known tenant without a
// completed round is taken to be catching up.

// tenantState is what the engine knows of one tenant's catch-up.
type tenantState struct {
	done   bool // a round has completed (kept in the checkpoint)
	remote bool // the backend holds objects of it, or its tenants were never listed
	// startup: the tenant was known before the backend's tenants were
	// first listed, or at that listing; CatchingUpAtStart reports it.
	startup bool
}

func (s *tenantState) catchingUp() bool { return !s.done && s.remote }

// seedTenants learns the configured tenants and those of the store, before
// the engine runs, so that catching up shows from the start. It also notes
// the tenants the store held rows of (heldAtStart): before the node
// serves, so that what clients write or read through during a catch-up
// does not count as a local copy (restoreWanted).
func (e *Engine) seedTenants(ctx context.Context) error {
	stored, err := e.storedTenants(ctx)
	if err != nil {
		return err
	}
	e.heldAtStart = map[string]bool{}
	for _, t := range stored {
		e.heldAtStart[t] = true
	}
	e.learn(ctx, append(slices.Clone(e.cfg.Tenants), stored...), nil, false)
	return nil
}

// localTenants is the configured tenants and those the store holds rows of.
func (e *Engine) localTenants(ctx context.Context) ([]string, error) {
	stored, err := e.storedTenants(ctx)
	return append(slices.Clone(e.cfg.Tenants), stored...), err
}

// storedTenants is the tenants the store holds rows of (those read before
// an error, with it).
func (e *Engine) storedTenants(ctx context.Context) ([]string, error) {
	var ts []string
	for t, err := range e.st.Tenants(ctx) {
		if err != nil {
			return ts, err
		}
		ts = append(ts, t)
	}
	return ts, nil
}

// knownTenants learns the local tenants (configured and in the store) and
// returns every tenant known, sorted, without calling the backend.
func (e *Engine) knownTenants(ctx context.Context) ([]string, error) {
	local, err := e.localTenants(ctx)
	e.learn(ctx, local, nil, false)
	return e.sortedTenants(), err
}

func (e *Engine) sortedTenants() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Sorted(maps.Keys(e.tenants))
}

// Discover lists the tenants the engine serves, sorted: the configured
// ones, the store's, and the backend's (listed now, through the policy and
// Limits). On an error (the store's, or the backend listing's) it still
// returns every tenant known so far, and the error.
func (e *Engine) Discover(ctx context.Context) ([]string, error) {
	local, lerr := e.localTenants(ctx)
	remote, listed, rerr := e.listRemote(ctx)
	e.learn(ctx, local, remote, listed)
	return e.sortedTenants(), errors.Join(lerr, rerr)
}

// Serves reports whether the engine serves tenant: configured, in the
// store, or in the backend (listed now, when no local source has it). sure
// is false when a negative answer cannot be relied on: the store or the
// backend listing failed, or the backend cannot list its tenants.
func (e *Engine) Serves(ctx context.Context, tenant string) (serves, sure bool) {
	local, lerr := e.localTenants(ctx)
	if slices.Contains(local, tenant) {
		return true, true
	}
	remote, listed, rerr := e.listRemote(ctx)
	if slices.Contains(remote, tenant) {
		return true, true
	}
	return false, lerr == nil && rerr == nil && listed
}

// discoverRemote is Discover for a pass, which read the local tenants
// when it started (knownTenants): it lists only the backend's.
func (e *Engine) discoverRemote(ctx context.Context) ([]string, error) {
	remote, listed, err := e.listRemote(ctx)
	e.learn(ctx, nil, remote, listed)
	return e.sortedTenants(), err
}

// listRemote lists the backend's tenants; listed is false when the
// backend cannot list them, or the listing failed.
func (e *Engine) listRemote(ctx context.Context) (ts []string, listed bool, err error) {
	type result struct {
		ts []string
		ok bool
	}
	r, err := call(ctx, e, backend.OpTenants, func(ctx context.Context) (result, error) {
		ts, ok, err := backend.ListTenants(ctx, e.be)
		return result{ts, ok}, err
	})
	if err != nil {
		return nil, false, fmt.Errorf("reconcile: listing the tenants of backend %s: %w", e.name, e.unavailable(err))
	}
	return r.ts, r.ok, nil
}

// learn records tenants: local ones (configured or in the store) and, when
// listed is true, exactly the backend's. The checkpoints of tenants not
// known before are read to find whether a round of them has completed.
func (e *Engine) learn(ctx context.Context, local, remote []string, listed bool) {
	e.mu.Lock()
	var fresh []string
	for _, t := range slices.Concat(local, remote) {
		if _, ok := e.tenants[t]; !ok && !slices.Contains(fresh, t) {
			fresh = append(fresh, t)
		}
	}
	e.mu.Unlock()
	done := make(map[string]bool, len(fresh))
	for _, t := range fresh {
		cp, err := e.loadCheckpoint(t)
		done[t] = err == nil && cp.caughtUp // an unreadable checkpoint: catch up again
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	// Before the backend's tenants were first listed, a tenant may be
	// there; after, one that is new here is taken not to be until a
	// listing finds it (the pass's discover turn), so that a tenant first
	// written on this node does not turn to catching up.
	startup := !e.listed
	for _, t := range fresh {
		if _, ok := e.tenants[t]; !ok {
			s := &tenantState{done: done[t], remote: !e.listed, startup: startup}
			e.tenants[t] = s
			e.catching.Add(one(s.catchingUp()))
		}
	}
	if !listed {
		return
	}
	inRemote := make(map[string]bool, len(remote))
	for _, t := range remote {
		inRemote[t] = true
	}
	for t, s := range e.tenants {
		was := s.catchingUp()
		s.remote = inRemote[t]
		e.catching.Add(one(s.catchingUp()) - one(was))
	}
	e.listed = true
}

// one is 1 for true, 0 for false.
func one(b bool) int32 {
	if b {
		return 1
	}
	return 0
}

// roundCompleted records that a round of tenant completed.
func (e *Engine) roundCompleted(tenant string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s, ok := e.tenants[tenant]; ok {
		e.catching.Add(-one(s.catchingUp()))
		s.done = true
		return
	}
	e.tenants[tenant] = &tenantState{done: true}
}

// CatchingUp reports whether tenant is catching up with the backend: the
// backend may hold documents of it that the node does not hold yet.
func (e *Engine) CatchingUp(tenant string) bool {
	if e.catching.Load() == 0 { // every read asks: no lock once caught up
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	s, ok := e.tenants[tenant]
	return ok && s.catchingUp()
}

// Knows reports whether the engine has learned of tenant: configured, in
// the store, or in the backend's listing (at start, or a round's since).
// It calls nothing.
func (e *Engine) Knows(tenant string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, ok := e.tenants[tenant]
	return ok
}

// CatchingUpAtStart returns, sorted, the tenants still catching up among
// those the engine knew when it started (the configured ones, the store's,
// and the backend's at its first listing): a node is not ready until they
// are done. A tenant that appears in the backend later catches up without
// holding up the node's readiness, so that every node sharing a backend
// does not turn unready at once when a tenant is added.
func (e *Engine) CatchingUpAtStart() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var ts []string
	for t, s := range e.tenants {
		if s.startup && s.catchingUp() {
			ts = append(ts, t)
		}
	}
	slices.Sort(ts)
	return ts
}

// ReadThrough reads tenant's key from the backend, verified, for a node
// that does not hold it yet; it stores nothing (Adopt stores what a client
// was served). It goes through the resilience policy (an open breaker refuses at once with
// ErrBackendUnavailable) but not Limits, which bound the reconciler's own
// load: a client's read must not wait behind the round it is standing in
// for. It is counted among the backend calls (BackendObserver). Outcomes
// are backend.Get's.
func (e *Engine) ReadThrough(ctx context.Context, tenant, key string) (*backend.Object, error) {
	return callUnlimited(ctx, e, backend.OpGet, func(ctx context.Context) (*backend.Object, error) {
		return e.be.Get(ctx, tenant, key)
	})
}

// Adopt applies obj, a version of tenant's key that ReadThrough read and a
// client is to be served, to the node as the change feed applies a peer's news:
// decided against the node's version under the tenant's policy, stored,
// and the sync state recorded. A node catching up otherwise holds, once
// its round has passed the key, whatever the backend held when the round
// read it, which may be older than what the client was shown meanwhile;
// adopted, the version shown is never followed by an older one. Errors are
// the decision's and the store's (the key is left to the rounds).
func (e *Engine) Adopt(ctx context.Context, tenant, key string, obj *backend.Object) error {
	local, err := e.localHeader(ctx, tenant, key)
	if err != nil {
		return err
	}
	var st Stats
	return e.syncKeyKnown(ctx, tenant, key, local, &obj.Entry, obj, &st, nil)
}

// localHeader is the node's version of tenant's key without its body, as
// the decision takes it; nil when the node has none.
func (e *Engine) localHeader(ctx context.Context, tenant, key string) (*store.Record, error) {
	rec, err := e.st.Get(ctx, tenant, key)
	switch {
	case err == nil:
		rec.Body = nil
		return &rec, nil
	case fault.ClassOf(err) == fault.NotFound:
		return nil, nil
	}
	return nil, err
}
