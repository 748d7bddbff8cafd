package reconcile

import "github.com/cairnstore/cairn/internal/doc"

// Side is what one place knows about a key: the node's store (local), the
// backend (remote) or the sync state kept for the pair (base). A nil *Side
// means the place has nothing for the key.
type Side struct {
	// Version is the version held. On the remote side it may be nil when
	// only the listing was read (the ETag is known, the object header is
	// not); on the local side and the base it must be set.
	Version *doc.Version
	// ETag is the backend's entity tag of the object: on the remote side,
	// the listed one; on the base, the one recorded when the key was last
	// synced (store.SyncState.RemoteETag). Unused on the local side. An
	// empty ETag never matches.
	ETag string
}

// Action is what the reconciler does for one key. Deletes are tombstone
// versions, so they travel as Upload and Download like any other version;
// [Decision.Deletes] says when an action turns a live document into a
// tombstone (what the mass-deletion guard counts).
type Action uint8

const (
	// InSync: local, remote and base agree. Nothing to do.
	InSync Action = iota
	// UpdateBase: local and remote hold the same version but the base is
	// missing or stale (another version, or another ETag for the same
	// version). Record base = (that version, remote ETag); when both sides
	// are absent, forget the base (store.DeleteSyncState).
	UpdateBase
	// FetchRemote: the remote object changed since the base (its ETag
	// differs, or there is no base) and the listing did not carry its
	// version. Read the object (its header, and the body, which a Download
	// will need anyway) and Decide again with Remote.Version set. Decide
	// never returns FetchRemote when the remote version is known.
	FetchRemote
	// Upload: the backend should hold Decision.Local. Put it with if-match
	// the remote ETag (if-none-match when the remote is absent), then record
	// it as the base. Decision.Local is the base's tombstone when the node
	// has already collected that tombstone; a tombstone has no body, so the
	// version alone is the object.
	Upload
	// Download: the node should hold Decision.Remote. Apply it with a
	// compare-and-set on the local version that was decided on, then record
	// it as the base. Decision.Remote is the base's tombstone when the
	// backend has already collected it.
	Download
	// Conflict: Decision.Local and Decision.Remote are concurrent (or have
	// equal vectors but differ). [Resolve] them under the tenant's policy
	// and write the result to both sides.
	Conflict
)

var actionNames = [...]string{
	InSync:      "in_sync",
	UpdateBase:  "update_base",
	FetchRemote: "fetch_remote",
	Upload:      "upload",
	Download:    "download",
	Conflict:    "conflict",
}

// String returns the name used in logs and metric labels.
func (a Action) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return "unknown"
}

// Decision is Decide's verdict with what it was based on.
type Decision struct {
	Action Action
	// Local and Remote are the versions compared: as given; the base's
	// version for a remote recognised by its ETag; or the base's tombstone
	// standing for a side that has collected it (docs/design/reconcile.md). Nil
	// means absent, or for Remote under FetchRemote, not known.
	Local, Remote *doc.Version
	// Order is Local's causal relation to Remote when both are set.
	Order doc.Ordering
	// Deletes reports that the action replaces a live document with a
	// tombstone at its destination: an Upload of a tombstone over a live
	// remote object, or a Download of a tombstone over a live local one.
	// A Conflict may delete too, depending on its resolution.
	Deletes bool
	// Reason is a short phrase for logs and spans.
	Reason string
}

// Decide returns the action for one key of the merge-join given what the
// node (local), the backend (remote) and the last synced state (base) hold.
// It is Explain(local, remote, base).Action. The table of TestDecideTable
// (decide_test.go) is its specification, case by case.
func Decide(local, remote, base *Side) Action {
	return Explain(local, remote, base).Action
}

