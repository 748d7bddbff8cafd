// Package store is cairn's durable local store: every tenant's documents,
// a per-tenant change log, and the reconciler's sync state, in one embedded
// Pebble database.
//
// # Basics
//
// [Open] a data directory, then [Store.Put], [Store.Delete] and [Store.Get]
// documents by (tenant, key). Every write is a new [doc.Version] derived
// from the current one, with a node-local commit sequence [Record.Seq] that
// strictly increases over all of the node's writes, across restarts; the
// cache in front orders a key's versions by it. Deletes write tombstones,
// which Get returns so callers can cache absence. [Store.List] streams a
// tenant's documents sorted by key over one snapshot; [Store.Changes]
// streams the change log in commit order; [Store.Apply] installs a version
// made elsewhere, for the reconciler, with a compare-and-set on the local
// one; [Store.Collect] removes a tombstone for good, with its sync state,
// once the reconciler's collector finds every backend holds it.
//
// A key's first version (or its first after its tombstone was collected)
// starts this node's vector counter at its Seq rather than at 1, so that
// it is never dominated by a collected tombstone that lives on elsewhere
// (committer.go, decide).
//
// A document whose concurrent versions are kept for a person holds a
// sibling set (doc.Version.Siblings) as its version; Put and Delete over
// one must name a sibling in If-Match, and then resolve it ([Store.Siblings]
// lists them; siblings.go has the rules). What a resolution or the
// last-writer-wins policy discarded is kept in the conflict history
// ([Store.Conflicts]).
//
// # Layout
//
//	dir/LOCK           flock(2)'ed while open: a second process (or a second
//	                   Open in this one) fails fast with ErrLocked (fault.Config)
//	dir/identity.json  node id and random incarnation, created on first open
//	dir/pebble/        the database
//
// Keyspace (keys.go has the reasoning): one table byte, then fields
// separated by NUL, which sorts below every byte a tenant id, key or backend
// name can contain, so tenants cannot collide and a tenant's keys sort by
// their bytes.
//
//	'd' tenant 0 key              document: seq, version, body
//	'c' tenant 0 seq(BE64)        change log: key, version
//	's' backend 0 tenant 0 key    sync state: base version, remote ETag,
//	                              base body (kept for three-way merges)
//	'k' backend 0 tenant          reconciler checkpoint
//	'x' tenant 0 key 0 loserID    conflict history (conflicts.go)
//	'o' tenant 0 key              open siblings index (siblings.go)
//	'q' backend 0 tenant 0 key 0 etag  quarantine: damaged remote objects
//	                              the reconciler found before repairing
//	                              them (quarantine.go; never deleted)
//	'm' "seq" | "hlc"             high-water marks, rewritten by every commit
//
// # Concurrency model
//
// The document write path is a two-stage pipeline of goroutines, both
// started by Open, stopped by Close and waited for by Close (committer.go):
//
//	writers ──reqs──► committer ──toSync──► syncer ──reply──► writers
//
// A writer prepares its request (keys, content hash, and a Pebble read of
// the key's committed state) on its own goroutine, queues it and waits for
// its answer. The committer owns the write-side state (the overlay of
// staged versions, the next Seq, the HLC mark, and when the overlay was last
// pruned): it takes each request as it arrives, evaluates its
// precondition against the committed state plus everything staged before
// it, derives the version, assigns the Seq and stages the document, its
// change-log entry and the high-water marks into the open group's Pebble
// batch. When the syncer is idle the committer hands the group over; the
// syncer commits it with one fsync and answers its requests in order. So:
//
//   - a read-check-write on a key is atomic without per-key locks: only the
//     committer decides and writes documents;
//   - concurrent writers share one fsync (group commit), and the committer's
//     CPU work for the next group overlaps the current group's fsync;
//   - the committer is one goroutine, so its work per write bounds the
//     store's throughput and lengthens every group's wait for its last
//     writers: what does not need the order (hashing, keys, the read of the
//     committed state, which the committer checks is still exact) is done
//     by the writers, in parallel, before they queue;
//   - a document and its change-log entry are never apart, even after a
//     crash, because they are in the same batch;
//   - Seq order is commit order (groups commit one at a time, in order), so
//     the change log has no holes that fill in later;
//   - no answer goes out before the writes it was decided against are
//     durable: a 412 caused by a staged write waits for that write's commit;
//   - no document read returns a version before it is durable. Pebble
//     shows a batch to readers once it is in the memtable, before its
//     fsync completes, so Get, List, Siblings and Changes check each
//     version's Seq against the committed mark and wait for the commit in
//     flight when it is newer (waitDurable). Otherwise a client could read
//     a write that a crash then takes away, which no order of events
//     explains. Rows without a Seq are not covered: a conflict-history
//     entry, or the open-siblings index losing a key, can show before the
//     write that made it is durable, and so can a collected tombstone's
//     row disappearing (which reads as it did: not found).
//
// Group size: the writers answered by a commit usually come straight back
// with their next write. Handing the open group over the moment the syncer
// is idle would leave them out and split the writers into two half-size
// groups, each paying an fsync. So while more writers are in flight than the
// open group holds, the committer lingers for them, at most half the last
// commit's duration and at most 1 ms (PostgreSQL's commit_delay with
// commit_siblings is the same idea). A lone writer never waits.
//
// The key filter (keyfilter.go): most writes create a document, and asking
// Pebble for a row that is not there costs a seek through every memtable
// and level. An in-memory Bloom filter of every document row's key, built
// by a goroutine Open starts (and Close stops) and fed by the committer for
// every row it stages, answers "certainly absent" for those without Pebble,
// for the writers' reads, the committer's and ingest's prefetch alike.
//
// Readers do not go through the committer: Get reads Pebble's latest
// published state, List and Changes each read one Pebble iterator, which is
// a consistent point-in-time view. Sync state, checkpoints and change-log
// trims are written directly (they do not depend on the documents), except
// that Apply may carry a sync-state update in its own batch. Every write
// of sync-state rows is bracketed for [Store.SyncUnchanged], so that a
// reader of a ListSyncState page can tell whether a row it holds may have
// changed since (the reconciler's round reads its bases that way).
//
// Store.mu guards the lifecycle: closed, the count of operations in
// progress, and the sticky failure. Every operation registers itself first,
// so Close can wait for all of them before closing Pebble. It is the only
// mutex; the pipeline's state is owned by its goroutines.
//
// # Sharp edges
//
//   - Context: a write whose context ended before the committer took it is
//     answered with the context error ("not written") and is not written.
//     The committer takes requests as they arrive, so this mostly happens
//     when it is backed up. Once taken, the caller waits for the commit,
//     however long the fsync takes, so that every answer is definite.
//   - A failed commit (a failed write or fsync of the log) fails the whole
//     group, and the group staged behind it: every writer in them gets the
//     error, nothing is acknowledged, and the store refuses every later
//     operation with [ErrFailed]. Pebble already shows the failed batch to
//     readers, and a failed fsync cannot be retried safely; reopening replays
//     exactly what reached the log. A write that got an error therefore has
//     an unknown outcome, as over a network: after reopening it may or may
//     not be there. Pebble treats a failed commit as fatal (it calls
//     Logger.Fatalf, which by default exits the process); the store's logger
//     turns that into a panic that it recovers around its own commits only.
//     A fatal error on one of Pebble's background goroutines still ends the
//     process.
//   - Document rows must be written by the committer only: a row put into
//     Pebble any other way while the store is open is invisible to the key
//     filter, which would make the next write of that key forget its
//     history. The filter costs 10 bits per document in memory (at least
//     1.25 MiB, at most Options.KeyFilterBytes, 16 MiB by default, which
//     covers ~13 million documents and serves up to twice that); past that
//     it is dropped and every lookup goes to Pebble, as before it was
//     built.
//   - Close waits for List and Changes loops in progress: do not call it
//     from inside one.
//   - Options.OnCommit runs on the syncer goroutine; a slow hook slows
//     every writer, and a hook that writes to the store deadlocks.
//   - [Buffered] durability acknowledges before the log reaches the OS;
//     a crash, even of the process alone, can lose the last writes.
//   - Records returned to callers own their bodies; the store keeps no
//     reference and never modifies them. [Store.PutOwned] is the exception
//     by name: it keeps the caller's buffer instead of copying it, and the
//     caller must not touch it again.
//   - In a cgo build Pebble's cache blocks are C allocations, so how the
//     C allocator keeps freed memory shows in the process's RSS; cmd/cairn
//     limits glibc to one malloc arena for that reason.
package store
