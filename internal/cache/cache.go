package cache

import (
	"hash/maphash"
	"math/bits"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Key names a document: a tenant and a key within it. It is the index key
// itself; the two strings are hashed separately, never concatenated, so a
// lookup allocates nothing.
type Key struct{ Tenant, Key string }

// own returns k with both strings copied into one allocation. A resident
// node keeps its key for as long as it stays cached, and the caller's
// strings are often cut from a larger buffer (a request line, a decoded
// batch) that would otherwise stay alive with it.
func (k Key) own() Key {
	var b strings.Builder
	b.Grow(len(k.Tenant) + len(k.Key))
	b.WriteString(k.Tenant)
	b.WriteString(k.Key)
	s := b.String()
	return Key{Tenant: s[:len(k.Tenant)], Key: s[len(k.Tenant):]}
}

// Entry is one version of a document, as committed to the store.
//
// An Entry is immutable once it has been passed to the cache: neither the
// cache nor any caller may change a field or write into Body or the
// bytes behind ETag. Get returns the stored pointer, so a mutation would be
// visible to every concurrent reader and would corrupt the byte accounting.
type Entry struct {
	// Seq is the store commit sequence. It is strictly increasing across all
	// commits on this node and orders the versions of a key: the cache never
	// replaces an entry with one whose Seq is lower or equal.
	Seq uint64
	// Tombstone marks the key as deleted at Seq (a negative cache entry).
	// Get returns tombstones like any other entry; callers treat them as
	// "not found".
	Tombstone bool
	// Siblings marks a document with open siblings: Body holds them, not a
	// document (doc.Version.Siblings). Opaque to the cache, like ETag; it
	// is here so that a hit answers "conflict" without a store read.
	Siblings bool
	ETag     string // opaque to the cache
	Body     []byte // the document bytes, returned without copying
}

// entryOverhead approximates the fixed memory cost of one resident entry
// beyond its variable-length bytes: the node, the Entry header, a table slot
// and the ring links. It only has to be in the right range: it keeps a cache of
// tiny entries from holding millions of them under a small budget.
const entryOverhead = 208

// size is the number of bytes charged against the budget for e under k.
func size(k Key, e *Entry) int64 {
	return int64(len(e.Body)+len(e.ETag)+len(k.Tenant)+len(k.Key)) + entryOverhead
}

// Options configures a Cache. The zero value is usable: 64 MiB, default
// shard count, compaction checked every minute.
type Options struct {
	// MaxBytes is the memory budget, split evenly across shards. An entry
	// larger than one shard's share is never cached. 0 means 64 MiB.
	MaxBytes int64
	// Shards is the number of shards, a power of two. 0 means 64*GOMAXPROCS
	// rounded up to a power of two, halved while a shard's share would hold
	// fewer than two entries of MaxEntryBytes.
	Shards int
	// MaxEntryBytes is the largest entry the cache must be able to hold
	// (the largest document); it lowers the default shard count so that
	// such entries are cached. 0: no such bound.
	MaxEntryBytes int64
	// CompactInterval is how often the compactor looks for shards whose table
	// has shrunk well below its high-water mark. 0 means one minute; a
	// negative value disables the periodic check (the compactor still runs
	// when evictions shrink a shard, and Compact always works).
	CompactInterval time.Duration
	// MaxLeasesPerShard bounds the outstanding leases of one shard. When it
	// is exceeded the oldest lease is dropped: its Fill will be refused,
	// which is always safe. 0 means 1024.
	MaxLeasesPerShard int
}

// Stats is a snapshot of the cache's counters. Counters are read one by one
// without a global lock, so a snapshot taken under load is not atomic as a
// whole.
type Stats struct {
	Hits            uint64 // Get found an entry (tombstones included)
	Misses          uint64 // Get found nothing
	Evictions       uint64 // entries removed to stay within the budget
	Compactions     uint64 // shard rebuilds completed
	CompactionNanos uint64 // total wall time spent in shard rebuilds
	Bytes           int64  // bytes charged against the budget right now
	Entries         int64  // resident entries right now
	FillsRejected   uint64 // Fill calls that did not install their entry
	SetsRejected    uint64 // Set calls that did not install their entry
	LeasesDropped   uint64 // leases dropped because a shard hit its lease cap
}

// Lease is the right to Fill one key, granted by Cache.Lease on a miss. It
// is a plain value: abandoning it costs nothing beyond a slot in a bounded
// table. The zero Lease is never valid.
type Lease struct{ token uint64 }

// Cache is a sharded, version-monotonic document cache. See the package
// documentation for the concurrency model and the stale-fill race it closes.
type Cache struct {
	shards []shard
	shift  uint // 64 - log2(len(shards)): the top hash bits pick the shard
	seed   maphash.Seed

	// Read-path counters, one pair per cache rather than per shard, so a
	// hot key's shard is not written on every Get; the padding keeps their
	// writes off the line of the fields above, which every Get reads.
	_            [64]byte
	hits, misses atomic.Uint64
	_            [64]byte

	compactions     atomic.Uint64
	compactionNanos atomic.Uint64

	kick      chan struct{} // buffered(1): a shard shrank below its threshold
	stop      chan struct{} // closed by Close
	closeOnce sync.Once
	wg        sync.WaitGroup // the compactor goroutine

	hooks hooks
}

// hooks are test seams; all nil in production.
type hooks struct {
	// rebuildPaused runs in the middle of a shard rebuild, after half of the
	// frozen table was copied, with no lock held.
	rebuildPaused func(shard int)
}

// New returns a Cache and starts its compactor, which Close stops. It
// panics if opts.Shards is not a power of two or opts.MaxBytes is negative
// (programmer error).
func New(opts Options) *Cache { return newCache(opts, hooks{}) }

func newCache(opts Options, h hooks) *Cache {
	if opts.MaxBytes < 0 {
		panic("cache: negative MaxBytes")
	}
	if opts.MaxBytes == 0 {
		opts.MaxBytes = 64 << 20
	}
	if opts.Shards == 0 {
		opts.Shards = 1 << bits.Len(uint(64*runtime.GOMAXPROCS(0)-1))
		for opts.Shards > 1 && opts.MaxBytes/int64(opts.Shards) < 2*opts.MaxEntryBytes {
			opts.Shards /= 2
		}
	}
	if opts.Shards <= 0 || opts.Shards&(opts.Shards-1) != 0 {
		panic("cache: Shards must be a power of two")
	}
	if opts.CompactInterval == 0 {
		opts.CompactInterval = time.Minute
	}
	if opts.MaxLeasesPerShard <= 0 {
		opts.MaxLeasesPerShard = 1024
	}
	c := &Cache{
		shards: make([]shard, opts.Shards),
		shift:  uint(64 - bits.TrailingZeros(uint(opts.Shards))),
		seed:   maphash.MakeSeed(),
		kick:   make(chan struct{}, 1),
		stop:   make(chan struct{}),
		hooks:  h,
	}
	per := opts.MaxBytes / int64(opts.Shards)
	for i := range c.shards {
		c.shards[i].init(c.seed, per, opts.MaxLeasesPerShard, c.kick)
	}
	c.wg.Add(1)
	go c.compactor(opts.CompactInterval)
	return c
}

// hash mixes the hashes of both strings. Hashing them separately (rather
// than tenant+"/"+key) avoids an allocation; the multiply keeps {a,b} and
// {b,a} apart.
func (c *Cache) hash(k Key) uint64 { return hashKey(c.seed, k) }

func hashKey(seed maphash.Seed, k Key) uint64 {
	return maphash.String(seed, k.Tenant)*0x9E3779B97F4A7C15 ^ maphash.String(seed, k.Key)
}

func (c *Cache) shardOf(h uint64) *shard {
	if c.shift == 64 { // one shard
		return &c.shards[0]
	}
	return &c.shards[h>>c.shift]
}

// Get returns the cached entry for k, tombstones included. It never copies,
// never allocates and never takes a lock: it waits for nothing, neither
// writers nor rebuilds. The returned Entry must not be modified.
func (c *Cache) Get(k Key) (*Entry, bool) {
	h := c.hash(k)
	n := c.shardOf(h).lookup(h, k)
	if n == nil {
		c.misses.Add(1)
		return nil, false
	}
	// CLOCK reference bit. Load first so that a hot entry costs no write.
	if n.ref.Load() == 0 {
		n.ref.Store(1)
	}
	c.hits.Add(1)
	return n.e.Load(), true
}

// Resident reports whether k is cached, without counting a hit or a miss
// or marking the entry as used. The answer may be out of date when it
// returns: use it only to skip work that a later Set, Fill or Refresh
// would make right either way.
func (c *Cache) Resident(k Key) bool {
	h := c.hash(k)
	return c.shardOf(h).lookup(h, k) != nil
}

// Lease grants the right to Fill k while k is absent. Call it after a Get
// miss and before reading the store. The lease ends at the next Set or Fill
// of k (whatever their outcome) or when the shard's lease cap drops it.
// Outcomes of the later Fill are listed on Fill.
func (c *Cache) Lease(k Key) Lease {
	s := c.shardOf(c.hash(k))
	s.mu.Lock()
	tok, dropped := s.leases.grant(k)
	s.mu.Unlock()
	if dropped > 0 {
		s.leasesDropped.Add(uint64(dropped))
	}
	return Lease{token: tok}
}

// Fill offers e, which the caller read from the store after taking l, and
// reports whether it was installed. Call it after every store read on the
// read path, even if the caller does not care about the outcome: a Fill is
// also how the cache learns that a reader has observed e. Outcomes:
//   - k is cached with Seq < e.Seq: e is installed, lease or not. The store
//     holds a version newer than the cached one, and a reader is about to
//     return it; leaving the older entry would let later readers go back in
//     time (docs/design/cache.md). A cached entry's Seq is never below an
//     acknowledged write's, so a newer one is always safe.
//   - k is cached with Seq >= e.Seq: refused.
//   - k is absent: installed iff l is still valid, that is, no Set or Fill
//     of k happened since l was granted and the cap did not drop it.
//   - e does not fit in a shard: refused, and an older cached version of k
//     is dropped.
//
// Every Fill ends k's lease generation, so the other readers that leased k
// in that generation are refused. A refused Fill is always safe: the caller
// still returns what it read, and the next reader goes to the store.
func (c *Cache) Fill(k Key, l Lease, e *Entry) bool {
	h := c.hash(k)
	s := c.shardOf(h)
	if e == nil {
		s.fillsRejected.Add(1)
		return false
	}
	s.mu.Lock()
	valid := s.leases.redeem(k, l.token)
	ok := (valid || s.lookup(h, k) != nil) && s.installLocked(k, h, e, true)
	s.mu.Unlock()
	if !ok {
		s.fillsRejected.Add(1)
	}
	return ok
}

// Refresh is Set for a write the cache should not admit (a bulk load):
// it installs e only if k is cached, with a lower Seq, and ends k's lease
// generation whatever the outcome, so a reader that read the older version
// before this commit cannot install it afterwards. It counts nothing as
// rejected: leaving an absent key absent is its purpose.
func (c *Cache) Refresh(k Key, e *Entry) bool {
	h := c.hash(k)
	s := c.shardOf(h)
	s.mu.Lock()
	s.leases.invalidate(k)
	ok := s.lookup(h, k) != nil && s.installLocked(k, h, e, false)
	s.mu.Unlock()
	return ok
}

// Set installs e after the store committed it, and ends k's lease
// generation. It reports whether e was installed. Outcomes:
//   - true: no entry for k was cached, or the cached one has a lower Seq.
//   - false: the cached entry has Seq >= e.Seq (a newer version won); or k
//     is absent and an entry with Seq >= e.Seq was evicted from k's ghost
//     slot (it may have been a newer version of k); or e does not fit.
//
// The generation ends in every case, so a reader that read the store before
// this commit cannot install what it read into an absent slot.
//
// Sets of one key must be made in commit order, before the write is
// acknowledged: cairn's docs service Sets from the store's Watcher, which
// the store calls in commit order before answering (package doc, "Rules
// for the caller").
func (c *Cache) Set(k Key, e *Entry) bool {
	if e == nil {
		return false
	}
	h := c.hash(k)
	s := c.shardOf(h)
	s.mu.Lock()
	s.leases.invalidate(k)
	ok := s.installLocked(k, h, e, false)
	s.mu.Unlock()
	if !ok {
		s.setsRejected.Add(1)
	}
	return ok
}

// Stats returns a snapshot of the counters.
func (c *Cache) Stats() Stats {
	st := Stats{
		Hits:            c.hits.Load(),
		Misses:          c.misses.Load(),
		Compactions:     c.compactions.Load(),
		CompactionNanos: c.compactionNanos.Load(),
	}
	for i := range c.shards {
		s := &c.shards[i]
		st.Evictions += s.evictions.Load()
		st.Bytes += s.bytesGauge.Load()
		st.Entries += s.entriesGauge.Load()
		st.FillsRejected += s.fillsRejected.Load()
		st.SetsRejected += s.setsRejected.Load()
		st.LeasesDropped += s.leasesDropped.Load()
	}
	return st
}

// Close stops the compactor and waits for it to return. It is idempotent.
// The cache stays usable after Close; only background compaction stops.
func (c *Cache) Close() error {
	c.closeOnce.Do(func() { close(c.stop) })
	c.wg.Wait()
	return nil
}
