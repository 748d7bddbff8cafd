package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/cairnstore/cairn/internal/deadline"
	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
)

// The write path is a two-stage pipeline; docs/design/store.md says why.
//
//	writers ──reqs──► committer (run) ──toSync──► syncer (syncLoop) ──reply──► writers
//
// The committer owns the document state of the write path (overlay, seq,
// hlcMark): it evaluates each request in order against the committed state
// plus everything staged, and stages the writes into the open group's
// batch. The syncer commits one group at a time with one fsync and answers
// its requests. While the syncer waits for an fsync, the committer already
// evaluates the next group, so the CPU work overlaps the disk wait.

type opKind uint8

const (
	opPut opKind = iota
	opDelete
	opApply
	opCollect
)

var opNames = [...]string{opPut: "store.put", opDelete: "store.delete", opApply: "store.apply", opCollect: "store.collect"}

// request is one queued write. The caller fills the inputs and waits on
// reply; the committer (or, for a failed commit, the syncer) fills rec or
// err, and the syncer sends it back once.
type request struct {
	ctx         context.Context
	op          opKind
	tenant, key string
	body        []byte   // private copy; nil for deletes
	hash        doc.Hash // of body, computed by the caller off the committer
	pre         doc.Precondition
	version     doc.Version // opApply: the version to install
	expect      doc.ID      // opApply: the current version's ID, zero = absent; opCollect: the tombstone's ID
	sync        *SyncUpdate // opApply: optional base update
	backends    []string    // opCollect: the backends whose sync state goes too
	bulk        bool        // a PutBatch member: unconditional, it replaces open siblings too

	// Prepared by the caller off the committer (prepare), so that the
	// committer's serial work per write is only what needs the order.
	ok     string   // the overlay key (overlayKey)
	dk     []byte   // the document row's Pebble key
	seen   *current // the key's committed state as the caller read it; nil if not read
	seenAt uint64   // Store.committed before that read (see lookup)
	state  *current // the state this write leaves, once staged (recentStates)
	update bool     // staged over an existing version (recentStates records it)

	members []*request // PutBatch: the writes taken together in one group (batch.go)

	expired bool   // answered with its context error before joining a batch
	rec     Record // the answer
	err     error
	reply   chan *request // buffered(1): the syncer never blocks on it
}

// submit queues r and waits for its answer. A request still queued when its
// context ends is answered with the context error by the committer and is
// not written; once the committer has taken it, the caller waits for the
// commit (one fsync) so that every answer is definite.
func (s *Store) submit(r *request) (Record, error) {
	op := opNames[r.op]
	if err := s.acquire(); err != nil {
		return Record{}, wrap(op, r.tenant, r.key, err)
	}
	defer s.release()
	if r.op != opCollect { // a collection is how a store frees space
		if err := s.room.take(rowBytes(r.tenant, r.key, r.body)); err != nil {
			return Record{}, wrap(op, r.tenant, r.key, err)
		}
	}
	s.prepare(r, true)
	return s.send(op, r)
}

// send queues a prepared r and waits for its answer (see submit).
func (s *Store) send(op string, r *request) (Record, error) {
	s.inflight.Add(1)
	defer s.inflight.Add(-1)
	s.cameBack()
	if err := deadline.Err(r.ctx); err != nil {
		return Record{}, notWritten(op, r, err)
	}
	r.reply = make(chan *request, 1)
	if err := s.enqueue(r.ctx, r); err != nil {
		return Record{}, notWritten(op, r, err)
	}
	<-r.reply
	return r.rec, r.err
}

// enqueue puts r on the committer's queue, or returns the error of ctx if
// it ends first. A request context may carry its deadline as a value
// (package deadline) rather than a timer: the committer checks it when it
// takes the request, so a timer is made only when the queue is full and
// the writer must be woken at the deadline.
func (s *Store) enqueue(ctx context.Context, r *request) error {
	select {
	case s.reqs <- r:
		return nil
	default:
	}
	wctx, cancel := deadline.Bound(ctx)
	defer cancel()
	select {
	case s.reqs <- r:
		return nil
	case <-wctx.Done():
		return wctx.Err()
	}
}

