package cache

import (
	"fmt"
	"testing"
	"unsafe"
)

func TestTable(t *testing.T) {
	tab := newTable(0)
	// Force collisions: every node has the same hash, so they share one
	// probe sequence, and deleting a middle one must not hide the rest.
	const h = 5
	nodes := make([]*node, 5)
	for i := range nodes {
		nodes[i] = &node{key: Key{"t", fmt.Sprint(i)}}
		if tab.full() {
			t.Fatalf("table full after %d inserts", i)
		}
		tab.insert(h, nodes[i])
	}
	find := func(i int) *node { n, _ := tab.find(h, nodes[i].key); return n }
	for i := range nodes {
		if got := find(i); got != nodes[i] {
			t.Fatalf("find(%d) = %p, want %p", i, got, nodes[i])
		}
	}
	_, at := tab.find(h, nodes[2].key)
	tab.del(at)
	if find(2) != nil {
		t.Error("deleted node still found")
	}
	for _, i := range []int{0, 1, 3, 4} {
		if find(i) != nodes[i] {
			t.Errorf("node %d lost behind a deleted slot", i)
		}
	}
	if tab.live != 4 || tab.used != 5 {
		t.Errorf("live=%d used=%d, want 4, 5", tab.live, tab.used)
	}
	// A new node reuses the deleted slot.
	extra := &node{key: Key{"t", "x"}}
	tab.insert(h, extra)
	if tab.used != 5 || tab.live != 5 {
		t.Errorf("after reuse live=%d used=%d, want 5, 5", tab.live, tab.used)
	}
	re := tab.rehashed()
	if re.live != 5 || re.used != 5 {
		t.Errorf("rehashed live=%d used=%d", re.live, re.used)
	}
	if n, _ := re.find(h, Key{"t", "x"}); n != extra {
		t.Error("rehash lost a node")
	}
	if n, _ := tab.find(h, Key{"t", "absent"}); n != nil {
		t.Error("found an absent key")
	}
}

// TestNodeSize keeps node in Go's 64-byte size class, one cache line (see
// the node doc).
func TestNodeSize(t *testing.T) {
	if got := unsafe.Sizeof(node{}); got != 64 {
		t.Errorf("unsafe.Sizeof(node{}) = %d, want 64", got)
	}
}
