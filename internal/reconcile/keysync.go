package reconcile

import (
	"context"
	"errors"
	"fmt"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/store"
)

// keyState is what the engine knows of one key while handling it.
type keyState struct {
	tenant, key string
	local       *store.Record  // the local row (body not loaded), nil if none
	remote      *backend.Entry // the remote object's entry, nil if none
	obj         *backend.Object
	base        *store.SyncState
	// assumed: remote is not read but taken to be the base's object (the
	// uploader's one-request write); a put that finds otherwise fails
	// with errStaleBase.
	assumed bool
	sent    *Uploaded // the last object put for the key, if any
	// announced is the version a feed entry announces for the key; nil
	// outside the feed.
	announced *doc.Version
}

// remoteVersion is the version the remote actually holds, if known: read,
// or recognised by the base's ETag.
func (k *keyState) remoteVersion() *doc.Version {
	switch {
	case k.obj != nil:
		return &k.obj.Version
	case k.remote != nil && k.base != nil && k.remote.ETag != "" && k.remote.ETag == k.base.RemoteETag:
		return &k.base.Base
	}
	return nil
}

func (k *keyState) localVersion() *doc.Version {
	if k.local == nil {
		return nil
	}
	return &k.local.Version
}

func (k *keyState) sides() (l, r, b *Side) {
	if k.local != nil {
		v := k.local.Version
		l = &Side{Version: &v}
	}
	if k.remote != nil {
		r = &Side{ETag: k.remote.ETag}
		if k.obj != nil {
			v := k.obj.Version
			r.Version = &v
		}
	}
	if k.base != nil {
		v := k.base.Base
		b = &Side{Version: &v, ETag: k.base.RemoteETag}
	}
	return l, r, b
}

// errSkip ends a key's handling without an error: it is counted and left
// for the next round.
var errSkip = errors.New("skip")

// syncKey decides and applies one key, holding it in the in-flight set.
// Per-key outcomes (corrupt remote object, a side changed under the
// decision) are counted in st and return nil; other errors end the round.
// g is the round's deletion guard, nil for the uploader.
func (e *Engine) syncKey(ctx context.Context, tenant, key string, local *store.Record, remote *backend.Entry, st *Stats, g *round) error {
	return e.syncKeyKnown(ctx, tenant, key, local, remote, nil, st, g)
}

// syncKeyKnown is syncKey with the remote object already known (obj, with
// its version and body, for remote's ETag; nil: read it if the decision
// needs it), as a feed entry tells it.
func (e *Engine) syncKeyKnown(ctx context.Context, tenant, key string, local *store.Record, remote *backend.Entry, obj *backend.Object, st *Stats, g *round) error {
	return e.syncKeyState(ctx, &keyState{tenant: tenant, key: key, local: local, remote: remote, obj: obj}, st, g)
}

// syncKeyState is syncKeyKnown for a prepared k. A key a feed entry
// announces (k.announced) whose base already holds the announced version
// or a later one is skipped: the entry carries no news. A node restored
// from a pack replays old entries of keys the pack brought up to date, and
// deciding on them took an old entry's ETag for the object's and made a
// conditional put the backend refused, one per old entry.
func (e *Engine) syncKeyState(ctx context.Context, k *keyState, st *Stats, g *round) error {
	tenant, key := k.tenant, k.key
	release, err := e.inflight.Acquire(ctx, tenant, key)
	if err != nil {
		return err
	}
	defer release()
	if k.base, err = e.base(ctx, tenant, key, g); err != nil {
		return err
	}
	if k.announced != nil && k.base != nil {
		if o := k.announced.Compare(&k.base.Base); o == doc.Before || o == doc.Equal {
			return nil
		}
	}
	err = nil
	if g != nil && g.verify && k.remote != nil {
		err = e.fetch(ctx, k) // a scrub reads every object, to verify it
	}
	if err == nil {
		err = e.decideAndApply(ctx, k, st, g)
	}
	return e.settle(ctx, k, err, st)
}

