package store

import (
	"bytes"
	"context"
	"errors"
	"iter"

	"github.com/cockroachdb/pebble/v2"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
)

// SyncState is what the reconciler last agreed with a backend about one
// key: the base version of a three-way comparison, the backend's ETag for
// the object holding it and, when the reconciler keeps it, the base's body.
type SyncState struct {
	Base       doc.Version
	RemoteETag string
	// Body is the base version's body, kept as the common ancestor of a
	// three-way merge (the reconciler keeps it for tenants whose policy is
	// merge); nil when not kept. The store stores it as given and does not
	// check it against Base.Hash: the reader does (reconcile.Resolve).
	Body []byte
}

// SyncRecord is a SyncState with its key, as ListSyncState yields it.
type SyncRecord struct {
	Key string
	SyncState
}

// SyncState returns the sync state of (tenant, key) with backend; false if
// there is none.
func (s *Store) SyncState(backend, tenant, key string) (SyncState, bool, error) {
	const op = "store.sync_state"
	if err := validateSync(op, backend, tenant, key); err != nil {
		return SyncState{}, false, err
	}
	val, ok, err := s.getRaw(syncKey(backend, tenant, key))
	if err != nil || !ok {
		return SyncState{}, false, wrapSync(op, backend, tenant, key, err)
	}
	st, err := decodeSyncValue(val)
	return st, err == nil, wrapSync(op, backend, tenant, key, err)
}

// PutSyncState records the sync state of (tenant, key) with backend. It is
// written outside the document write path: to change it atomically with a
// document, use Apply's sync argument. It is not synced on its own: it
// reaches the disk with the next durable write (see writeLazy), so an
// upload does not wait for a sync of its base. A crash can lose it; the
// reconciler then finds the backend already holding the local version
// (UpdateBase) or compares the versions' vectors.
func (s *Store) PutSyncState(backend, tenant, key string, st SyncState) error {
	const op = "store.put_sync_state"
	if err := validateSync(op, backend, tenant, key); err != nil {
		return err
	}
	defer s.syncWrite()()
	return s.writeLazy(op, tenant, key, func(b *pebble.Batch) error {
		return b.Set(syncKey(backend, tenant, key), appendSyncValue(nil, &st), nil)
	})
}

// DeleteSyncState forgets the sync state of (tenant, key) with backend
// (after a tombstone was collected everywhere). Absent is not an error.
// Like PutSyncState, it is not synced on its own.
func (s *Store) DeleteSyncState(backend, tenant, key string) error {
	const op = "store.delete_sync_state"
	if err := validateSync(op, backend, tenant, key); err != nil {
		return err
	}
	defer s.syncWrite()()
	return s.writeLazy(op, tenant, key, func(b *pebble.Batch) error {
		return b.Delete(syncKey(backend, tenant, key), nil)
	})
}

// ListSyncState streams a tenant's sync states with backend, sorted by key,
// over one consistent snapshot, starting after the key after ("" for the
// start). Listings are for scans (the deletion guard's count, the tombstone
// collector): they leave Body nil, so a scan does not copy the ancestors;
// SyncState returns a key's body.
func (s *Store) ListSyncState(ctx context.Context, backend, tenant, after string) iter.Seq2[SyncRecord, error] {
	const op = "store.list_sync_state"
	return func(yield func(SyncRecord, error) bool) {
		if err := validateSync(op, backend, tenant, ""); err != nil {
			yield(SyncRecord{}, err)
			return
		}
		prefix := syncKey(backend, tenant, "")
		lower, upper := prefix, prefixEnd(prefix)
		if after != "" {
			lower = syncKey(backend, tenant, after+"\x00")
		}
		stream(s, ctx, op, tenant, lower, upper, yield, func(k, v []byte) (SyncRecord, bool, error) {
			st, err := decodeSyncValue(v)
			st.Body = nil // aliases the iterator's buffer; see the doc comment
			return SyncRecord{Key: string(k[len(prefix):]), SyncState: st}, true, err
		})
	}
}

