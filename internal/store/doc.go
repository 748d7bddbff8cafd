// Package store is cairn's durable local store: every tenant's documents,
// a per-tenant change log, and the reconciler's sync state, in one embedded
// Pebble database. Its design (the keyspace, the write pipeline, failure)
// is docs/design/store.md.
//
// # Basics
//
// [Open] a data directory, then [Store.Put], [Store.Delete] and [Store.Get]
// documents by (tenant, key). Every write is a new [doc.Version] derived
// from the current one, with a commit sequence [Record.Seq] that strictly
// increases over all of the node's writes, across restarts. Deletes write
// tombstones, which Get returns so callers can cache absence.
// [Store.PutBatch] writes an ingest batch. [Store.List] streams a tenant's
// documents by key over one snapshot; [Store.Changes] streams the change
// log in commit order; [Store.Apply] installs a version made elsewhere (the
// reconciler's), with a compare-and-set on the local one; [Store.Collect]
// removes a tombstone for good once every backend holds it. Sync state,
// checkpoints, siblings, the conflict history and the quarantine of damaged
// remote objects are kept beside the documents for the reconciler.
//
// # Concurrency
//
// Writes go through two goroutines that Open starts and Close stops and
// waits for: the committer decides each write against the committed state
// plus the writes staged before it, so a read-check-write is atomic without
// per-key locks; the syncer commits each group of writes with one fsync,
// tells the [Watcher] of every write in commit order, and only then answers
// the group's writers. A document and its change-log entry are in one
// batch. Readers do not go through the pipeline; a read never returns a
// version before it is durable. Every method is safe for concurrent use.
//
// # Sharp edges
//
//   - A write whose context ended before the committer took it is not
//     written; once taken, the caller waits for the commit, however long the
//     fsync takes, so every answer is definite.
//   - A failed commit fails its group and the one staged behind it, and the
//     store refuses every later operation with [ErrFailed]: a write that got
//     an error may or may not be there after reopening, as over a network.
//   - Document rows must be written by the committer only: a row put into
//     Pebble any other way while the store is open is invisible to the key
//     filter, and the next write of that key would forget its history.
//   - Close waits for List and Changes loops in progress: do not call it
//     from inside one.
//   - Watcher.Committed and Options.OnCommit run on the syncer goroutine: a
//     slow one slows every writer, and one that calls the store deadlocks.
//   - [Buffered] durability acknowledges before the log reaches the OS; a
//     crash, even of the process alone, can lose the last writes.
//   - Records returned to callers own their bodies. [Store.PutOwned] keeps
//     the caller's buffer instead of copying it: the caller must not touch
//     it again.
//   - The key filter costs 10 bits per document in memory, up to
//     Options.KeyFilterBytes; past twice what that covers it is dropped and
//     every lookup goes to Pebble.
//   - Pebble allocates its block cache and memtables with the C allocator
//     (in a cgo build); how many malloc arenas a process keeps is the
//     command's setting (cmd/cairn), not this package's.
package store