// settle ends a key's handling with the outcome err of deciding and
// applying it: per-key outcomes (skipped, corrupt remote, raced) are
// counted in st and return nil; other errors are returned.
func (e *Engine) settle(ctx context.Context, k *keyState, err error, st *Stats) error {
	tenant, key := k.tenant, k.key
	switch {
	case errors.Is(err, errSkip):
		return nil
	case fault.ClassOf(err) == fault.Corruption && errors.Is(err, errRemote):
		st.Corrupt++
		if o := e.cfg.Observer; o != nil {
			o.ReconcileAction(e.name, ActionCorrupt)
		}
		if k.local == nil {
			// Left for a node that has the key: met again every round
			// until one repairs it (or for good, for an object cairn did
			// not write), so a tenant's lines are thinned.
			e.warnRepeated(ctx, "corrupt "+tenant, "reconcile: corrupt remote object", "backend", e.name,
				"tenant", tenant, "key", key, "repair", false, "err", err)
		} else if l := e.cfg.Logger; l != nil {
			l.WarnContext(ctx, "reconcile: corrupt remote object", "backend", e.name,
				"tenant", tenant, "key", key, "repair", true, "err", err)
		}
		return e.repair(ctx, k, err, st)
	case fault.ClassOf(err) == fault.PreconditionFailed:
		st.Raced++
		if o := e.cfg.Observer; o != nil {
			o.ReconcileAction(e.name, ActionRaced)
		}
		return nil
	}
	return err
}

// base returns key's base (nil if none), taken from round g's base
// listing when it can answer (see basePager), else looked up. Tenants that
// keep ancestors always look it up: listings leave the body out. The caller
// holds key's in-flight slot.
func (e *Engine) base(ctx context.Context, tenant, key string, g *round) (*store.SyncState, error) {
	if g != nil && g.bases != nil && !e.keepsAncestors(tenant) {
		b, ok, err := g.bases.lookup(ctx, key)
		if err != nil || ok {
			return b, err
		}
	}
	if h := e.cfg.onBaseLookup; h != nil {
		h(tenant, key)
	}
	base, ok, err := e.st.SyncState(e.name, tenant, key)
	if err != nil || !ok {
		return nil, err
	}
	return &base, nil
}

// repair overwrites a remote object that failed verification with the
// node's own copy of the key, if it has one (if-match the damaged object's
// ETag). The damaged object is never applied: nothing can be learnt from
// it, and a node that wrote a newer version still holds that version and
// uploads it again when it sees the repaired object (its ETag changed), so
// the repair cannot lose a write. Without a local copy the object is left
// for a node that has one; counted in Stats.Corrupt either way.
//
// Before overwriting, the damaged object is quarantined: a store row with
// its ETag, the verification error and (when the backend returned them)
// its bytes. The row is written first and its failure ends the round, so a
// damaged object is never overwritten without its record.
func (e *Engine) repair(ctx context.Context, k *keyState, cause error, st *Stats) error {
	if k.local == nil || k.remote == nil {
		return nil
	}
	if err := e.quarantine(k, cause, st); err != nil {
		return err
	}
	v := k.local.Version
	body, err := e.localBody(ctx, k, &v)
	if errors.Is(err, errSkip) {
		return nil
	}
	if err != nil {
		return err
	}
	etag, err := e.put(ctx, k, &v, body, st)
	switch {
	case fault.ClassOf(err) == fault.PreconditionFailed:
		st.Raced++ // replaced meanwhile: the next round reads the new object
		return nil
	case err != nil:
		return err
	}
	st.Repaired++
	return e.st.PutSyncState(e.name, k.tenant, k.key, store.SyncState{Base: v, RemoteETag: etag})
}

// goneSinceBase returns k's local version when it is the one the node and
// the backend last agreed on (its base) and the backend's listing no longer
// shows its object.
func goneSinceBase(k *keyState) (*doc.Version, bool) {
	if k.remote != nil || k.assumed || k.local == nil || k.base == nil || k.local.Version.ID() != k.base.Base.ID() {
		return nil, false
	}
	return &k.local.Version, true
}

