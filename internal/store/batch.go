package store

import (
	"bytes"
	"context"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"github.com/cairnstore/cairn/internal/deadline"
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
	if len(items) == 0 {
		return nil, nil
	}
	p, err := s.StartPutBatch(ctx, tenant, items)
	if err != nil {
		return nil, err
	}
	return p.Wait()
}

// PendingBatch is a batch queued by StartPutBatch. Wait must be called
// exactly once: until then the batch counts as an operation in progress,
// which Close waits for.
type PendingBatch struct {
	s       *Store
	members []*request
	reply   chan *request
}

// StartPutBatch queues a PutBatch and returns without waiting for its
// commit, so that a caller streaming batches can prepare the next one
// while the store stages and commits this one (the committer stages batch
// n+1 while the syncer fsyncs batch n). The bodies are copied before it
// returns: items may be reused at once. Errors are those PutBatch returns
// before anything is queued (fault.Invalid, the context, a closed store);
// the rest come from Wait.
func (s *Store) StartPutBatch(ctx context.Context, tenant string, items []Item) (*PendingBatch, error) {
	const op = "store.put"
	p := &PendingBatch{s: s, members: make([]*request, len(items)), reply: make(chan *request, len(items))}
	reqs := make([]request, len(items)) // one allocation for all members
	var keyBytes, bodyBytes int
	for i := range items {
		it := &items[i]
		if err := validate(op, tenant, it.Key, it.Body); err != nil {
			return nil, err
		}
		keyBytes += 2 + len(tenant) + len(it.Key)
		bodyBytes += len(it.Body)
	}
	// The members' keys (prepare's, built here for all of them at once)
	// and their bodies take one allocation each for the whole batch rather
	// than one or two per member. The bodies share one only without a
	// Watcher: a watcher (a node's cache) may keep a body, which would keep
	// the whole batch's bodies in memory.
	dks := make([]byte, 0, keyBytes) // per member: the document row's key, 'd' tenant 0x00 key
	for i := range items {
		dks = append(append(append(append(dks, tableDoc), tenant...), sep), items[i].Key...)
	}
	oks := string(dks) // overlay keys, tenant 0x00 key: each a document key without its table byte
	var bodies []byte
	if s.watcher == nil {
		bodies = make([]byte, 0, bodyBytes)
	}
	pos := 0
	for i := range items {
		it := &items[i]
		var body []byte
		if bodies != nil {
			n := len(bodies)
			bodies = append(bodies, it.Body...)
			body = bodies[n:len(bodies):len(bodies)]
		} else if body = bytes.Clone(it.Body); body == nil {
			body = []byte{}
		}
		end := pos + 2 + len(tenant) + len(it.Key)
		// No read here: takeBatch prefetches the whole batch's current
		// versions with one iterator, which is cheaper than a Get per item.
		reqs[i] = request{ctx: ctx, op: opPut, tenant: tenant, key: it.Key,
			body: body, hash: doc.HashBody(body), reply: p.reply, bulk: true,
			ok: oks[pos+1 : end], dk: dks[pos:end:end]}
		pos = end
		p.members[i] = &reqs[i]
	}
	if len(items) == 0 {
		return p, nil
	}
	if err := s.acquire(); err != nil {
		return nil, wrap(op, tenant, "", err)
	}
	if err := s.room.take(batchBytes(tenant, p.members)); err != nil {
		s.release()
		return nil, wrap(op, tenant, "", err)
	}
	// The batch counts as one writer for the linger decision (handOver): it
	// arrives whole, so there is nothing more of it to wait for.
	s.inflight.Add(1)
	lead := &request{ctx: ctx, op: opPut, tenant: tenant, members: p.members}
	if err := s.enqueue(ctx, lead); err != nil {
		s.inflight.Add(-1)
		s.release()
		return nil, notWritten(op, lead, err)
	}
	return p, nil
}

