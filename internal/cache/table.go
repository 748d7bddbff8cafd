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
	slots []atomic.Pointer[node]
	mask  uint64
	used  int // slots not nil (live + deleted); owner only
	live  int // slots holding a node; owner only
}

// deleted marks a slot whose node was removed.
var deleted = new(node)

// newTable returns a table with room for n nodes at under half load.
func newTable(n int) *table {
	size := 8
	for size < 2*n {
		size <<= 1
	}
	return &table{slots: make([]atomic.Pointer[node], size), mask: uint64(size - 1)}
}

// find returns the node for k and its slot, or nil and -1. Safe without a
// lock.
func (t *table) find(h uint64, k Key) (*node, int) {
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		n := t.slots[i].Load()
		if n == nil {
			return nil, -1
		}
		if n != deleted && n.hash == h && n.key == k {
			return n, int(i)
		}
	}
}

// full reports whether one more insert would take the table past 3/4 used,
// which keeps probe sequences short and guarantees a nil slot exists.
func (t *table) full() bool { return (t.used+1)*4 > len(t.slots)*3 }

// insert puts n, whose key must be absent, in the first deleted or nil slot
// of its probe sequence. The table must not be full.
func (t *table) insert(n *node) {
	for i := n.hash & t.mask; ; i = (i + 1) & t.mask {
		cur := t.slots[i].Load()
		if cur == nil || cur == deleted {
			if cur == nil {
				t.used++
			}
			t.live++
			t.slots[i].Store(n)
			return
		}
	}
}

// del empties slot i.
func (t *table) del(i int) {
	t.slots[i].Store(deleted)
	t.live--
}

// rehashed returns a new table holding t's nodes, with room to grow.
func (t *table) rehashed() *table {
	nt := newTable(t.live + 1)
	for i := range t.slots {
		if n := t.slots[i].Load(); n != nil && n != deleted {
			nt.insert(n)
		}
	}
	return nt
}