// lostTombstone reports whether k is a tombstone in sync with its base
// whose object a listing did not show, young enough that the collector
// cannot have removed it (Config.TombstoneGrace).
func (e *Engine) lostTombstone(k *keyState) bool {
	v, gone := goneSinceBase(k)
	return gone && e.cfg.TombstoneGrace > 0 && v.Tombstone && e.cfg.Now().Sub(v.HLC.Time()) < e.cfg.TombstoneGrace/2
}

// errRemote marks errors from reading the remote object.
var errRemote = errors.New("remote read")

func (e *Engine) decideAndApply(ctx context.Context, k *keyState, st *Stats, g *round) error {
	for range 3 {
		d := Explain(k.sides())
		if d.Action == InSync && e.lostTombstone(k) {
			d.Action, d.Reason = Upload, "the backend lost a tombstone younger than half the grace"
		}
		if v, gone := goneSinceBase(k); d.Action == Upload && g != nil && g.heldAtStart && gone && !v.Tombstone {
			// Put back as an object the backend lost; but it may be a
			// deletion the guard holds whose tombstone was collected (a
			// hold marker older than the grace): say so.
			e.warnRepeated(ctx, "held put back "+k.tenant, "reconcile: a held tenant's document, gone from the backend, is put back: if its tombstone was collected, a deletion the mass-deletion guard held is undone",
				"backend", e.name, "tenant", k.tenant, "key", k.key, "runbook", "Tombstones not collected, or a delete undone")
		}
		if d.Action == FetchRemote {
			st.Actions[FetchRemote]++
			if o := e.cfg.Observer; o != nil {
				o.ReconcileAction(e.name, FetchRemote.String())
			}
			if err := e.fetch(ctx, k); err != nil {
				return err
			}
			continue
		}
		if h := e.cfg.beforeApply; h != nil {
			h(k.tenant, k.key, d)
		}
		if d.Deletes && g != nil {
			if err := g.allowDelete(ctx); err != nil {
				return err
			}
		}
		fp := e.cfg.Failpoint
		if fp != nil && d.Action != InSync {
			fp("reconcile.apply.before")
		}
		span := e.decisionSpan(ctx, g, k, d)
		up, down := st.BytesUp, st.BytesDown
		err := e.apply(ctx, k, d, st)
		if fp != nil && d.Action != InSync && err == nil {
			fp("reconcile.apply.after")
		}
		if err == nil {
			st.Actions[d.Action]++
			if d.Deletes {
				st.Deletes++
			}
		}
		if o := e.cfg.Observer; o != nil {
			if err == nil {
				o.ReconcileAction(e.name, d.Action.String())
			}
			if st.BytesUp != up || st.BytesDown != down {
				o.ReconcileBytes(e.name, st.BytesUp-up, st.BytesDown-down)
			}
		}
		if errors.Is(err, errSkip) {
			endDecisionSpan(span, nil) // left on purpose, not failed
		} else {
			endDecisionSpan(span, err)
		}
		return err
	}
	return fmt.Errorf("reconcile %s/%s: no decision after reading the remote object", k.tenant, k.key)
}

// fetch reads the remote object into k (k.remote nil when it is gone).
func (e *Engine) fetch(ctx context.Context, k *keyState) error {
	obj, err := call(ctx, e, backend.OpGet, func(ctx context.Context) (*backend.Object, error) {
		return e.be.Get(ctx, k.tenant, k.key)
	})
	if err == nil {
		if err := e.lim.charge(ctx, len(obj.Body)); err != nil {
			return err
		}
	}
	switch {
	case fault.ClassOf(err) == fault.NotFound:
		k.remote, k.obj = nil, nil
		return nil
	case fault.ClassOf(err) == fault.Corruption:
		return fmt.Errorf("%w: %w", errRemote, err)
	case err != nil:
		return e.unavailable(err)
	}
	k.obj, k.remote = obj, &obj.Entry
	return nil
}