// prepare does, on the caller's goroutine, the part of a write's work that
// does not depend on the writes queued before it: the keys, and (if read)
// the key's committed state, which is what the committer would otherwise
// look up itself with a Pebble Get, one write at a time.
//
// Why the committer may use the state read here (lookup): it is read after
// loading committed (seenAt), so it reflects every write with Seq ≤ seenAt.
// Every later write to the key is still in the overlay when the committer
// takes r, unless newGroup pruned it, and newGroup prunes only entries with
// Seq ≤ the committed mark of that moment (prunedAt). So when the key is not
// in the overlay and prunedAt ≤ seenAt, no write to the key is missing from
// what was read; otherwise lookup reads again.
func (s *Store) prepare(r *request, read bool) {
	r.ok = overlayKey(r.tenant, r.key)
	r.dk = docKey(r.tenant, r.key)
	if !read {
		return
	}
	r.seenAt = s.committed.Load()
	if c, err := s.readCommitted(r.ok, r.dk); err == nil {
		r.seen = c // on an error, lookup reads again and reports it
	}
}

// overlayKey is the overlay's key for (tenant, key).
func overlayKey(tenant, key string) string { return tenant + "\x00" + key }

func notWritten(op string, r *request, err error) error {
	return fault.E(fault.Unknown, fault.Context{Op: op, Tenant: r.tenant, Key: r.key},
		fmt.Errorf("not written: %w", err))
}

// run is the committer goroutine. It stages requests into the open group
// while the syncer commits the previous one, and hands the open group over
// when the syncer is idle and handOver says so. It stops taking requests
// while the open group is full. It returns when Close closes reqs, after
// handing over the last group, and closes toSync so the syncer returns too.
func (s *Store) run() {
	defer close(s.toSync)
	var (
		g       *group // the open group; nil when empty
		busy    bool   // the syncer has a group
		linger  = time.NewTimer(time.Hour)
		waiting bool // linger is running for g
	)
	linger.Stop()
	defer linger.Stop()
	for {
		if g != nil && !busy && s.handOver(g) {
			linger.Stop()
			s.toSync <- g // buffered: the idle syncer has room
			g, busy, waiting = nil, true, false
			continue
		}
		if g != nil && !busy && !waiting {
			linger.Reset(s.lingerFor())
			waiting = true
		}
		recv := s.reqs
		if g != nil && g.full(s.maxBatch) {
			recv = nil
		}
		select {
		case r, ok := <-recv:
			if !ok {
				s.finish(g, busy)
				return
			}
			if g == nil {
				g = s.newGroup()
			}
			s.take(g, r)
		case <-s.syncIdle:
			busy = false
		case m := <-s.filterCh:
			s.applyFilterMsg(m)
		case <-linger.C:
			s.notBack()
			s.handOverNow(g)
			g, busy, waiting = nil, true, false
		}
	}
}

// handOver decides whether to commit the open group now that the syncer is
// idle. Group commit needs the group to hold the writers that are about to
// arrive, or it splits them into two half-size groups that take turns,
// each paying a full fsync: while one commits, the other is answered and
// comes back. So the committer lingers a little (lingerFor) while more
// writers are in flight than the group holds, as PostgreSQL's commit_delay
// does when commit_siblings are active, and while writers the last group
// answered are expected back (expectBack). A lone writer never waits.
func (s *Store) handOver(g *group) bool {
	return s.noLinger || g.full(s.maxBatch) ||
		s.inflight.Load()+s.returning.Load() <= int64(len(g.reqs))
}

// lingerFor bounds the wait for more writers: twice the last commit's
// duration, at most a millisecond. A closed-loop client over the network
// is back with its next write one round trip after its answer, which on a
// busy node takes longer than the commit itself (the answers and the next
// requests of a whole group are served first); waiting for it saves a
// commit of its own.
func (s *Store) lingerFor() time.Duration {
	return min(2*time.Duration(s.lastCommit.Load()), time.Millisecond)
}

