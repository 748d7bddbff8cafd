// Package cache is cairn's in-memory document cache: a sharded,
// memory-bounded map from (tenant, key) to the latest known version of a
// document, in front of the durable store. Its design, with the
// interleavings that shaped its rules, is docs/design/cache.md.
//
// # Basics
//
// Entries carry the store's commit sequence (Seq), which strictly increases
// per node. The cache is version-monotonic: it never replaces an entry with
// one of lower or equal Seq, and it refuses installs that could be stale
// even when the newer entry has left the cache. Reads are cache-aside with
// a lease; writes reach the cache from the store, in commit order:
//
//	read:   e, ok := c.Get(k)      // hit: done (e.Tombstone means 404)
//	        l := c.Lease(k)        // miss: lease BEFORE reading the store
//	        e = store.Get(k)       // not found: a Seq-0 tombstone is fine
//	        c.Fill(k, l, e)        // may be refused; return e either way
//	commit: c.Set(k, e)            // from the store's Watcher, once durable
//	bulk:   c.Refresh(k, e)        // an ingested write: update, never admit
//
// Memory is bounded by Options.MaxBytes, split evenly across shards and
// charged per entry as its body, ETag, tenant and key plus a fixed
// overhead. Eviction is CLOCK, per shard.
//
// # Concurrency
//
// Get takes no lock and waits for nothing: a shard's index is an
// open-addressing table of atomic pointers, read without locking. Set,
// Fill, Lease, Refresh and eviction serialize on the shard's one mutex,
// which is never held across a call out of the package. One goroutine,
// owned by the Cache and stopped by Close, rebuilds shards that shrank;
// readers never wait for it, and no write made during a rebuild is lost.
//
// # Rules for the caller
//
//   - Take a Lease before reading the store, and Fill after every store read
//     on the read path, even when the result does not matter: a Fill is how
//     the cache learns a reader has observed a version.
//   - Sets of one key must arrive in commit order, before the write is
//     acknowledged. The cache cannot enforce this; docs.Follower meets it
//     by being the store's Watcher, which the syncer calls one write at a time
//     in commit order before answering any writer.
//
// # Sharp edges
//
//   - Entries are immutable and shared: Get returns the stored *Entry, and
//     its Body and ETag are never copied. Do not modify an Entry or its
//     slices after passing it to Set or Fill, nor after Get returns it.
//   - A reader that reads a committed version not yet Set and abandons
//     without Fill lets others serve the previous version until the Set
//     lands: never older than an acknowledged write, but not linearizable.
//   - A refused Set or Fill is always safe (a miss costs one store read).
//     Leases are capped per shard (Options.MaxLeasesPerShard); a dropped
//     lease only makes its Fill refused.
//   - An entry larger than MaxBytes/Shards is never cached. Tombstones are
//     cached and evictable like any entry. Stats counters are read one by
//     one, not as an atomic snapshot.
package cache