func (e *Engine) apply(ctx context.Context, k *keyState, d Decision, st *Stats) error {
	switch d.Action {
	case InSync:
		return nil
	case UpdateBase:
		if k.local == nil && k.remote == nil {
			return e.st.DeleteSyncState(e.name, k.tenant, k.key)
		}
		var body []byte
		if e.keepsAncestors(k.tenant) && !d.Local.Siblings {
			var err error
			if body, err = e.localBody(ctx, k, d.Local); err != nil {
				return err
			}
		}
		return e.st.PutSyncState(e.name, k.tenant, k.key, e.newBase(k.tenant, d.Local, k.remote.ETag, body))
	case Upload:
		body, err := e.localBody(ctx, k, d.Local)
		if err != nil {
			return err
		}
		etag, err := e.put(ctx, k, d.Local, body, st)
		if err != nil {
			return err
		}
		return e.st.PutSyncState(e.name, k.tenant, k.key, e.newBase(k.tenant, d.Local, etag, body))
	case Download:
		body, err := e.remoteBody(ctx, k, d.Remote)
		if err != nil {
			return err
		}
		return e.install(ctx, k, d.Remote, body, e.remoteETagFor(k, d.Remote), st)
	case Conflict:
		return e.resolve(ctx, k, d, st)
	}
	return fmt.Errorf("reconcile %s/%s: unexpected action %v", k.tenant, k.key, d.Action)
}

// remoteETagFor returns the remote ETag to record with base v: the
// object's, if it holds v; else "" (which never matches), so that a remote
// older copy standing in for a tombstone is still examined next time.
func (e *Engine) remoteETagFor(k *keyState, v *doc.Version) string {
	if r := k.remoteVersion(); r != nil && k.remote != nil && r.ID() == v.ID() {
		return k.remote.ETag
	}
	return ""
}

// put writes v to the backend over what the decision saw: if-match its
// ETag, or if-none-match when there was nothing.
func (e *Engine) put(ctx context.Context, k *keyState, v *doc.Version, body []byte, st *Stats) (string, error) {
	pre := backend.Precondition{IfNoneMatch: true}
	if k.remote != nil {
		pre = backend.Precondition{IfMatch: k.remote.ETag}
	}
	if err := e.lim.charge(ctx, len(body)); err != nil {
		return "", err
	}
	etag, err := call(ctx, e, backend.OpPut, func(ctx context.Context) (string, error) {
		return e.be.Put(ctx, k.tenant, k.key, *v, body, pre)
	})
	if k.assumed && fault.ClassOf(err) == fault.PreconditionFailed {
		return "", fmt.Errorf("%w: %w", errStaleBase, err)
	}
	if err != nil {
		return "", e.unavailable(err)
	}
	k.sent = &Uploaded{Key: k.key, Version: *v, ETag: etag}
	e.wrote(k.tenant, k.key, pre.IfMatch, etag)
	st.BytesUp += int64(len(body))
	e.feed.note(k.tenant, k.key, v, etag, body) // what the backend now holds is news for the peers
	return etag, nil
}

// install applies v locally with a compare-and-set on the local version the
// decision saw, recording base (v, etag) in the same batch. A local write
// made meanwhile fails the CAS (PreconditionFailed): skipped, never
// overwritten.
func (e *Engine) install(ctx context.Context, k *keyState, v *doc.Version, body []byte, etag string, st *Stats) error {
	var expect doc.ID
	if k.local != nil {
		expect = k.local.Version.ID()
	}
	_, err := e.st.Apply(ctx, k.tenant, k.key, *v, body, expect,
		&store.SyncUpdate{Backend: e.name, State: e.newBase(k.tenant, v, etag, body)})
	if err == nil {
		st.BytesDown += int64(len(body))
	}
	return err
}