// Explain is [Decide] with the versions it compared and its reason. It is a
// pure function: it reads its arguments and nothing else.
func Explain(local, remote, base *Side) Decision {
	// A local side or base without a version is a caller's mistake; it
	// counts as absent rather than panicking on a request path.
	if local != nil && local.Version == nil {
		local = nil
	}
	if base != nil && base.Version == nil {
		base = nil
	}
	var b *doc.Version
	if base != nil {
		b = base.Version
	}
	if local == nil && remote == nil {
		if b == nil {
			return Decision{Action: InSync, Reason: "absent everywhere"}
		}
		return Decision{Action: UpdateBase, Reason: "gone from both sides: forget the base"}
	}

	// The remote version: as listed, or recognised by its unchanged ETag
	// (no GET needed), or unknown.
	var r *doc.Version
	remoteUnchanged := remote != nil && b != nil && remote.ETag != "" && remote.ETag == base.ETag
	if remote != nil {
		r = remote.Version
		if r == nil && remoteUnchanged {
			r = b
		}
		if r == nil {
			return Decision{Action: FetchRemote, Reason: "remote changed since the base; its version is not in the listing"}
		}
	}

	var l *doc.Version
	if local != nil {
		l = local.Version
	}
	// A base tombstone is a floor. A side that lacks the key has collected
	// it, and a side that holds a version the tombstone dominates holds a
	// copy the delete already superseded (restored from a backup, say):
	// either way the side stands for the tombstone, so the delete is never
	// undone by an older copy. (A side that lacks the key while the base is
	// live has lost it, and gets it back.)
	lOld, rOld := l, r // what the sides actually hold
	if b != nil && b.Tombstone {
		l, r = floor(l, b), floor(r, b)
	}
	d := Decision{Local: l, Remote: r}
	switch {
	case l == nil:
		d.Action, d.Reason = Download, "only the backend has it"
		return d
	case r == nil:
		d.Action, d.Reason = Upload, "only the node has it"
		d.Deletes = deletes(l, rOld)
		return d
	}
	d.Order = l.Compare(r)
	switch {
	case l.ID() != r.ID():
	case lOld != nil && lOld != l:
		d.Action, d.Reason = Download, "local is older than the synced tombstone"
		d.Order, d.Deletes = doc.Before, deletes(r, lOld)
		return d
	case rOld != nil && rOld != r:
		d.Action, d.Reason = Upload, "remote is older than the synced tombstone"
		d.Order, d.Deletes = doc.After, deletes(l, rOld)
		return d
	default:
		return same(d, l, b, remote == nil || remoteUnchanged)
	}
	switch d.Order {
	case doc.After:
		d.Action, d.Reason = Upload, "local dominates remote"
		d.Deletes = deletes(l, rOld)
	case doc.Before:
		d.Action, d.Reason = Download, "remote dominates local"
		d.Deletes = deletes(r, lOld)
	case doc.Concurrent:
		d.Action, d.Reason = Conflict, "concurrent versions"
	default:
		d.Action, d.Reason = Conflict, "equal vectors, different versions"
	}
	return d
}

// floor returns the tombstone t for a side that holds v: t if v is absent
// or dominated by t, else v.
func floor(v, t *doc.Version) *doc.Version {
	if v == nil || v.Compare(t) == doc.Before {
		return t
	}
	return v
}

// deletes reports whether writing to over what a side holds (old) turns a
// live document into a tombstone.
func deletes(to, old *doc.Version) bool {
	return to.Tombstone && old != nil && !old.Tombstone
}

func same(d Decision, v, b *doc.Version, etagOK bool) Decision {
	if b == nil {
		d.Action, d.Reason = UpdateBase, "same version on both sides, no base"
		return d
	}
	// A base tombstone that both sides hold a version concurrent with (as
	// after restoring both from a backup) must not be forgotten: it is in
	// conflict with that version. (Versions it dominates were floored.)
	if b.Tombstone && v.ID() != b.ID() {
		if o := v.Compare(b); o == doc.Concurrent || o == doc.Equal {
			d.Remote, d.Order = b, o
			d.Action, d.Reason = Conflict, "both sides concurrent with the synced tombstone"
			return d
		}
	}
	if v.ID() == b.ID() && etagOK {
		d.Action, d.Reason = InSync, "same version on both sides and in the base"
		return d
	}
	d.Action, d.Reason = UpdateBase, "same version on both sides, stale base"
	return d
}