// expectBack is the syncer's, before it answers g: the committer is to
// expect g's single writers back with another write, as clients that write
// in a loop (a connection pool under load) are, one round trip after their
// answer. cameBack counts each write that arrives against them. A linger
// that runs out ends the expectation (notBack); if half or more of the
// writers expected were not back by then (clients that pause between
// writes, or are gone), the syncer expects nobody for the next
// noExpectGroups groups, so that such clients pay a linger once in that
// many groups, not at every commit. A batch's members are not counted: a
// batch is one writer, and arrives whole.
func (s *Store) expectBack(g *group) {
	n := int64(g.writers)
	if s.noExpect.Load() > 0 {
		s.noExpect.Add(-1)
		n = 0
	}
	s.expected.Store(n)
	s.returning.Store(n)
}

// noExpectGroups is how many groups expect no writer back after a linger
// ran out waiting for one.
const noExpectGroups = 16

// cameBack counts a write arriving against the writers expected back.
func (s *Store) cameBack() {
	for {
		n := s.returning.Load()
		if n <= 0 || s.returning.CompareAndSwap(n, n-1) {
			return
		}
	}
}

// notBack is the committer's when a linger runs out: the writers expected
// back and not come are expected no longer.
func (s *Store) notBack() {
	if left := s.returning.Swap(0); left > 0 && 2*left >= s.expected.Load() {
		s.noExpect.Store(noExpectGroups)
	}
}

// handOverNow gives g to the idle syncer (linger expired).
func (s *Store) handOverNow(g *group) { s.toSync <- g }

// finish hands over the last group on Close, once the syncer is idle.
func (s *Store) finish(g *group, busy bool) {
	if g == nil {
		return
	}
	if busy {
		<-s.syncIdle
	}
	s.toSync <- g
}

func (g *group) full(maxBatch int) bool {
	return len(g.reqs) >= maxBatch || g.bytes >= maxBatchBytes
}

// take evaluates r into g. Every request joins the group, also those
// answered with an error now, so that answers go out in order and only
// after the writes they were decided against have committed.
func (s *Store) take(g *group, r *request) {
	if r.members != nil {
		s.takeBatch(g, r) // batch.go: the members join g, not r
		return
	}
	g.reqs = append(g.reqs, r)
	g.writers++
	if s.onTake != nil {
		s.onTake()
	}
	if err := deadline.Err(r.ctx); err != nil {
		r.err, r.expired = notWritten(opNames[r.op], r, err), true
		return
	}
	if err := s.failedErr(); err != nil {
		r.err = wrap(opNames[r.op], r.tenant, r.key, err)
		return
	}
	if err := s.stage(g, r); err != nil {
		r.err = wrap(opNames[r.op], r.tenant, r.key, err)
	}
}

// current is what the committer knows of a key: its latest version,
// committed or staged.
type current struct {
	exists bool
	seq    uint64
	v      doc.Version
	id     doc.ID
	etag   string
	set    []byte // the sibling-set body when v.Siblings (siblings.go), else nil
}

func (c *current) live() bool { return c.exists && !c.v.Tombstone }

// noRow is the state of a key with no document row. It is shared, so a
// current is never modified once made (a new state is a new current).
var noRow = &current{}

// group is one group commit: built by the committer, then owned by the
// syncer.
type group struct {
	batch *pebble.Batch
	// changes holds the group's change-log entries, appended to batch when
	// it commits. The memtable inserts a batch's keys in the batch's
	// order, reusing the previous insert's position in its skiplist when
	// the next key follows it: interleaved with the document rows (random
	// keys) every change entry would be searched for from the top; after
	// them, each follows the one before (same tenant, next Seq).
	changes *pebble.Batch
	// bulk: a PutBatch or ApplyBatch joined the group. Its batch is sized
	// up front for the change entries too, and one of ingest's size (over
	// half a memtable) is committed by Pebble as a table of its own, not
	// inserted into the memtable, so change entries go straight into batch.
	bulk bool
	// rowsLater: stage leaves out the document row and the sync state;
	// takeBatch writes a bulk batch's rows, then its sync states, after all
	// its change-log entries. Pebble sorts a batch committed as a table
	// (sort.Sort over its entries) and inserts a smaller one into the
	// memtable in order. Change entries (table 'c', one tenant, consecutive
	// Seqs), then document rows (table 'd'), then sync states (table 's')
	// are runs in key order when the records are, as an export or a
	// generated file is, which a sort passes over almost in linear time;
	// staged alternately they are in no order.
	rowsLater bool
	reqs      []*request    // in the order taken, answered in that order
	writers   int           // single writes among reqs (a batch's members are not): the writers expectBack counts on
	seq       uint64        // last Seq staged
	hlc       doc.Timestamp // HLC high-water mark including this group
	n         int           // writes staged
	bytes     int           // body bytes staged
}

