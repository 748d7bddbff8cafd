package cache

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// ghostSlots is the number of per-shard ghost slots (a power of two). Each
// remembers the highest Seq evicted from keys hashing to it.
const ghostSlots = 256

// shrinkFactor and minRebuild decide when a shard's table is worth
// rebuilding: its entry count fell to 1/shrinkFactor of its high-water mark
// and that mark is at least minRebuild entries (rebuilding small tables
// saves nothing).
const (
	shrinkFactor = 4
	minRebuild   = 256
)

// node is one resident key, or a removal marker in a side table.
//
// key and removed never change. e is stored under the shard's mu and loaded
// by readers without it. prev and next are guarded by mu. ref is the CLOCK
// reference bit, set by readers without the lock.
//
// Updating a key stores a new e into the same node, so every table that
// holds the node (a frozen one and the fresh one a rebuild is filling) sees
// the update without being written.
//
// A node is exactly 64 bytes, so it is allocated from Go's 64-byte size
// class and always sits in one cache line: a Get that reaches it reads key,
// e and ref with one miss. (At 80 or 96 bytes, half the nodes straddled two
// lines.) That is why it holds neither its hash (the table slots hold it,
// and the shard recomputes it on the rare paths that start from a node:
// eviction and removal) nor its size (size(key, e) is a pure function of
// what it holds). TestNodeSize keeps it at 64.
type node struct {
	key     Key
	e       atomic.Pointer[Entry]
	ref     atomic.Uint32
	removed bool // marker: key removed while its shard was being rebuilt
	// prev and next link the shard's CLOCK ring, a circular list.
	prev, next *node
}

// size is the number of bytes n is charged. s.mu must be held (n.e changes
// only under it).
func (n *node) size() int64 { return size(n.key, n.e.Load()) }

// shard is one lock domain of the cache.
type shard struct {
	_ [64]byte // keep this shard's read-mostly head off the previous shard's lines

	// tab is the table readers search. While side is non-nil a rebuild is
	// running and tab is frozen: no slot of it is stored to.
	tab atomic.Pointer[table]
	// side is non-nil only during a rebuild. It holds nodes inserted and
	// removal markers for keys removed since tab was frozen; readers search
	// it first. In-place updates of existing nodes need no entry here.
	side atomic.Pointer[table]

	_ [48]byte // writers dirty the lines below; readers only touch those above

	// mu serializes writers of this shard: it guards every plain field
	// below, stores into tab and side (and the tables they point to), and
	// node.e/size/prev/next. It is the only lock a cache operation takes and
	// is never held across a call out of the package. Get never takes it.
	mu sync.Mutex

	// hand is the CLOCK hand: a node of the circular list of resident
	// nodes, nil when the shard is empty. New nodes are linked just behind
	// it, so they are the last the hand reaches.
	hand *node

	// seed is the Cache's hash seed, to recompute a node's hash (see node).
	seed maphash.Seed

	bytes, budget int64
	count         int  // resident entries
	highWater     int  // max count since the last rebuild
	kicked        bool // compactor already signalled for this shrink
	kick          chan<- struct{}

	// ghost[h&(ghostSlots-1)] is the highest Seq ever evicted from a key
	// with hash h. Set refuses to install an absent key at or below it: the
	// evicted entry may have been a newer version of that very key.
	ghost [ghostSlots]uint64

	leases leaseTable

	// Counters read by Stats without mu.
	evictions, fillsRejected, setsRejected, leasesDropped atomic.Uint64
	bytesGauge, entriesGauge                              atomic.Int64
}

func (s *shard) init(seed maphash.Seed, budget int64, maxLeases int, kick chan<- struct{}) {
	s.tab.Store(newTable(0))
	s.seed = seed
	s.budget = budget
	s.kick = kick
	s.leases.max = maxLeases
}

// lookup returns the resident node for k, or nil. It takes no lock.
func (s *shard) lookup(h uint64, k Key) *node {
	if side := s.side.Load(); side != nil {
		if n, _ := side.find(h, k); n != nil {
			if n.removed {
				return nil
			}
			return n
		}
	}
	n, _ := s.tab.Load().find(h, k)
	return n
}

