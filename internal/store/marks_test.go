package store

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestBulkMarks: a bulk group's high-water marks, kept under a key of its
// own (stageMarks), are the store's marks after a crash and after a clean
// Close, whichever of the two kinds of marks is newer; Open and Close fold
// them into metaSeq and metaHLC, which is all a build that knows only
// those reads.
func TestBulkMarks(t *testing.T) {
	dir := t.TempDir()
	mem := vfs.NewCrashableMem()
	s := openT(t, dir, Options{FS: mem})
	mustPut(t, s, "t", "first", `{"n":0}`)
	recs, err := s.PutBatch(bg, "t", batchItems(30, "b"))
	if err != nil {
		t.Fatal(err)
	}
	bulk := recs[len(recs)-1]
	afterBulk := mem.CrashClone(vfs.CrashCloneCfg{})
	single := mustPut(t, s, "t", "after", `{"n":1}`)
	afterSingle := mem.CrashClone(vfs.CrashCloneCfg{})
	recs, err = s.PutBatch(bg, "t", batchItems(5, "c"))
	if err != nil {
		t.Fatal(err)
	}
	lastBulk := recs[len(recs)-1]
	if got := markKeys(t, s); got != 2 {
		t.Fatalf("%d bulk marks before Close, want 2 (one per bulk group)", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name string
		fs   vfs.FS
		last Record // the last write that survived
	}{
		{"crash after the bulk write", afterBulk, bulk},
		{"crash after a single write that followed it", afterSingle, single},
		{"after Close", mem, lastBulk},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := openT(t, dir, Options{FS: c.fs})
			if got := markKeys(t, s); got != 0 {
				t.Errorf("%d bulk marks after Open, want them folded", got)
			}
			seq, hlc := legacyMarks(t, s)
			if seq != c.last.Seq || hlc < uint64(c.last.Version.HLC) {
				t.Errorf("metaSeq %d, metaHLC %d after Open; want %d and at least %d", seq, hlc, c.last.Seq, c.last.Version.HLC)
			}
			next := mustPut(t, s, "t", "next", `{"n":2}`)
			if next.Seq != seq+1 || uint64(next.Version.HLC) <= hlc {
				t.Errorf("the next write has Seq %d, HLC %d; want %d and above %d", next.Seq, next.Version.HLC, seq+1, hlc)
			}
			checkConsistent(t, s)
		})
	}
}

// TestBulkLoadRewritesNothing: a bulk load of records in key order leaves
// L0 one sublevel deep and Pebble compacts nothing while it runs: no batch
// overwrites a key of another (stageMarks).
func TestBulkLoadRewritesNothing(t *testing.T) {
	s := openT(t, "", Options{MemTableSize: 1 << 20})
	body := strings.Repeat("x", 180)
	n := 0
	for range 16 {
		items := make([]Item, 3000)
		for i := range items {
			n++
			items[i] = Item{Key: fmt.Sprintf("k%09d", n), Body: []byte(`"` + body + `"`)}
		}
		if _, err := s.PutBatch(bg, "t", items); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	m := s.db.Metrics()
	if m.Flush.Count < 8 {
		t.Fatalf("%d flushes, want at least 8 for the test to mean something", m.Flush.Count)
	}
	if m.Compact.Count != 0 || m.Levels[0].Sublevels > 1 {
		t.Errorf("after %d flushes of a load in key order: %d compactions, L0 %d sublevels deep; want none and 1\n%s",
			m.Flush.Count, m.Compact.Count, m.Levels[0].Sublevels, m)
	}
}

// markKeys counts the bulk groups' marks in s.
func markKeys(t *testing.T, s *Store) int {
	t.Helper()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: metaMark, UpperBound: metaMarkEnd})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	n := 0
	for it.First(); it.Valid(); it.Next() {
		n++
	}
	return n
}

// legacyMarks reads metaSeq and metaHLC.
func legacyMarks(t *testing.T, s *Store) (seq, hlc uint64) {
	t.Helper()
	for _, m := range []struct {
		key []byte
		dst *uint64
	}{{metaSeq, &seq}, {metaHLC, &hlc}} {
		v, closer, err := s.db.Get(m.key)
		if err != nil {
			t.Fatal(err)
		}
		*m.dst, err = decodeUint64(v)
		closer.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	return seq, hlc
}

// TestBulkMarksBounded: between two folds, every maxBulkMarks-th bulk
// group deletes the marks of the ones before it.
func TestBulkMarksBounded(t *testing.T) {
	s := openT(t, "", Options{Durability: Buffered})
	var last Record
	for i := range maxBulkMarks + 10 {
		recs, err := s.PutBatch(bg, "t", []Item{{Key: fmt.Sprintf("k%d", i), Body: []byte("1")}})
		if err != nil {
			t.Fatal(err)
		}
		last = recs[0]
	}
	if got := markKeys(t, s); got > maxBulkMarks {
		t.Errorf("%d bulk marks after %d bulk groups, want at most %d", got, maxBulkMarks+10, maxBulkMarks)
	}
	if seq, _, found, err := s.lastBulkMarks(); err != nil || !found || seq != last.Seq {
		t.Errorf("the last bulk marks: Seq %d, found %v, %v; want %d", seq, found, err, last.Seq)
	}
}

// TestBulkMarksSettled: once no group has followed a bulk one for
// settleAfter, the syncer writes its marks into metaSeq and metaHLC, so a
// crash after a load leaves them where a build that reads only those
// finds them: read-only, which folds nothing, the crash's copy has them.
func TestBulkMarksSettled(t *testing.T) {
	dir := t.TempDir()
	mem := vfs.NewCrashableMem()
	settled := make(chan uint64, 16)
	s := openT(t, dir, Options{FS: mem, settleAfter: 20 * time.Millisecond, onSettle: func(seq uint64) { settled <- seq }})
	mustPut(t, s, "t", "first", `{"n":0}`)
	var last Record
	for i := range 3 {
		recs, err := s.PutBatch(bg, "t", batchItems(30, fmt.Sprintf("b%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		last = recs[len(recs)-1]
	}
	// A pause between two groups longer than settleAfter (a loaded
	// machine) settles an earlier group's marks first: wait for the last's.
	deadline := time.After(20 * time.Second) // far beyond settleAfter: only a bug reaches it
	for seq := uint64(0); seq != last.Seq; {
		select {
		case seq = <-settled:
			if seq > last.Seq {
				t.Fatalf("settled the marks of Seq %d, past the last write's %d", seq, last.Seq)
			}
		case <-deadline:
			t.Fatalf("the marks of the last bulk group (Seq %d) were not settled after the load", last.Seq)
		}
	}
	crashed := mem.CrashClone(vfs.CrashCloneCfg{})
	if err := s.Close(); err != nil { // the directory's lock
		t.Fatal(err)
	}
	r := openT(t, dir, Options{FS: crashed, ReadOnly: true})
	if seq, hlc := legacyMarks(t, r); seq != last.Seq || hlc < uint64(last.Version.HLC) {
		t.Errorf("metaSeq %d, metaHLC %d in a crash's copy after the load; want %d and at least %d", seq, hlc, last.Seq, last.Version.HLC)
	}
}