// changeBatch is the batch g's change-log entries go into: their own,
// which the commit appends after the group's document rows
// (group.changes), or, once a bulk write joined, the group's batch
// (group.bulk).
func (s *Store) changeBatch(g *group) *pebble.Batch {
	if g.bulk {
		return g.batch
	}
	if g.changes == nil {
		g.changes = s.db.NewBatch()
	}
	return g.changes
}

// maxOverlay bounds the overlay before newGroup prunes it.
const maxOverlay = 8192

// newGroup opens a group, first pruning the overlay of committed entries if
// it grew: a committed entry equals what Pebble returns, so dropping it
// changes nothing. At most two groups are uncommitted, so pruning leaves
// the entries of two groups: 2×MaxBatch for single writes, more when a
// PutBatch (which is never split) or its prefetch of absent keys made a
// group larger.
func (s *Store) newGroup() *group {
	if len(s.overlay) > s.maxOverlay {
		committed := s.committed.Load()
		for k, c := range s.overlay {
			if c.seq <= committed {
				delete(s.overlay, k)
			}
		}
		s.prunedAt = committed // see prepare
	}
	return &group{batch: s.db.NewBatch(), seq: s.seq, hlc: s.hlcMark}
}

// syncLoop is the syncer goroutine: it commits the groups the committer
// hands over, one at a time and in order, then answers their requests. It
// returns when the committer closes toSync, and closes done.
func (s *Store) syncLoop() {
	defer close(s.done)
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	defer settle.Stop()
	var unsettled *marks // the marks of the last group committed, if a bulk one: only its own key holds them
	for {
		var g *group
		select {
		case g = <-s.toSync:
		case <-settle.C:
			s.settleMarks(unsettled)
			unsettled = nil
			continue
		}
		if g == nil {
			return // the committer closed toSync
		}
		if g.n > 0 {
			if s.commit(g) {
				unsettled = nil
				if settle.Stop(); g.bulk {
					unsettled = &marks{seq: g.seq, hlc: g.hlc}
					settle.Reset(s.settleAfter)
				}
			}
			next := make(chan struct{})
			close(*s.durable.Swap(&next)) // after commit's committed.Store: see waitDurable
		}
		g.batch.Close()
		if g.changes != nil {
			g.changes.Close()
		}
		s.expectBack(g)
		for _, r := range g.reqs {
			if r.err == nil && !r.expired {
				r.rec.Group = g.n
			}
			r.reply <- r
		}
		s.syncIdle <- struct{}{} // buffered(1): the committer took the previous one before handing g over
	}
}

// marks are a group's high-water marks: its last Seq and its HLC.
type marks struct {
	seq uint64
	hlc doc.Timestamp
}

// settleMarks writes m, the marks of the last group committed, a bulk
// one, into metaSeq and metaHLC, once no group has followed it for
// settleAfter (see stageMarks): a directory a crash leaves after a load
// then has its marks where a build that knows only those two keys reads
// them (docs/deploy.md, "Upgrading and rolling back"). Only the syncer
// writes marks, in commit order, so these never go back.
func (s *Store) settleMarks(m *marks) {
	if m == nil || s.failedErr() != nil {
		return
	}
	b := s.db.NewBatch()
	defer b.Close()
	_ = b.Set(metaHLC, encodeUint64(uint64(m.hlc)), nil)
	_ = b.Set(metaSeq, encodeUint64(m.seq), nil)
	// Synced whatever the durability: under buffered, a bulk group large
	// enough to be flushed as its own table is durable before the log is
	// synced, and the marks must not be the part a power loss takes. A
	// failure fails the store (commitBatch), as a group's would; the marks
	// stay in the bulk key, where this build reads them.
	if s.commitBatch(b, pebble.Sync) == nil && s.onSettle != nil {
		s.onSettle(m.seq)
	}
}

