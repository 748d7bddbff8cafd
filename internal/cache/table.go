package cache

import "sync/atomic"

// table is an open-addressing hash table (linear probing) of nodes whose
// slots readers load without any lock. Only the owning shard's writer,
// holding shard.mu, stores into a published table; a table being built by a
// rebuild is private until it is published.
//
// Slots go nil → node → deleted (or node → node, replacing a node for the
// same key). A slot never goes back to nil, so a probe sequence a reader is
// following is never cut short: a reader either finds the key or reaches a
// nil slot, which proves the key was absent when the reader passed.
type table struct {
	slots []slot
	mask  uint64
	used  int // slots not nil (live + deleted); owner only
	live  int // slots holding a node; owner only
}

// slot keeps the node's hash next to the pointer, so a probe that passes
// other keys' slots does not dereference their nodes (a cache miss each).
// Writers store hash before n; hash changes only when a deleted slot is
// reused. A reader that sees a hash from a reused slot with an older node
// still compares the node's key, so the worst case is a miss racing a
// removal or an insert of that key, which is a legal outcome of a race.
type slot struct {
	hash atomic.Uint64
	n    atomic.Pointer[node]
}

// deleted marks a slot whose node was removed.
var deleted = new(node)

// newTable returns a table with room for n nodes at under half load.
func newTable(n int) *table {
	size := 8
	for size < 2*n {
		size <<= 1
	}
	return &table{slots: make([]slot, size), mask: uint64(size - 1)}
}

// find returns the node for k and its slot, or nil and -1. Safe without a
// lock.
func (t *table) find(h uint64, k Key) (*node, int) {
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		sl := &t.slots[i]
		n := sl.n.Load()
		if n == nil {
			return nil, -1
		}
		if n != deleted && sl.hash.Load() == h && n.key == k {
			return n, int(i)
		}
	}
}

// full reports whether one more insert would take the table past 5/8 used,
// which keeps probe sequences short and guarantees a nil slot exists.
func (t *table) full() bool { return (t.used+1)*8 > len(t.slots)*5 }

// insert puts n, whose key must be absent and hash h, in the first deleted
// or nil slot of its probe sequence. The table must not be full.
func (t *table) insert(h uint64, n *node) {
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		sl := &t.slots[i]
		cur := sl.n.Load()
		if cur == nil || cur == deleted {
			if cur == nil {
				t.used++
			}
			t.live++
			sl.hash.Store(h)
			sl.n.Store(n)
			return
		}
	}
}

// del empties slot i.
func (t *table) del(i int) {
	t.slots[i].n.Store(deleted)
	t.live--
}

// rehashed returns a new table holding t's nodes, with room to grow.
func (t *table) rehashed() *table {
	nt := newTable(t.live + 1)
	for i := range t.slots {
		if n := t.slots[i].n.Load(); n != nil && n != deleted {
			nt.insert(t.slots[i].hash.Load(), n)
		}
	}
	return nt
}
