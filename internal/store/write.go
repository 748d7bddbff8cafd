package store

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
)

// Record is one stored version of a document, or a tombstone
// (Version.Tombstone, Body nil).
type Record struct {
	Tenant, Key string
	// Seq is the node-local commit sequence of this version: strictly
	// increasing over all writes of the node, across restarts. Two versions
	// of a key are ordered by it.
	Seq     uint64
	Version doc.Version
	ETag    string // Version.ETag(), quotes included
	// Body belongs to the caller: the store never modifies it after
	// returning it, and does not keep a reference.
	Body []byte
	// Created is set on a write that found no live version before it (the
	// key was absent or deleted): HTTP's 201 rather than 200.
	Created bool
	// Group is, on a write, the number of writes that shared its group
	// commit (and its fsync); 0 on reads.
	Group int
	// Bulk marks a write made by PutBatch, so a Watcher can treat bulk
	// loads differently (docs.Follower refreshes, but does not admit, them).
	Bulk bool
}

// Put writes body as the new version of (tenant, key) if pre holds against
// the current version. The new version is derived from the current one
// (doc.Derive) by this node's incarnation at the clock's current time. The
// check and the write are atomic with respect to every other write.
//
// Outcomes:
//   - the new Record, durable according to Options.Durability;
//   - fault.Invalid: bad tenant, key, or a body over MaxBody; nothing written;
//   - fault.PreconditionFailed: pre did not hold; nothing written;
//   - the context's class (Canceled or Transient), "not written": ctx ended
//     while the request was still queued;
//   - any other error: the commit failed; the write may or may not be in
//     the log and the store has failed (see ErrFailed).
func (s *Store) Put(ctx context.Context, tenant, key string, body []byte, pre doc.Precondition) (Record, error) {
	if err := validate(opNames[opPut], tenant, key, body); err != nil {
		return Record{}, err
	}
	return s.put(ctx, tenant, key, bytes.Clone(body), pre)
}

// PutOwned is Put for a caller that hands body over to the store: the
// caller must not modify or reuse body after the call, whatever the outcome.
// The store keeps it instead of a copy: the returned Record's Body, and the
// one the Watcher sees, is body itself. It saves one copy of every body on a
// path that already made its own (the HTTP server reads each body into a
// fresh buffer).
func (s *Store) PutOwned(ctx context.Context, tenant, key string, body []byte, pre doc.Precondition) (Record, error) {
	if err := validate(opNames[opPut], tenant, key, body); err != nil {
		return Record{}, err
	}
	return s.put(ctx, tenant, key, body, pre)
}

// put queues a validated Put of body, which the store owns.
func (s *Store) put(ctx context.Context, tenant, key string, body []byte, pre doc.Precondition) (Record, error) {
	if body == nil {
		body = []byte{} // a live document's Body is never nil
	}
	return s.submit(&request{ctx: ctx, op: opPut, tenant: tenant, key: key,
		body: body, hash: doc.HashBody(body), pre: pre})
}

// Delete writes a tombstone as the new version of (tenant, key) if pre holds.
// Deleting an absent or already deleted key is fault.NotFound and writes
// nothing. Other outcomes as for Put.
func (s *Store) Delete(ctx context.Context, tenant, key string, pre doc.Precondition) (Record, error) {
	if err := validate(opNames[opDelete], tenant, key, nil); err != nil {
		return Record{}, err
	}
	return s.submit(&request{ctx: ctx, op: opDelete, tenant: tenant, key: key, pre: pre})
}

// SyncUpdate is a sync-state change written in the same batch as an Apply.
type SyncUpdate struct {
	Backend string
	State   SyncState
}

// Apply installs v (with body; ignored for a tombstone) as the version of
// (tenant, key), for the reconciler, if the current version's ID is expect:
// a compare-and-set, where the zero ID means "no version at all, not even a
// tombstone". v is installed as given; the HLC observes v.HLC so that later
// local writes order after it. If sync is set, it is written in the same
// batch. A live v's Hash must match body.
//
// Outcomes as for Put; a failed compare-and-set is fault.PreconditionFailed.
func (s *Store) Apply(ctx context.Context, tenant, key string, v doc.Version, body []byte, expect doc.ID, sync *SyncUpdate) (Record, error) {
	if v.Tombstone {
		body = nil
	}
	if err := validate(opNames[opApply], tenant, key, body); err != nil {
		return Record{}, err
	}
	if sync != nil {
		if err := validateBackend(sync.Backend); err != nil {
			return Record{}, wrap(opNames[opApply], tenant, key, err)
		}
	}
	body = bytes.Clone(body)
	if !v.Tombstone && body == nil {
		body = []byte{}
	}
	if h := doc.HashBody(body); !v.Tombstone && h != v.Hash {
		return Record{}, fault.New(fault.Invalid, fault.Context{Op: opNames[opApply], Tenant: tenant, Key: key},
			"body does not match the version's content hash")
	}
	if sync != nil {
		defer s.syncWrite()()
	}
	return s.submit(&request{ctx: ctx, op: opApply, tenant: tenant, key: key,
		body: body, version: v, expect: expect, sync: sync})
}

// Collect physically removes the tombstone of (tenant, key) whose version
// ID is id, together with the key's sync state with each of backends, in
// one atomic batch; TrimConflicts drops its conflict history later. It is
// the last step of collecting a delete that every backend holds
// (reconcile.Collector decides when); afterwards Get reports
// fault.NotFound. If the key has no row (collected already), only the sync
// states are removed.
//
// No change-log entry is written (there is nothing to replicate) and the
// Watcher is not told (a cached tombstone reads as not found, like no row).
// A later write to the key starts a new version history; see decide for
// why it cannot be older than the collected tombstone.
//
// Outcomes: nil; fault.PreconditionFailed when the key holds anything but
// that tombstone (a live version, another tombstone): nothing is removed;
// fault.Invalid for bad names; otherwise as for Put.
func (s *Store) Collect(ctx context.Context, tenant, key string, id doc.ID, backends []string) error {
	op := opNames[opCollect]
	if err := validate(op, tenant, key, nil); err != nil {
		return err
	}
	for _, b := range backends {
		if err := validateBackend(b); err != nil {
			return wrap(op, tenant, key, err)
		}
	}
	if len(backends) > 0 {
		defer s.syncWrite()()
	}
	_, err := s.submit(&request{ctx: ctx, op: opCollect, tenant: tenant, key: key, expect: id,
		backends: slices.Clone(backends)})
	return err
}

// validate checks a write's names and body size (class fault.Invalid).
func validate(op, tenant, key string, body []byte) error {
	ctx := fault.Context{Op: op, Tenant: tenant, Key: key}
	if err := doc.ValidateTenant(tenant); err != nil {
		return fault.E(fault.Invalid, fault.Context{Op: ctx.Op}, err)
	}
	if err := doc.ValidateKey(key); err != nil {
		return fault.E(fault.Invalid, fault.Context{Op: ctx.Op, Tenant: tenant}, err)
	}
	if len(body) > MaxBody {
		return fault.New(fault.Invalid, ctx, fmt.Sprintf("body of %d bytes exceeds the store's limit of %d", len(body), MaxBody))
	}
	return nil
}

// validateBackend checks a backend name: 1–255 bytes without NUL, the
// keyspace separator.
func validateBackend(b string) error {
	if b == "" || len(b) > 255 || bytes.IndexByte([]byte(b), sep) >= 0 {
		return fault.New(fault.Invalid, fault.Context{Backend: b}, fmt.Sprintf("backend name %q: must be 1-255 bytes without NUL", b))
	}
	return nil
}