// commit writes the high-water marks into the group's batch and commits
// it, and reports whether it did. On failure every request of the group
// that was not already answered with its own context error gets the commit
// error, nothing is acknowledged, and the store fails (see ErrFailed). A
// group staged on top of a failed one is not committed: its decisions rest
// on writes that may not exist.
func (s *Store) commit(g *group) bool {
	err := s.failedErr()
	var dur time.Duration
	if err == nil {
		if g.changes != nil {
			_ = g.batch.Apply(g.changes, nil) // fails only on a closed or indexed batch
		}
		s.stageMarks(g)
		if s.failAt != nil {
			s.failAt("store.commit.before-sync")
		}
		if s.onBatch != nil {
			s.onBatch(g.batch)
		}
		start := time.Now()
		err = s.commitBatch(g.batch, s.wopts)
		dur = time.Since(start)
		if err != nil {
			err = fmt.Errorf("commit: %w", err)
		}
	}
	if err != nil {
		for _, r := range g.reqs {
			if !r.expired {
				r.rec, r.err = Record{}, wrap(opNames[r.op], r.tenant, r.key, err)
			}
		}
		return false
	}
	if s.failAt != nil {
		s.failAt("store.commit.after-sync")
	}
	s.recent.record(g) // before the mark: see recentStates
	s.committed.Store(g.seq)
	s.watch(g)
	s.lastCommit.Store(int64(dur))
	if s.onCommit != nil {
		s.onCommit(g.n, dur)
	}
	return true
}

// watch tells the watcher, if any, about every write committed in g.
func (s *Store) watch(g *group) {
	if s.watcher == nil {
		return
	}
	for _, r := range g.reqs {
		// A collection changes nothing a reader sees (a tombstone and no
		// row both read as not found), so the watcher is not told.
		if !r.expired && r.err == nil && r.op != opCollect {
			s.watcher.Committed(&r.rec)
		}
	}
}

