package store

import (
	"bytes"
	"context"

	"github.com/cairnstore/cairn/internal/doc"
)

// Item is one document of a [Store.PutBatch].
type Item struct {
	Key  string
	Body []byte // copied by PutBatch; the caller may reuse it once PutBatch returns
}

// PutBatch writes every item as the new version of (tenant, item.Key),
// unconditionally, in one group commit: one Pebble batch and one fsync for
// the whole call, whatever Options.MaxBatch says, with no other writer's
// request in between. It is the write path of bulk ingestion.
//
// Each item is still its own write of the committer (batch.go's takeBatch
// stages them one after the other into the open group), so each gets its own
// Seq, version and change-log entry, a later item of the same key derives
// from the earlier one, and the Watcher sees every item exactly as it sees a
// Put. Records come back in the order of items.
//
// Outcomes:
//   - the Records, all durable according to Options.Durability;
//   - fault.Invalid: a bad tenant, key or an oversize body (checked for every
//     item before anything is queued); nothing written;
//   - the context's class, "not written": ctx ended while the batch was still
//     queued; nothing written. Once the committer took it, PutBatch waits for
//     the commit, as Put does;
//   - any other error: the commit failed (nothing acknowledged, the store has
//     failed, outcome unknown as for Put), or reading an item's current
//     version failed while staging (a corrupt store: the other items of the
//     batch may be committed).
func (s *Store) PutBatch(ctx context.Context, tenant string, items []Item) ([]Record, error) {
	const op = "store.put"
	if len(items) == 0 {
		return nil, nil
	}
	members := make([]*request, len(items))
	reqs := make([]request, len(items)) // one allocation for all members
	reply := make(chan *request, len(items))
	for i := range items {
		it := &items[i]
		if err := validate(op, tenant, it.Key, it.Body); err != nil {
			return nil, err
		}
		body := bytes.Clone(it.Body)
		if body == nil {
			body = []byte{}
		}
		reqs[i] = request{ctx: ctx, op: opPut, tenant: tenant, key: it.Key,
			body: body, hash: doc.HashBody(body), reply: reply}
		members[i] = &reqs[i]
	}
	lead := &request{ctx: ctx, op: opPut, tenant: tenant, members: members}

	if err := s.acquire(); err != nil {
		return nil, wrap(op, tenant, "", err)
	}
	defer s.release()
	// The batch counts as one writer for the linger decision (handOver): it
	// arrives whole, so there is nothing more of it to wait for.
	s.inflight.Add(1)
	defer s.inflight.Add(-1)
	select {
	case s.reqs <- lead:
	case <-ctx.Done():
		return nil, notWritten(op, lead, ctx.Err())
	}
	// The syncer answers every member (they are in g.reqs); reply has room
	// for all of them, so it never blocks.
	for range members {
		<-reply
	}
	recs := make([]Record, len(members))
	for i, m := range members {
		if m.err != nil {
			return nil, m.err
		}
		recs[i] = m.rec
	}
	return recs, nil
}

// takeBatch is take for a PutBatch: every member joins g, in order, in this
// one call, so a batch is never split across groups nor interleaved with
// other writers. The context and the store's failure are checked once for
// the whole batch, so that all of it is staged or none of it is.
func (s *Store) takeBatch(g *group, lead *request) {
	if s.onTake != nil {
		s.onTake()
	}
	ctxErr, failed := lead.ctx.Err(), s.failedErr()
	for _, r := range lead.members {
		g.reqs = append(g.reqs, r)
		switch {
		case ctxErr != nil:
			r.err, r.expired = notWritten(opNames[r.op], r, ctxErr), true
		case failed != nil:
			r.err = wrap(opNames[r.op], r.tenant, r.key, failed)
		default:
			if err := s.stage(g, r); err != nil {
				r.err = wrap(opNames[r.op], r.tenant, r.key, err)
			}
		}
	}
}
