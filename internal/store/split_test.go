package store

import (
	"context"
	"fmt"
	"testing"
)

// TestSSTablesSplitByTable: the sstables written by flushes and
// compactions each hold the rows of one table only (splitTables).
func TestSSTablesSplitByTable(t *testing.T) {
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	for b := range 4 {
		items := make([]Item, 500)
		for i := range items {
			items[i] = Item{Key: fmt.Sprintf("k%06d", b*len(items)+i), Body: []byte(`{"n":1}`)}
		}
		if _, err := s.PutBatch(ctx, "t", items); err != nil {
			t.Fatal(err)
		}
		if err := s.db.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	check := func(where string) {
		t.Helper()
		levels, err := s.db.SSTables()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for l, tables := range levels {
			for _, tb := range tables {
				n++
				lo, hi := tb.Smallest.UserKey, tb.Largest.UserKey
				if lo[0] != hi[0] {
					t.Errorf("%s: an L%d table spans tables, %q to %q", where, l, lo, hi)
				}
			}
		}
		if n == 0 {
			t.Fatalf("%s: no sstables", where)
		}
	}
	check("after flushes")
	if err := s.db.Compact(ctx, []byte{0}, []byte{0xff}, false); err != nil {
		t.Fatal(err)
	}
	check("after a compaction")
}