// localBody returns the body of v from the store (nil for a tombstone);
// errSkip if the store no longer holds v.
//
// A tombstone has no body, but unless it is the base's tombstone standing
// for a local side without the key (the floor rule), the store must still
// hold it: the listing the decision came from may predate the collector
// removing it, and uploading it again would bring back an object the
// collector just deleted.
func (e *Engine) localBody(ctx context.Context, k *keyState, v *doc.Version) ([]byte, error) {
	if v.Tombstone && (k.local == nil || k.local.Version.ID() != v.ID()) {
		return nil, nil
	}
	rec, err := e.st.Get(ctx, k.tenant, k.key)
	if fault.ClassOf(err) == fault.NotFound {
		return nil, errSkip
	}
	if err != nil {
		return nil, err
	}
	if rec.Version.ID() != v.ID() {
		return nil, fault.New(fault.PreconditionFailed, fault.Context{Op: "reconcile.upload", Tenant: k.tenant, Key: k.key}, "written locally since the decision")
	}
	return rec.Body, nil
}

// remoteBody returns the body of v from the backend (nil for a tombstone),
// reading the object unless it was read already.
func (e *Engine) remoteBody(ctx context.Context, k *keyState, v *doc.Version) ([]byte, error) {
	if v.Tombstone {
		return nil, nil
	}
	if k.obj == nil {
		if err := e.fetch(ctx, k); err != nil {
			return nil, err
		}
	}
	if k.obj == nil || k.obj.Version.ID() != v.ID() {
		return nil, fault.New(fault.PreconditionFailed, fault.Context{Op: "reconcile.download", Backend: e.name, Tenant: k.tenant, Key: k.key}, "the backend no longer holds the version decided on")
	}
	return k.obj.Body, nil
}

// resolve settles a conflict under the tenant's policy and writes the
// result to both sides: the backend first (if-match), then the store (CAS,
// with the new base in the same batch). The lww loser is recorded in the
// conflict history first, so it is never lost. Siblings travel the same
// way: the result is the sibling set, which every node then holds (and
// answers 409 for) until a person resolves it.
func (e *Engine) resolve(ctx context.Context, k *keyState, d Decision, st *Stats) error {
	a, err := e.candidate(ctx, k, d.Local)
	if err != nil {
		return err
	}
	b, err := e.candidate(ctx, k, d.Remote)
	if err != nil {
		return err
	}
	pol := e.policyFor(k.tenant)
	res, err := Resolve(pol, a, b, e.ancestor(k, pol, &a.Version, &b.Version))
	if err != nil {
		return err
	}
	if res.Loser != nil {
		if err := e.st.PutConflict(k.tenant, store.ConflictRecord{Key: k.key, Loser: res.Loser.Version,
			Body: res.Loser.Body, Winner: res.Result.Version.ID(), Reason: res.Reason}); err != nil {
			return err
		}
	}
	v, body := &res.Result.Version, res.Result.Body
	etag := e.remoteETagFor(k, v)
	if etag == "" {
		if etag, err = e.put(ctx, k, v, body, st); err != nil {
			return err
		}
	}
	if lv := k.localVersion(); lv != nil && lv.ID() == v.ID() {
		err = e.st.PutSyncState(e.name, k.tenant, k.key, e.newBase(k.tenant, v, etag, body))
	} else {
		err = e.install(ctx, k, v, body, etag, st)
	}
	if err != nil {
		return err
	}
	// Counted once settled: a resolution whose write raced another is
	// decided again, and would be counted at each try.
	st.Conflicts++
	if o := e.cfg.Observer; o != nil {
		o.ReconcileConflict(e.name, pol.String())
	}
	if res.Outcome == Siblings {
		st.Siblings++
	}
	if res.Loser != nil {
		st.Losers++
	}
	return nil
}

// candidate returns v with its body, from whichever side holds it.
func (e *Engine) candidate(ctx context.Context, k *keyState, v *doc.Version) (Candidate, error) {
	c := Candidate{Version: *v}
	if v.Tombstone {
		return c, nil
	}
	var err error
	if lv := k.localVersion(); lv != nil && lv.ID() == v.ID() {
		c.Body, err = e.localBody(ctx, k, v)
	} else {
		c.Body, err = e.remoteBody(ctx, k, v)
	}
	return c, err
}
