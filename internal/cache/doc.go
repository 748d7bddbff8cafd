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
// Options.MaxBytes, charged per entry as len(Body)+len(ETag)+
// len(Tenant)+len(Key) plus a fixed overhead, split evenly across shards.
//
// # Concurrency model
//
// Keys are spread over a power-of-two number of shards by a hash of both
// strings (never concatenated). Each shard has an index, a sync.Mutex and
// the eviction state.
//
// Get takes no lock and writes nothing shared in the common case. A shard's
// index is an open-addressing table whose slots are atomic pointers to
// nodes; a node's current *Entry is an atomic pointer too. Readers load the
// table pointer, probe, and load the entry; writers (Set, Fill, Lease,
// eviction) serialize on the shard's mutex and publish with atomic stores.
// Updating a key stores the new *Entry into its existing node; removing one
// marks its slot deleted (slots never return to empty, so a probe in flight
// is never cut short). A reader that found a node just before it was
// evicted returns the entry it found, which was current when it found it.
// Hit and miss counts are two atomic counters of the Cache, on a cache line
// of their own, not per shard: a per-shard counter would put the write on
// the line a hot key's readers read. Both are exact counts, as
// cairn_cache_hits_total and cairn_cache_misses_total promise. A hit reads
// its slot, then its node, which is sized to one cache line: two dependent
// memory loads, and one atomic add.
//
// The mutex is the only lock any operation takes (there is no lock order to
// respect) and it is never held across a call out of the package.
//
// Eviction is CLOCK, per shard. A hit sets a per-entry reference bit with
// one atomic store (skipped when already set, so a hot entry costs no
// write); the hand, under the mutex, clears set bits and evicts the first
// entry whose bit is clear; new entries are linked just behind the hand.
// LRU would need a list move under the mutex on every hit; sampled LRU a
// timestamp store on every hit; S3-FIFO has a better hit ratio on scans but
// needs two queues and a ghost queue for a gain not measured as needed.
// CLOCK approximates LRU well for the skewed access cairn expects and keeps
// the read path lock-free.
//
// One goroutine, owned by the Cache, compacts. Removals leave deleted slots
// and a table never shrinks by itself (nor would a Go map), so a shard whose
// entry count fell to a quarter of its high-water mark is rebuilt into a
// right-sized table. The rebuild freezes the shard's table (no slot of it is
// stored to), sends inserts and removals made meanwhile to a small side
// table that lookups search first, copies the frozen table without any
// lock, and, under the mutex, applies the side table and swaps. Readers
// never wait for any of it; writers wait only for the freeze and the swap;
// no write made during the rebuild is lost. (A table that fills up on insert
// is rehashed inline under the mutex, like a map growing: writers of that
// shard wait, readers keep using the old copy.) Close stops the compactor
// and waits for it. Compact runs one pass on demand.
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
// Fill into an absent slot with an ended lease is refused. That closes the
// race whatever happened to v2. It is memcache's lease, per key, with no
// global lock.
//
// The linearizability test found two more interleavings, which shaped the
// rest of the rules:
//
//	reader R                   writer W                  reader R2
//	Get(k): miss
//	Lease(k)
//	                           Set(k, v1); ack           (v1 cached)
//	                           store.Commit(k, v2)
//	store.Read(k) → v2
//	Fill(k, v2)  ← lease ended by Set(v1), but must install v2
//	return v2
//	                                                     Get(k) → v1 ✗
//
// R returned v2; if the cache kept v1, R2 would go back in time. So a Fill
// whose entry is newer than the cached one installs it regardless of the
// lease. This is safe because a cached entry's Seq is never below any
// acknowledged write's Seq for that key, so anything newer is newer than
// every acknowledged write.
//
//	reader R1                  reader R2                 writer W
//	Lease(k)  (generation g)
//	                           Lease(k)  (g)
//	                           store.Read(k) → v1
//	                                                     store.Commit(k, v2)
//	store.Read(k) → v2
//	Fill(k, v2) → installed; return v2
//	(v2 evicted)
//	                           Fill(k, v1)  ← must be refused
//
// Hence any Fill of k, installed or not, ends k's lease generation: R2's
// lease is dead once R1 has filled, and a Lease taken after R1's Fill reads
// the store after R1 did.
//
// Two writers commit v1 then v2 and could call Set in the opposite order,
// with v2 evicted in between. Each shard keeps ghost slots: the highest Seq
// evicted from keys hashing to each slot; Set of an absent key at or below
// its slot's ghost is refused (a miss is always safe; a collision costs one
// store read). Fill does not consult ghosts: a valid lease proves no Set of
// k happened since the lease, and the store read came after it.
//
// Leases are bounded: each shard keeps at most Options.MaxLeasesPerShard
// live lease generations and drops the oldest beyond that. A dropped lease
// only makes its Fill refused.
//
// # Writers
//
// Sets of one key must reach the cache in commit order. The docs service
// already serializes writes to a key (it checks preconditions, then commits)
// and must call Set before releasing that per-key lock and acknowledging.
// The cache cannot enforce this: if W1 commits v1, W2 commits v2, a reader
// returns v2 from the store while the key is absent, and only then W1's
// Set(v1) arrives, nothing in the cache knows v2 exists.
//
// # Caveats
//
// Entries are immutable. Get returns the stored *Entry; Body and ETag
// are shared with every other reader, never copied. Callers must not
// modify an Entry or its slices after passing it to Set or Fill, nor after
// receiving it from Get. There is no defensive copy, on purpose.
//
// Reads are linearizable with writes given the two rules the docs service
// must follow: Set in commit order, before acknowledging (see Writers), and
// Fill after every store read on the read path. A reader that reads a
// committed but not yet Set version and abandons without calling Fill lets
// other readers keep serving the previous version until the writer's Set
// lands: never older than an acknowledged write, but not linearizable.
//
// An entry larger than MaxBytes/Shards is never cached. Tombstones are
// cached and evictable like any entry. Stats counters are read one by one,
// not as an atomic snapshot.
package cache
