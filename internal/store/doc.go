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
// one.
//
// # Layout
//
//	dir/LOCK           flock(2)'ed while open: a second process (or a second
//	                   Open in this one) fails fast with a fault.Config error
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
//	's' backend 0 tenant 0 key    sync state: base version, remote ETag
//	'k' backend 0 tenant          reconciler checkpoint
//	'm' "seq" | "hlc"             high-water marks, rewritten by every commit
//
// # Concurrency model
//
// One goroutine, the committer (committer.go), owns the document write path.
// It is started by Open, stopped by Close (which closes its request channel
// once no caller is sending) and waited for by Close. A writer queues a
// request and waits for its answer. The committer takes every request queued
// at that moment (up to Options.MaxBatch), evaluates each precondition in
// order against the committed state plus the writes staged earlier in the
// same group, derives the versions, assigns seqs, writes each document, its
// change-log entry and the high-water marks into one Pebble batch, commits it
// with one fsync, and then answers every request. So:
//
//   - a read-check-write on a key is atomic without per-key locks: only the
//     committer writes documents;
//   - concurrent writers share one fsync (group commit): requests queue
//     while the previous fsync runs and all go into the next one;
//   - a document and its change-log entry are never apart, even after a
//     crash, because they are in the same batch;
//   - Seq order is commit order, so the change log has no holes that fill in
//     later.
//
// Readers do not go through the committer: Get reads Pebble's latest
// published state, List and Changes each read one Pebble iterator, which is
// a consistent point-in-time view. Sync state, checkpoints and change-log
// trims are written directly (they do not depend on the documents), except
// that Apply may carry a sync-state update in its own batch.
//
// Store.mu guards the lifecycle: closed, the count of operations in
// progress, and the sticky failure. Every operation registers itself first,
// so Close can wait for all of them before closing Pebble.
//
// # Sharp edges
//
//   - Context: a write whose context ends while it is still queued is
//     answered with the context error and not written. Once the committer has
//     taken it, the caller waits for the commit, however long the fsync
//     takes, so that every answer is definite.
//   - A failed commit (a failed write or fsync of the log) fails the whole
//     group: every writer in it gets the error, nothing is acknowledged, and
//     the store refuses every later operation with [ErrFailed]. Pebble
//     already shows the failed batch to readers, and a failed fsync cannot
//     be retried safely; reopening replays exactly what reached the log. A
//     write that got an error therefore has an unknown outcome, as over a
//     network: after reopening it may or may not be there.
//   - Close waits for List and Changes loops in progress: do not call it
//     from inside one.
//   - Options.OnCommit runs on the committer goroutine; a slow hook slows
//     every writer, and a hook that writes to the store deadlocks.
//   - [Buffered] durability acknowledges before the log reaches the OS;
//     a crash, even of the process alone, can lose the last writes.
//   - Records returned to callers own their bodies; the store keeps no
//     reference and never modifies them.
package store
