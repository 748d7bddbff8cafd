package store

import (
	"bytes"
	"context"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
)

// ApplyItem is one version of an [Store.ApplyBatch]: what [Store.Apply]
// takes for one key.
type ApplyItem struct {
	Key     string
	Version doc.Version
	Body    []byte      // copied; ignored for a tombstone
	Expect  doc.ID      // the compare-and-set: zero means no version at all
	Sync    *SyncUpdate // optional base update, in the same batch
}

// ApplyBatch is Apply for many keys of one tenant in one group commit: one
// Pebble batch and one fsync for the whole call, the members staged one
// after the other with no other writer's request in between. Each item is
// still its own Apply: its own compare-and-set, Seq, change-log entry and
// sync state, and the Watcher sees each (with Record.Bulk set, as for
// PutBatch). It is the write path of restoring a tenant from a catch-up
// pack, where a round's Apply per key would pay an fsync per document.
//
// Outcomes: errs has one entry per item, nil for an item installed, or
// that item's error (fault.PreconditionFailed for a failed compare-and-set:
// only that item is skipped). err is set, and errs nil, when nothing was
// queued: fault.Invalid for a bad tenant, key, backend, oversize body or a
// body that does not match its version (checked for every item first), the
// context's class, or a closed store. A failed commit is reported in every
// item's entry, as PutBatch reports it.
func (s *Store) ApplyBatch(ctx context.Context, tenant string, items []ApplyItem) (errs []error, err error) {
	const op = "store.apply"
	if len(items) == 0 {
		return nil, nil
	}
	reply := make(chan *request, len(items))
	members := make([]*request, len(items))
	reqs := make([]request, len(items)) // one allocation for all members
	syncs := false
	for i := range items {
		it := &items[i]
		body := it.Body
		if it.Version.Tombstone {
			body = nil
		}
		if err := validate(op, tenant, it.Key, body); err != nil {
			return nil, err
		}
		if it.Sync != nil {
			if err := validateBackend(it.Sync.Backend); err != nil {
				return nil, wrap(op, tenant, it.Key, err)
			}
			syncs = true
		}
		body = bytes.Clone(body)
		if !it.Version.Tombstone && body == nil {
			body = []byte{}
		}
		if !it.Version.Tombstone && doc.HashBody(body) != it.Version.Hash {
			return nil, fault.New(fault.Invalid, fault.Context{Op: op, Tenant: tenant, Key: it.Key},
				"body does not match the version's content hash")
		}
		reqs[i] = request{ctx: ctx, op: opApply, tenant: tenant, key: it.Key, body: body,
			version: it.Version, expect: it.Expect, sync: it.Sync, reply: reply}
		s.prepare(&reqs[i], false) // takeBatch prefetches the current versions
		members[i] = &reqs[i]
	}
	if err := s.acquire(); err != nil {
		return nil, wrap(op, tenant, "", err)
	}
	defer s.release()
	if err := s.room.take(batchBytes(tenant, members)); err != nil {
		return nil, wrap(op, tenant, "", err)
	}
	if syncs {
		defer s.syncWrite()()
	}
	s.inflight.Add(1) // one writer for the linger decision, as a PutBatch
	defer s.inflight.Add(-1)
	lead := &request{ctx: ctx, op: opApply, tenant: tenant, members: members}
	select {
	case s.reqs <- lead:
	case <-ctx.Done():
		return nil, notWritten(op, lead, ctx.Err())
	}
	// The syncer answers every member; reply has room for all of them.
	for range members {
		<-reply
	}
	errs = make([]error, len(members))
	for i, m := range members {
		errs[i] = m.err
	}
	return errs, nil
}