// installLocked installs e for k if it is newer than what is cached and, for
// a Set (fill == false) of an absent key, newer than k's ghost slot. It
// evicts other entries to make room. s.mu must be held.
func (s *shard) installLocked(k Key, h uint64, e *Entry, fill bool) bool {
	sz := size(k, e)
	n := s.lookup(h, k)
	if n != nil {
		if e.Seq <= n.e.Load().Seq {
			return false
		}
		if sz > s.budget {
			// Too large to keep: drop the old version too (the ghost
			// remembers e.Seq), rather than keep serving it.
			s.raiseGhost(h, e.Seq)
			s.removeLockedHash(h, n)
			return false
		}
		old := n.size()
		s.makeRoomLocked(sz-old, n)
		s.bytes += sz - old
		n.e.Store(e)
		s.publishGauges()
		return true
	}
	if !fill && e.Seq <= s.ghost[h&(ghostSlots-1)] {
		return false
	}
	if sz > s.budget {
		return false
	}
	s.makeRoomLocked(sz, nil)
	n = &node{key: k.own()}
	n.e.Store(e)
	s.indexLocked(h, n)
	s.linkLocked(n)
	s.bytes += sz
	s.count++
	if s.count > s.highWater {
		s.highWater = s.count
	}
	s.publishGauges()
	return true
}

// indexLocked makes n (or a removal marker) findable: in side during a
// rebuild, replacing whatever side holds for the key; else in tab, whose
// key must be absent. A full table is replaced by a rehashed copy first;
// readers still searching the old copy see a consistent, slightly older
// view.
func (s *shard) indexLocked(h uint64, n *node) {
	p := &s.tab
	if s.side.Load() != nil {
		p = &s.side
	}
	t := p.Load()
	if p == &s.side {
		if _, i := t.find(h, n.key); i >= 0 {
			t.slots[i].n.Store(n)
			return
		}
	}
	if t.full() {
		t = t.rehashed()
		p.Store(t)
	}
	t.insert(h, n)
}

// makeRoomLocked evicts entries other than keep until need more bytes fit.
func (s *shard) makeRoomLocked(need int64, keep *node) {
	for s.bytes+need > s.budget && s.evictOneLocked(keep) {
	}
}

// evictOneLocked runs the CLOCK hand until it finds a node other than keep
// whose reference bit is clear, and removes it. Each visited node has its
// bit cleared, so the loop ends within two turns of the ring. It reports
// false if nothing but keep is left.
func (s *shard) evictOneLocked(keep *node) bool {
	for {
		n := s.hand
		if n == nil || (n == keep && n.next == n) {
			return false
		}
		if n == keep || n.ref.Load() != 0 {
			n.ref.Store(0)
			s.hand = n.next
			continue
		}
		h := hashKey(s.seed, n.key)
		s.raiseGhost(h, n.e.Load().Seq)
		s.removeLockedHash(h, n)
		s.evictions.Add(1)
		return true
	}
}

func (s *shard) raiseGhost(h, seq uint64) {
	g := &s.ghost[h&(ghostSlots-1)]
	if seq > *g {
		*g = seq
	}
}

// linkLocked puts n in the ring just behind the hand.
func (s *shard) linkLocked(n *node) {
	if s.hand == nil {
		n.prev, n.next, s.hand = n, n, n
		return
	}
	p := s.hand.prev
	p.next, n.prev = n, p
	n.next, s.hand.prev = s.hand, n
}

// removeLockedHash makes n, whose hash is h, unfindable (a removal marker in
// side during a rebuild, a deleted slot otherwise) and takes it out of the
// ring. Readers that found n before keep its entry, which was current when
// they found it.
func (s *shard) removeLockedHash(h uint64, n *node) {
	if s.side.Load() != nil {
		s.indexLocked(h, &node{key: n.key, removed: true})
	} else {
		t := s.tab.Load()
		if _, i := t.find(h, n.key); i >= 0 {
			t.del(i)
		}
	}
	if n.next == n {
		s.hand = nil
	} else {
		n.prev.next, n.next.prev = n.next, n.prev
		if s.hand == n {
			s.hand = n.next
		}
	}
	n.prev, n.next = nil, nil
	s.bytes -= n.size()
	s.count--
	s.publishGauges()
	if !s.kicked && s.shrunkLocked() {
		s.kicked = true
		select {
		case s.kick <- struct{}{}:
		default: // a signal is already pending; the compactor scans all shards
		}
	}
}

// shrunkLocked reports whether the table is worth rebuilding.
func (s *shard) shrunkLocked() bool {
	return s.highWater >= minRebuild && s.count <= s.highWater/shrinkFactor
}

// publishGauges copies bytes and count to the gauges Stats reads. It
// stores only what changed: an atomic store is a locked instruction on
// amd64, and the common Set (a new version of a resident key, of the same
// size) changes neither.
func (s *shard) publishGauges() {
	if s.bytesGauge.Load() != s.bytes {
		s.bytesGauge.Store(s.bytes)
	}
	if c := int64(s.count); s.entriesGauge.Load() != c {
		s.entriesGauge.Store(c)
	}
}