// SyncGen returns the sync-state generation: a token for SyncUnchanged.
// Take it before reading sync states (ListSyncState) to find out later
// whether what was read is still current.
func (s *Store) SyncGen() uint64 { return s.syncGen.Load() }

// SyncUnchanged reports whether no write of sync-state rows (of any
// backend or tenant: PutSyncState, DeleteSyncState, Apply with a
// SyncUpdate, Collect with backends) has become visible since SyncGen
// returned gen, and none is in progress. When it reports true, a point
// lookup (SyncState) made now would return what a listing started after
// taking gen returned; a caller that excludes writers of a key by other
// means (the reconciler's in-flight slot) can then use the listed row
// instead of looking it up.
//
// Why both counts: a write raises syncWriting before it can be visible and
// bumps syncGen after it is. A write that became visible after the listing
// read its snapshot either is still in progress now (syncWriting > 0) or
// has bumped syncGen since gen was taken (its bump follows its commit, which
// follows the snapshot, which follows gen). syncWriting is read first: a
// writer found finished there has bumped syncGen already. False reports are
// possible (a write that became visible before the snapshot, any other
// key's write): they cost the caller a lookup, never a stale row.
func (s *Store) SyncUnchanged(gen uint64) bool {
	return s.syncWriting.Load() == 0 && s.syncGen.Load() == gen
}

// syncWrite brackets a write of sync-state rows: call it before the write
// can become visible and call the function it returns once it is (or has
// failed).
func (s *Store) syncWrite() func() {
	s.syncWriting.Add(1)
	return func() {
		s.syncGen.Add(1)
		s.syncWriting.Add(-1)
	}
}

// Checkpoint returns the reconciler's checkpoint for (backend, tenant), an
// opaque value; false if there is none.
func (s *Store) Checkpoint(backend, tenant string) ([]byte, bool, error) {
	const op = "store.checkpoint"
	if err := validateSync(op, backend, tenant, ""); err != nil {
		return nil, false, err
	}
	val, ok, err := s.getRaw(checkpointKey(backend, tenant))
	return val, ok, wrapSync(op, backend, tenant, "", err)
}

// PutCheckpoint durably replaces the checkpoint for (backend, tenant).
func (s *Store) PutCheckpoint(backend, tenant string, data []byte) error {
	const op = "store.put_checkpoint"
	if err := validateSync(op, backend, tenant, ""); err != nil {
		return err
	}
	return s.writeDirect(op, tenant, "", func(b *pebble.Batch) error {
		return b.Set(checkpointKey(backend, tenant), data, nil)
	})
}

// getRaw returns a copy of the value at k.
func (s *Store) getRaw(k []byte) ([]byte, bool, error) {
	if err := s.acquire(); err != nil {
		return nil, false, err
	}
	defer s.release()
	val, closer, err := s.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer closer.Close()
	return bytes.Clone(val), true, nil
}

// validateSync checks the names of a sync-state or checkpoint operation;
// key is checked only when non-empty.
func validateSync(op, backend, tenant, key string) error {
	if err := validateBackend(backend); err != nil {
		return fault.E(fault.Invalid, fault.Context{Op: op, Tenant: tenant, Key: key}, err)
	}
	if err := doc.ValidateTenant(tenant); err != nil {
		return fault.E(fault.Invalid, fault.Context{Op: op, Backend: backend}, err)
	}
	if key != "" {
		if err := doc.ValidateKey(key); err != nil {
			return fault.E(fault.Invalid, fault.Context{Op: op, Backend: backend, Tenant: tenant}, err)
		}
	}
	return nil
}

func wrapSync(op, backend, tenant, key string, err error) error {
	if err == nil {
		return nil
	}
	return fault.E(classify(err), fault.Context{Op: op, Backend: backend, Tenant: tenant, Key: key}, err)
}
