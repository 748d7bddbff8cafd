package resp

import (
	"strings"
	"testing"
)

// TestCursorsBounded: a tenant's table keeps its newest cursors, and the
// tables together stay within their byte bound, the tenant holding the
// most losing its oldest first, so a tenant scanning little keeps its
// cursors while another scans hard.
func TestCursorsBounded(t *testing.T) {
	key := strings.Repeat("k", 10)
	cost := len(key) + cursorCost
	cs := newCursors(4, 5*cost)
	var busy []uint64
	for range 5 {
		busy = append(busy, cs.put("busy", key))
	}
	if _, ok := cs.get(busy[0], "busy"); ok {
		t.Error("the fifth cursor of a table of 4 kept the first")
	}
	quiet := cs.put("quiet", key) // 4 + 1 = 5 cursors: within the bound
	if _, ok := cs.get(busy[1], "busy"); !ok {
		t.Error("a cursor dropped within the bound")
	}
	busy = append(busy, cs.put("busy", key)) // over: busy, the largest, loses its oldest
	if _, ok := cs.get(busy[1], "busy"); ok {
		t.Error("past the bound the largest table kept its oldest cursor")
	}
	if _, ok := cs.get(quiet, "quiet"); !ok {
		t.Error("past the bound the smallest table lost its cursor")
	}
	if cs.total > cs.limit {
		t.Errorf("tables hold %d bytes, over the bound of %d", cs.total, cs.limit)
	}
	if _, ok := cs.get(quiet, "busy"); ok {
		t.Error("another tenant's cursor was found")
	}
	// Tables emptied by the bound are dropped: many tenants scanning once
	// hold no more than the bound.
	for i := range 20 {
		cs.put(strings.Repeat("t", i+1), key)
	}
	if len(cs.tenants) > 5 || cs.total > cs.limit {
		t.Errorf("%d tables of %d bytes after 20 tenants scanned; want at most 5 within %d", len(cs.tenants), cs.total, cs.limit)
	}
}

// TestCursorsOneATenant: with room for one cursor a tenant, each new one
// replaces the last and is found.
func TestCursorsOneATenant(t *testing.T) {
	cs := newCursors(1, 1<<20)
	first := cs.put("a", "k1")
	second := cs.put("a", "k2")
	if _, ok := cs.get(first, "a"); ok {
		t.Error("the replaced cursor was found")
	}
	if after, ok := cs.get(second, "a"); !ok || after != "k2" {
		t.Errorf("the new cursor: %q %v, want k2", after, ok)
	}
	if cs.total != len("k2")+cursorCost {
		t.Errorf("total %d bytes, want %d", cs.total, len("k2")+cursorCost)
	}
}

// TestCursorsExactAsDoubles: every cursor is below 2^53, so a client that
// holds it as a JavaScript number (node-redis 4 does) sends back the
// number it was given, which a random 64-bit cursor was not 999 times in
// a thousand.
func TestCursorsExactAsDoubles(t *testing.T) {
	cs := newCursors(maxCursors, cursorBytes)
	for range 2000 {
		id := cs.put("a", "k")
		if uint64(float64(id)) != id || id == 0 {
			t.Fatalf("cursor %d does not survive a trip through a float64", id)
		}
	}
}