// waitDurable returns once the write at seq is durable, for a reader that
// found it in Pebble. Pebble makes a batch visible to readers as soon as it
// is in the memtable, before its WAL fsync completes (its commit pipeline
// says so, and leaves it to the application): a read returning such a
// version would show a client a write that a crash can still take away,
// while the writer is not yet answered. So a reader that meets a version
// newer than committed waits for the group commit in flight, at most one
// fsync; versions already durable, nearly all of them, cost one atomic load.
// It fails if the store failed (the write may never be durable) or ctx
// ends.
//
// No wakeup is lost: the syncer stores committed before it closes the
// channel, and the reader loads the channel before it reads committed.
func (s *Store) waitDurable(ctx context.Context, seq uint64) error {
	if seq <= s.committed.Load() {
		return nil
	}
	ctx, cancel := deadline.Bound(ctx) // it waits: a carried deadline needs its timer
	defer cancel()
	for {
		ch := s.durable.Load()
		if seq <= s.committed.Load() {
			return nil
		}
		if err := s.failedErr(); err != nil {
			return err
		}
		select {
		case <-*ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// failedErr returns the sticky failure, if any. The committer asks for every
// request, so the common case (no failure) reads an atomic, not s.mu.
func (s *Store) failedErr() error {
	if !s.hasFailed.Load() {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

// stage evaluates r against the current state and, if it may proceed,
// stages its writes in the group's batch and sets r.rec.
func (s *Store) stage(g *group, r *request) error {
	cur, err := s.lookup(r)
	if err != nil {
		return err
	}
	v, err := s.decide(cur, r)
	if err != nil {
		return err
	}
	if r.op == opCollect {
		s.stageCollect(g, r, cur)
		return nil
	}
	s.seq++
	s.hlcMark = max(s.hlcMark, v.HLC)
	g.seq, g.hlc = s.seq, s.hlcMark
	g.n++
	g.bytes += len(r.body)
	if !g.rowsLater {
		s.stageRow(g.batch, r.dk, g.seq, &v, r.body)
	}
	// The change-log entry and sync state go through Set, which copies, so
	// the scratch buffer is reused for them.
	ck := appendChangeKey(s.scratch[:0], r.tenant, g.seq)
	s.scratch = appendChangeValue(ck, r.key, &v)
	_ = s.changeBatch(g).Set(s.scratch[:len(ck)], s.scratch[len(ck):], nil)
	if r.sync != nil && !g.rowsLater {
		stageSync(g.batch, r)
	}
	next := currentOf(g.seq, v, v.ID())
	if v.Siblings || cur.v.Siblings {
		stageSiblings(g.batch, r, cur, next) // siblings.go
	}
	s.filterStaged(r.ok, !cur.exists)
	s.overlay[r.ok] = next
	r.state, r.update = next, cur.exists
	r.rec = Record{Tenant: r.tenant, Key: r.key, Seq: g.seq, Version: v, ETag: next.etag, Body: r.body,
		Created: !v.Tombstone && !cur.live()}
	return nil
}

// stageRow writes a document row into b: the record header, then the body,
// written straight into the batch so that the body is copied once, by the
// batch. Set on a batch fails only on a closed batch.
func (s *Store) stageRow(b *pebble.Batch, dk []byte, seq uint64, v *doc.Version, body []byte) {
	hdr := appendRecordHeader(s.scratch[:0], seq, v)
	op := b.SetDeferred(len(dk), len(hdr)+len(body))
	copy(op.Key, dk)
	copy(op.Value[copy(op.Value, hdr):], body)
	_ = op.Finish()
	s.scratch = hdr
}

// stageMarks writes the high-water marks into g's batch, after its rows
// (group.rowsLater), in key order.
//
// A group that a bulk write joined writes them under a key of its own,
// markKey(g.seq), never written again, instead of overwriting metaSeq and
// metaHLC. Why: a bulk load's batches otherwise each overwrite the same two
// keys, so every memtable flushed during the load holds a table of them
// that overlaps the one of every flush before it. Pebble stacks such tables
// in sublevels of L0 and, past four, compacts L0 into the level below,
// taking in the load's document and change-log tables beside them, which
// overlap nothing, and rewriting them while the load runs
// (docs/design/store.md). With the marks in keys that only grow, a load's
// tables overlap nothing and stay where the flush put them until later
// writes need L0 compacted. The syncer writes the last bulk group's marks
// into metaSeq and metaHLC once no group has followed it for settleAfter
// (settleMarks): the load is over, and one table overlapping the next
// costs nothing then. Open folds the bulk marks back into metaSeq and
// metaHLC and deletes them; Close does too after a bulk write
// (foldMarks). In between, every maxBulkMarks-th bulk group deletes the
// ones before it, so that a node that applies batches for days keeps a
// bounded number of them; one range deletion in so many groups costs
// nothing that matters.
//
// It runs on the syncer's goroutine (commit), which owns bulkMarks.
func (s *Store) stageMarks(g *group) {
	if !g.bulk {
		_ = g.batch.Set(metaHLC, encodeUint64(uint64(g.hlc)), nil)
		_ = g.batch.Set(metaSeq, encodeUint64(g.seq), nil)
		return
	}
	key := markKey(g.seq)
	if s.bulkMarks >= maxBulkMarks {
		_ = g.batch.DeleteRange(metaMark, key, nil) // the earlier groups' marks; this one's key ends the range
		s.bulkMarks = 0
	}
	_ = g.batch.Set(key, encodeUint64(uint64(g.hlc)), nil)
	s.bulkMarks++
}

// maxBulkMarks bounds the bulk groups' marks kept between two folds.
const maxBulkMarks = 1024

// defaultSettleAfter is how long the syncer waits after a bulk group for
// another group before it settles the marks (settleMarks): long enough
// that a load's groups, which follow each other within milliseconds, write
// none, short enough that a crash soon after a load finds them settled.
const defaultSettleAfter = time.Second

// stageSync writes r's sync state into b.
func stageSync(b *pebble.Batch, r *request) {
	_ = b.Set(syncKey(r.sync.Backend, r.tenant, r.key), appendSyncValue(nil, &r.sync.State), nil)
}

// decide checks r's condition against cur and returns the version to write.
// Outcomes: the new version; fault.NotFound (delete of an absent or deleted
// key); fault.PreconditionFailed (a precondition or the CAS did not hold).
func (s *Store) decide(cur *current, r *request) (doc.Version, error) {
	switch r.op {
	case opPut:
		if err := cur.check(r); err != nil {
			return doc.Version{}, err
		}
		v := s.derive(cur, r.hash, false)
		if !cur.exists {
			// A key without a version may be one whose tombstone was
			// collected (Collect), and that tombstone may live on elsewhere
			// (another node, a backend not yet collected). Counting from 1
			// would make this write older than it, and the floor rule would
			// delete it. Starting at the Seq it gets instead puts this
			// node's counter above every counter it ever gave the key (each
			// of its writes took a Seq, and counters grow by one a write),
			// so the write is never dominated by an old version of the key:
			// at worst concurrent with it, which a conflict policy settles.
			v.Vector[0].Counter = s.seq + 1
		}
		return v, nil
	case opDelete:
		// The preconditions first (RFC 9110 §13.2.2): If-Match on an
		// absent document is a failed precondition, not a missing one.
		if err := cur.check(r); err != nil {
			return doc.Version{}, err
		}
		if !cur.live() {
			return doc.Version{}, fault.New(fault.NotFound, fault.Context{}, "document not found")
		}
		return s.derive(cur, emptyHash, true), nil
	case opCollect:
		if cur.exists && (!cur.v.Tombstone || cur.id != r.expect) {
			return doc.Version{}, fault.New(fault.PreconditionFailed, fault.Context{}, fmt.Sprintf(
				"collect: current version is %s, not the tombstone %s", idOrAbsent(cur), r.expect))
		}
		return cur.v, nil
	default: // opApply
		if cur.id != r.expect {
			return doc.Version{}, fault.New(fault.PreconditionFailed, fault.Context{}, fmt.Sprintf(
				"compare-and-set: current version is %s, expected %s", idOrAbsent(cur), r.expect))
		}
		s.clock.Observe(r.version.HLC)
		return r.version, nil
	}
}

// stageCollect stages the removal of a collected tombstone's row (if the
// key still has one) and of the key's sync states. It takes a Seq although
// it writes no change-log entry: the overlay entry recording the key's
// absence needs one, so that newGroup prunes it only once it is committed.
func (s *Store) stageCollect(g *group, r *request, cur *current) {
	s.seq++
	g.seq = s.seq
	g.n++
	if cur.exists {
		_ = g.batch.Delete(r.dk, nil)
	}
	for _, b := range r.backends {
		_ = g.batch.Delete(syncKey(b, r.tenant, r.key), nil)
	}
	s.overlay[r.ok] = &current{seq: g.seq}
	r.state = s.overlay[r.ok]
	r.rec = Record{Tenant: r.tenant, Key: r.key, Seq: g.seq, Version: cur.v}
}

// emptyHash is the content hash of a tombstone (doc.Derive's).
var emptyHash = doc.HashBody(nil)

// derive is doc.Derive for the committer: the new version written by this
// node now, on top of cur. It takes the content hash the caller computed off
// the committer, and cur's ID, which the committer already holds, instead of
// hashing the body and the parent again (TestDeriveMatchesDoc).
func (s *Store) derive(cur *current, hash doc.Hash, tombstone bool) doc.Version {
	inc := s.id.Incarnation
	v := doc.Version{HLC: s.clock.Now(), Writer: inc, Hash: hash, Tombstone: tombstone}
	if cur.exists {
		v.Vector = cur.v.Vector.Increment(inc)
		v.Parent = cur.id
	} else {
		v.Vector = doc.Vector{{Replica: inc, Counter: 1}}
	}
	return v
}

func idOrAbsent(c *current) string {
	if !c.exists {
		return "absent"
	}
	return c.id.String()
}

// lookup returns the current state of r's key: staged (in the overlay) or
// committed. The committer is the only writer of document rows and every
// write passes through the overlay, which keeps each entry until it is
// committed, so the overlay plus the database is exact. The committed state
// comes from the caller's read (prepare says why that is exact) or, when
// that may be stale, from Pebble now.
func (s *Store) lookup(r *request) (*current, error) {
	if c, found := s.overlay[r.ok]; found {
		return c, nil
	}
	if r.seen != nil && r.seenAt >= s.prunedAt {
		return r.seen, nil
	}
	return s.readCommitted(r.ok, r.dk)
}

// readCommitted is readCurrent for the key whose overlay key is ok, taking
// the state recentStates recorded for it, if any, instead of reading
// Pebble. A state recorded there may be newer than the committed mark a
// reader loaded before (recent.go); prepare's argument allows that, as the
// newer write is still in the overlay. It is safe on any goroutine.
func (s *Store) readCommitted(ok string, dk []byte) (*current, error) {
	if f := s.filter.Load(); f != nil && !f.mayHaveRow(dk) {
		return noRow, nil // keyfilter.go: certainly no row, so nothing recorded either
	}
	if c, found := s.recent.get(ok); found {
		return c, nil
	}
	return s.readRow(dk)
}

// readCurrent reads the committed state of the document row dk from Pebble.
// It is safe on any goroutine.
//
// DB.Get never consults the bloom filters of the last level (Pebble expects
// the key to be there), and in a store of any size most rows are in L6, so
// a Get of a new key, the common case of a PUT that creates, reads and
// searches an L6 data block, from disk when the block cache does not hold
// it. An iterator with UseL6Filters skips that block on a filter miss, but
// costs more to set up when the key exists (BenchmarkLookup measures both;
// docs/performance.md). So readCurrent uses the iterator while recent
// lookups mostly missed and Get while they mostly hit (missScore).
func (s *Store) readCurrent(dk []byte) (*current, error) {
	if f := s.filter.Load(); f != nil && !f.mayHaveRow(dk) {
		return noRow, nil // keyfilter.go: certainly no row
	}
	return s.readRow(dk)
}

// readRow is readCurrent past the key filter: the read from Pebble.
func (s *Store) readRow(dk []byte) (*current, error) {
	var val []byte
	var closer io.Closer
	var err error
	if s.missScore.Load() >= 0 {
		val, closer, err = s.seekFiltered(dk)
	} else {
		val, closer, err = s.db.Get(dk)
	}
	if errors.Is(err, pebble.ErrNotFound) {
		if s.missScore.Load() < missScoreMax {
			s.missScore.Add(1)
		}
		return noRow, nil
	}
	if err != nil {
		return nil, err
	}
	if s.missScore.Load() > -missScoreMax {
		s.missScore.Add(-1)
	}
	c, err := currentOfValue(val) // copies what it keeps: val belongs to Pebble
	if cerr := closer.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// currentOfValue is the current state of a key whose document row is val.
func currentOfValue(val []byte) (*current, error) {
	seq, v, body, err := decodeRecordValue(val)
	if err != nil {
		return nil, err
	}
	c := currentOf(seq, v, v.ID())
	if v.Siblings {
		c.set = bytes.Clone(body) // val belongs to Pebble
	}
	return c, nil
}

// missScoreMax bounds Store.missScore, so that readCurrent follows a change
// of workload within that many lookups.
const missScoreMax = 64

// seekFiltered is DB.Get through an iterator that uses the L6 bloom filters
// (see readCurrent). The value is valid until closer is closed.
func (s *Store) seekFiltered(dk []byte) ([]byte, io.Closer, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{UseL6Filters: true})
	if err != nil {
		return nil, nil, err
	}
	if !it.SeekPrefixGE(dk) || !bytes.Equal(it.Key(), dk) {
		err := it.Close() // nil unless the seek failed
		if err == nil {
			err = pebble.ErrNotFound
		}
		return nil, nil, err
	}
	val, err := it.ValueAndErr()
	if err != nil {
		return nil, nil, errors.Join(err, it.Close())
	}
	return val, it, nil
}

// currentOf is the live-or-tombstone current state of a key holding v
// (whose ID is id) at seq.
func currentOf(seq uint64, v doc.Version, id doc.ID) *current {
	return &current{exists: true, seq: seq, v: v, id: id, etag: id.ETag()}
}