// Wait waits for the batch's commit and returns its Records in the order
// of the items, or the first error (see PutBatch for the outcomes).
func (p *PendingBatch) Wait() ([]Record, error) {
	if len(p.members) == 0 {
		return nil, nil
	}
	// The syncer answers every member (they are in g.reqs); reply has room
	// for all of them, so it never blocks.
	for range p.members {
		<-p.reply
	}
	p.s.inflight.Add(-1)
	p.s.release()
	recs := make([]Record, len(p.members))
	for i, m := range p.members {
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
	ctxErr, failed := deadline.Err(lead.ctx), s.failedErr()
	if ctxErr == nil && failed == nil {
		s.prefetch(lead.tenant, lead.members)
		if g.batch.Empty() {
			// Sized for the whole batch up front: grown by doubling from
			// Pebble's default, a bulk batch of megabytes would be copied
			// a dozen times while it is staged.
			g.batch.Close()
			g.batch = s.db.NewBatchWithSize(batchBytes(lead.tenant, lead.members))
		}
	}
	g.bulk = true
	g.rowsLater = true
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
			r.rec.Bulk = true
		}
	}
	g.rowsLater = false
	// The document rows and then the sync states, after the change entries
	// (group.rowsLater), each in the members' order: of two members of one
	// key, the later one's row wins, as when staged one after the other.
	for _, r := range lead.members {
		if r.err == nil && r.op != opCollect {
			s.stageRow(g.batch, r.dk, r.rec.Seq, &r.rec.Version, r.body)
		}
	}
	for _, r := range lead.members {
		if r.err == nil && r.op != opCollect && r.sync != nil {
			stageSync(g.batch, r)
		}
	}
}

// batchBytes is about the size of the Pebble batch that stages members,
// and so what they add to the log (the disk reserve counts it too).
func batchBytes(tenant string, members []*request) int {
	n := 64 // the high-water marks commit adds
	for _, r := range members {
		n += rowBytes(tenant, r.key, r.body)
	}
	return n
}

// rowBytes is about what one write adds to a Pebble batch: a document row
// (key, header, body) and a change-log entry (key, key name, version), with
// room for a version with a parent and a vector of a few dots.
func rowBytes(tenant, key string, body []byte) int {
	const perRow = 8 + 128 // batch record framing, an encoded version
	// The document key (tenant, key and their framing), then the change
	// log's key and the key name it holds.
	return 2*perRow + (len(tenant) + len(key) + 2) + len(body) + len(tenant) + 10 + len(key)
}

// prefetch loads the current version of every member's key that the
// overlay does not hold, with one iterator seeking in key order, and puts
// it in the overlay, where stage's lookup finds it. Staging a batch with a
// point Get per key builds a fresh level iterator stack in Pebble each
// time, which would be most of the committer's work; sorted seeks on one
// iterator reuse its loaded blocks.
//
// Why the overlay may hold what was read: lookup returns overlay-or-database
// and the committer is the only writer of document rows, so the database
// state of a key that is not in the overlay cannot change until the
// committer itself stages a write to it. An entry read here is therefore
// exactly what lookup would have returned, and it stays right until stage
// replaces it (right away) or newGroup prunes it (its seq is committed).
// Keys already in the overlay are skipped: the overlay is newer than the
// database for them. Any error leaves the rest to lookup.
func (s *Store) prefetch(tenant string, members []*request) {
	keys := make([]string, 0, len(members))
	f := s.filter.Load()
	for _, r := range members {
		if _, ok := s.overlay[r.ok]; ok {
			continue
		}
		if f != nil && !f.mayHave(r.ok) {
			s.overlay[r.ok] = noRow // keyfilter.go: certainly no row
			continue
		}
		keys = append(keys, r.key)
	}
	if len(keys) == 0 {
		return
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	it, err := s.db.NewIter(&pebble.IterOptions{
		LowerBound: docKey(tenant, keys[0]),
		UpperBound: append(docKey(tenant, keys[len(keys)-1]), 0), // keys hold no NUL
	})
	if err != nil {
		return
	}
	defer it.Close()
	dk := docKey(tenant, "")
	prefix := len(dk)
	for _, k := range keys {
		dk = append(dk[:prefix], k...)
		cur := noRow
		if it.SeekGE(dk) && bytes.Equal(it.Key(), dk) {
			val, err := it.ValueAndErr()
			if err != nil {
				return
			}
			if cur, err = currentOfValue(val); err != nil {
				return // lookup reports it for this key
			}
		} else if it.Error() != nil {
			return
		}
		s.overlay[overlayKey(tenant, k)] = cur
	}
}
