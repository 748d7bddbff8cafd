package reconcile

import (
	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/store"
)

// Ancestors for three-way merges.
//
// The common ancestor of the node's and a backend's versions of a key is
// the base: the version the two last agreed on. Its body is usually gone
// from the node by the time the two sides conflict (the local write that
// made the conflict replaced it), so the engine keeps a copy in the sync
// state row (store.SyncState.Body) each time it records a base, for
// tenants whose policy is merge only: for the other policies Resolve
// never reads an ancestor.
//
// Cost, for a merge tenant: one more copy of each document's body per
// backend (the row is per backend), written with every base update, and
// read with the base on every key a round or the uploader handles. An
// ancestors table keyed by version ID would share one copy among the
// backends, but dropping a row would then need every backend's bases
// (a reference count kept across engines); with one or two backends the
// per-row copy is simpler and costs about the same.
//
// A tenant switched to merge has bases without bodies until each key's
// next base update; until then its conflicts fall back (no ancestor).

// keepsAncestors reports whether bases of tenant keep their bodies.
func (e *Engine) keepsAncestors(tenant string) bool {
	return e.policyFor(tenant).Strategy == Merge
}

// newBase is the sync state recording v (held by the backend under etag)
// as the base, with body as the ancestor when the tenant keeps ancestors
// and v is a document (not a tombstone, nor a sibling set, whose body is
// not a document and cannot be merged against). body is v's body (allowed
// to be nil when it is not kept).
func (e *Engine) newBase(tenant string, v *doc.Version, etag string, body []byte) store.SyncState {
	st := store.SyncState{Base: *v, RemoteETag: etag}
	if !v.Tombstone && !v.Siblings && e.keepsAncestors(tenant) {
		st.Body = body
		if st.Body == nil {
			st.Body = []byte{}
		}
	}
	return st
}

// ancestor returns the base with its body as the ancestor for resolving a
// and b under pol: only for Merge, and only when the base is live, has its
// body kept (and intact), and is a common ancestor of both (each is it or
// descends from it). Otherwise nil, and Merge falls back.
func (e *Engine) ancestor(k *keyState, pol Policy, a, b *doc.Version) *Candidate {
	base := k.base
	if pol.Strategy != Merge || base == nil || base.Body == nil || base.Base.Tombstone || base.Base.Siblings {
		return nil
	}
	if !descends(a, &base.Base) || !descends(b, &base.Base) {
		return nil
	}
	// A damaged copy falls back like a missing one, rather than failing
	// Resolve (and with it the round) on every pass.
	if doc.HashBody(base.Body) != base.Base.Hash {
		return nil
	}
	return &Candidate{Version: base.Base, Body: base.Body}
}
