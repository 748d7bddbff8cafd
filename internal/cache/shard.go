package cache

import (
	"sync"
	"sync/atomic"
)

// ghostSlots is the number of per-shard ghost slots (a power of two). Each
// remembers the highest Seq evicted from keys hashing to it.
const ghostSlots = 256

// shrinkFactor and minRebuild decide when a shard's map is worth
// rebuilding: its entry count fell to 1/shrinkFactor of its high-water mark
// and that mark is at least minRebuild entries (rebuilding small maps saves
// nothing).
const (
	shrinkFactor = 4
	minRebuild   = 256
)

// node is one resident key. key and hash never change; e, size, prev and
// next are guarded by the owning shard's mu; ref is the CLOCK reference bit,
// set by readers without the lock.
//
// Updating a key replaces n.e in place rather than the node, so a rebuild
// copying node pointers out of a frozen map (without the lock) always copies
// the live node.
type node struct {
	key  Key
	hash uint64
	e    *Entry
	size int64
	// prev and next link the shard's CLOCK ring, a circular list.
	prev, next *node
	ref        atomic.Uint32
}

// shard is one lock domain of the cache.
type shard struct {
	_ [64]byte // keep the hot head of this shard off the previous shard's cache line

	// mu guards every plain field below, and node.e/size/idx of the nodes in
	// this shard. It is the only lock a cache operation takes, and is never
	// held across a call out of the package. Readers take it shared; Set,
	// Fill, Lease, eviction and the two short steps of a rebuild take it
	// exclusively. The copy step of a rebuild runs without it.
	mu sync.RWMutex

	// Read-path counters, next to mu, which Get dirties anyway.
	hits, misses atomic.Uint64

	// m holds the resident nodes. While side != nil a rebuild is running
	// and m is frozen: nobody writes it, so the rebuild may iterate it
	// without mu.
	m map[Key]*node
	// side is non-nil only during a rebuild. It records keys inserted
	// (non-nil node) or removed (nil) since m was frozen. Lookups consult it
	// first. In-place updates of existing nodes need no entry here.
	side map[Key]*node

	// hand is the CLOCK hand: a node of the circular list of resident
	// nodes, nil when the shard is empty. New nodes are linked just behind
	// it, so they are the last the hand reaches.
	hand *node

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

func (s *shard) init(budget int64, maxLeases int, kick chan<- struct{}) {
	s.m = make(map[Key]*node)
	s.budget = budget
	s.kick = kick
	s.leases.max = maxLeases
}

// lookupLocked returns the resident node for k, or nil. s.mu must be held
// (shared is enough).
func (s *shard) lookupLocked(k Key) *node {
	if s.side != nil {
		if n, ok := s.side[k]; ok {
			return n // nil: removed during the rebuild
		}
	}
	return s.m[k]
}

// installLocked installs e for k if it is newer than what is cached and, for
// a Set (fill == false) of an absent key, newer than k's ghost slot. It
// evicts other entries to make room. s.mu must be held exclusively.
func (s *shard) installLocked(k Key, h uint64, e *Entry, fill bool) bool {
	sz := size(k, e)
	n := s.lookupLocked(k)
	if n != nil {
		if e.Seq <= n.e.Seq {
			return false
		}
		if sz > s.budget {
			// Too large to keep: drop the old version too (the ghost
			// remembers e.Seq), rather than keep serving it.
			s.raiseGhost(h, e.Seq)
			s.removeLocked(n)
			return false
		}
		s.makeRoomLocked(sz-n.size, n)
		s.bytes += sz - n.size
		n.e, n.size = e, sz
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
	n = &node{key: k, hash: h, e: e, size: sz}
	if s.side != nil {
		s.side[k] = n
	} else {
		s.m[k] = n
	}
	s.linkLocked(n)
	s.bytes += sz
	s.count++
	if s.count > s.highWater {
		s.highWater = s.count
	}
	s.publishGauges()
	return true
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
		s.raiseGhost(n.hash, n.e.Seq)
		s.removeLocked(n)
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

// removeLocked takes n out of the map (or records the removal in side
// during a rebuild) and out of the ring.
func (s *shard) removeLocked(n *node) {
	if s.side != nil {
		s.side[n.key] = nil
	} else {
		delete(s.m, n.key)
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
	s.bytes -= n.size
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

// shrunkLocked reports whether the map is worth rebuilding.
func (s *shard) shrunkLocked() bool {
	return s.highWater >= minRebuild && s.count <= s.highWater/shrinkFactor
}

func (s *shard) publishGauges() {
	s.bytesGauge.Store(s.bytes)
	s.entriesGauge.Store(int64(s.count))
}
