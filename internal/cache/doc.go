// Package cache is cairn's in-memory document cache: a sharded,
// memory-bounded map from (tenant, key) to the latest known version of a
// document, in front of the durable store.
//
// # Basics
//
// The docs service uses it cache-aside:
//
//	read:   e, ok := c.Get(k)            // hit: done (e.Tombstone means 404)
//	        l := c.Lease(k)              // miss: lease BEFORE reading the store
//	        e = store.Read(k)            // not found: a Seq-0 tombstone is fine
//	        c.Fill(k, l, e)              // may be refused; return e either way
//	write:  e = store.Commit(k, ...)     // assigns e.Seq
//	        c.Set(k, e)                  // before acknowledging the write
//	delete: c.Set(k, &Entry{Seq: seq, Tombstone: true})
//
// Entries carry the store's commit sequence (Seq), strictly increasing per
// node. The cache is version-monotonic: it never replaces an entry with one
// of lower or equal Seq, and it refuses installs that could be stale even
// when the newer entry has left the cache (see below). Memory is bounded by
// Options.MaxBytes, charged per entry as len(Body)+len(Version)+len(ETag)+
// len(Tenant)+len(Key) plus a fixed overhead, split evenly across shards.
//
// # Concurrency model
//
// Keys are spread over a power-of-two number of shards by a hash of both
// strings (never concatenated). Each shard has one sync.RWMutex, the only
// lock any operation takes (so there is no lock order to respect). Get takes
// it shared, copies one pointer and releases it; everything else takes it
// exclusively for a short, allocation-light critical section.
//
// Eviction is CLOCK, per shard. A hit sets a per-entry reference bit with
// one atomic store (skipped when already set), so the read path stays under
// the shared lock and writes nothing in the common case. LRU would need a
// list move under the exclusive lock on every hit; sampled LRU a timestamp
// store on every hit; S3-FIFO a better hit ratio on scan-heavy traces, but
// two queues and a ghost queue for a gain we have not measured as needed.
// CLOCK approximates LRU well for the skewed access cairn expects.
//
// One goroutine, owned by the Cache, compacts: Go maps never return memory
// after deletes, so a shard whose entry count fell to a quarter of its
// high-water mark is rebuilt into a right-sized map. The rebuild freezes the
// shard's map, sends inserts and removals made meanwhile to a small side map
// that lookups consult first, copies the frozen map without any lock, and
// swaps under the lock after applying the side map. Readers never wait for
// the copy, only for the freeze and swap steps; no write made during the
// rebuild is lost. Close stops the compactor and waits for it. Compact runs
// one pass on demand.
//
// # The stale-fill race
//
// Cache-aside has a classic race. Without leases, this interleaving leaves
// the cache serving v1 forever after v2 was acknowledged:
//
//	reader R                              writer W
//	--------                              --------
//	Get(k): miss
//	store.Read(k) → v1 (Seq 1)
//	                                      store.Commit(k, v2) → Seq 2
//	                                      Set(k, v2); acknowledge
//	Fill(k, v1)   ← must be refused
//
// A Seq comparison alone catches this only while v2 is still cached. If v2
// is evicted (or the shard is full) between W's Set and R's Fill, the cache
// holds nothing to compare with, and v1 would be installed. So R takes a
// Lease before reading the store; Set ends every outstanding lease on k, and
// Fill with an ended lease is refused. That closes the race whatever
// happened to v2. It is memcache's lease, per key, with no global lock.
//
// Two more interleavings shaped the details:
//
//   - Two readers R1, R2 lease in the same generation; R2 reads v1, the
//     writer commits v2 (not yet Set), R1 reads v2 and Fills it, v2 is
//     evicted, R2 Fills v1. R1 has already returned v2, so serving v1 now
//     would go back in time. Hence the first Fill ends the generation and
//     R2's Fill is refused.
//   - Two writers commit v1 then v2 and call Set in the opposite order, with
//     v2 evicted in between. Set(v1) finds nothing cached. Each shard keeps
//     ghost slots: the highest Seq evicted from keys hashing to each slot.
//     Set of an absent key at or below its slot's ghost is refused (a miss
//     is always safe; at worst a collision costs one store read).
//
// Fill does not consult ghosts: a valid lease proves no Set of k happened
// since the lease was taken, and the store read came after it.
//
// Leases are bounded: each shard keeps at most Options.MaxLeasesPerShard
// live lease generations and drops the oldest beyond that. A dropped lease
// only makes its Fill refused.
//
// # Caveats
//
// Entries are immutable. Get returns the stored *Entry; Body, Version and
// ETag are shared with every other reader, never copied. Callers must not
// modify an Entry or its slices after passing it to Set or Fill, nor after
// receiving it from Get. There is no defensive copy, on purpose.
//
// The guarantee is "never older than an acknowledged write", given that
// writers call Set before acknowledging. A reader that reads a committed but
// not yet Set version from the store and then abandons its lease without
// calling Fill does not end the lease generation; in that window another
// reader may install and serve the older version until the writer's Set
// lands. Always call Fill after a store read, even if its result is ignored.
//
// An entry larger than MaxBytes/Shards is never cached. Tombstones are
// cached and evictable like any entry. Stats counters are read one by one,
// not as an atomic snapshot.
package cache
