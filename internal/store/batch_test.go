package store

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
)

func batchItems(n int, prefix string) []Item {
	items := make([]Item, n)
	for i := range items {
		items[i] = Item{Key: fmt.Sprintf("%s%03d", prefix, i), Body: fmt.Appendf(nil, `{"i":%d}`, i)}
	}
	return items
}

// TestPutBatch: a batch larger than MaxBatch commits as one group, each item
// a write of its own with consecutive seqs, a repeated key deriving from
// its earlier item, bodies copied, and the change log complete.
func TestPutBatch(t *testing.T) {
	var mu sync.Mutex // guards sizes
	var sizes []int
	s := openT(t, "", Options{MaxBatch: 4, OnCommit: func(n int, _ time.Duration) {
		mu.Lock()
		sizes = append(sizes, n)
		mu.Unlock()
	}})
	items := batchItems(20, "k")
	items = append(items, Item{Key: "k000", Body: []byte(`"again"`)})
	recs, err := s.PutBatch(bg, "t", items)
	if err != nil {
		t.Fatal(err)
	}
	items[0].Body[0] = 'X' // the store copied it
	mu.Lock()
	got := slices.Clone(sizes)
	mu.Unlock()
	if want := []int{len(items)}; !slices.Equal(got, want) {
		t.Fatalf("group sizes %v, want %v (one group despite MaxBatch 4)", got, want)
	}
	if len(recs) != len(items) {
		t.Fatalf("%d records, want %d", len(recs), len(items))
	}
	for i, r := range recs {
		if r.Key != items[i].Key {
			t.Fatalf("record %d is %q, want %q (order of items)", i, r.Key, items[i].Key)
		}
		if i > 0 && r.Seq != recs[i-1].Seq+1 {
			t.Fatalf("seqs %d then %d, want consecutive", recs[i-1].Seq, r.Seq)
		}
	}
	if last := recs[len(recs)-1]; last.Version.Parent != recs[0].Version.ID() {
		t.Errorf("repeated key's parent = %s, want the batch's earlier version %s", last.Version.Parent, recs[0].Version.ID())
	}
	for i, it := range items[1:20] {
		r, err := s.Get(bg, "t", it.Key)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := string(r.Body), fmt.Sprintf(`{"i":%d}`, i+1); got != want {
			t.Errorf("Get(%s) = %s, want %s", it.Key, got, want)
		}
	}
	if r, err := s.Get(bg, "t", "k000"); err != nil || string(r.Body) != `"again"` {
		t.Errorf(`Get(k000) = %q, %v; want "again" (the later item wins)`, r.Body, err)
	}
	if n := count(t, s.Changes(bg, "t", 0, 0)); n != len(items) {
		t.Errorf("%d change-log entries, want %d", n, len(items))
	}
	checkConsistent(t, s)
}

// TestPutBatchNotInterleaved parks the syncer and queues a Put, a batch and
// a Put in that order: the batch joins the open group whole, between them,
// with consecutive seqs.
func TestPutBatchNotInterleaved(t *testing.T) {
	bc := newBlockCommits()
	taken := make(chan struct{}, 100)
	s := openT(t, "", Options{MaxBatch: 2, OnCommit: bc.onCommit, onTake: func() { taken <- struct{}{} }})
	go func() { _, _ = s.Put(bg, "t", "first", nil, doc.Precondition{}) }()
	<-taken
	<-bc.entered // parked after committing "first"
	var wg sync.WaitGroup
	var before, after Record
	var recs []Record
	var errs [3]error
	wg.Go(func() { before, errs[0] = s.Put(bg, "t", "before", []byte("1"), doc.Precondition{}) })
	<-taken
	wg.Go(func() { recs, errs[1] = s.PutBatch(bg, "t", batchItems(10, "b")) })
	<-taken
	wg.Go(func() { after, errs[2] = s.Put(bg, "t", "after", []byte("2"), doc.Precondition{}) })
	// MaxBatch 2 and a group of 11: "after" waits for the next group.
	waitQueued(s, 1)
	close(bc.gate)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	bc.mu.Lock()
	sizes := slices.Clone(bc.sizes)
	bc.mu.Unlock()
	if want := []int{1, 11, 1}; !slices.Equal(sizes, want) {
		t.Fatalf("group sizes %v, want %v", sizes, want)
	}
	if recs[0].Seq != before.Seq+1 || after.Seq != recs[len(recs)-1].Seq+1 {
		t.Fatalf("seqs: before %d, batch %d..%d, after %d; want consecutive", before.Seq, recs[0].Seq, recs[len(recs)-1].Seq, after.Seq)
	}
}

func TestPutBatchInvalid(t *testing.T) {
	s := openT(t, "", Options{})
	items := batchItems(3, "k")
	items[2].Key = ""
	_, err := s.PutBatch(bg, "t", items)
	wantClass(t, "batch with an empty key", err, fault.Invalid)
	_, err = s.PutBatch(bg, "T!", batchItems(1, "k"))
	wantClass(t, "bad tenant", err, fault.Invalid)
	if n := count(t, s.List(bg, "t", ListOptions{})); n != 0 {
		t.Fatalf("%d documents after refused batches, want 0", n)
	}
	if recs, err := s.PutBatch(bg, "t", nil); err != nil || recs != nil {
		t.Fatalf("empty batch: %v, %v", recs, err)
	}
}

// TestPutBatchContext: a batch whose context ended before it was queued is
// not written.
func TestPutBatchContext(t *testing.T) {
	s := openT(t, "", Options{})
	ctx, cancel := context.WithCancel(bg)
	cancel()
	_, err := s.PutBatch(ctx, "t", batchItems(5, "k"))
	if err == nil {
		t.Fatal("PutBatch with a cancelled context succeeded")
	}
	if n := count(t, s.List(bg, "t", ListOptions{})); n != 0 {
		t.Fatalf("%d documents, want 0", n)
	}
}

// TestPutBatchCommitFailure: a failed fsync fails every item of the batch
// and the store.
func TestPutBatchCommitFailure(t *testing.T) {
	tog := walFault(syscall.EIO, errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo)
	s := openT(t, "", Options{FS: errorfs.Wrap(vfs.Default, tog)})
	tog.On()
	if _, err := s.PutBatch(bg, "t", batchItems(5, "k")); err == nil {
		t.Fatal("PutBatch succeeded with a failing fsync")
	}
	if _, err := s.PutBatch(bg, "t", batchItems(1, "z")); err == nil {
		t.Fatal("PutBatch on a failed store succeeded")
	}
}

// TestPutBatchOverExisting reopens the store (an empty overlay) so that the
// batch's current versions come from the database through prefetch: live
// documents, a tombstone and absent keys must each get the parent lookup
// would give.
func TestPutBatchOverExisting(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{})
	live := mustPut(t, s, "t", "live", `1`)
	mustPut(t, s, "t", "gone", `2`)
	gone, err := s.Delete(bg, "t", "gone", doc.Precondition{})
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, "u", "other-tenant", `3`)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir, Options{})
	recs, err := s.PutBatch(bg, "t", []Item{{"new", []byte(`4`)}, {"live", []byte(`5`)}, {"gone", []byte(`6`)}, {"a", []byte(`7`)}})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []doc.ID{{}, live.Version.ID(), gone.Version.ID(), {}} {
		if got := recs[i].Version.Parent; got != want {
			t.Errorf("%s: parent %s, want %s", recs[i].Key, got, want)
		}
	}
	if recs[1].Seq <= gone.Seq {
		t.Errorf("seq %d not after the earlier writes (%d)", recs[1].Seq, gone.Seq)
	}
	checkConsistent(t, s)
}

// TestBulkBatchInKeyOrder: a bulk group's Pebble batch holds its change-log
// entries, then its document rows, then its sync states (then the
// high-water marks), each run in key order for records in key order, so
// that Pebble's sort of a batch committed as a table, and the memtable's
// inserts, each find the next key after the last.
func TestBulkBatchInKeyOrder(t *testing.T) {
	var mu sync.Mutex // guards runs
	var runs []string
	s := openT(t, "", Options{onBatch: func(b *pebble.Batch) {
		tables, err := tableRuns(b)
		if err != nil {
			t.Error(err)
		}
		mu.Lock()
		runs = append(runs, tables)
		mu.Unlock()
	}})
	last := func() string {
		mu.Lock()
		defer mu.Unlock()
		return runs[len(runs)-1]
	}
	items := batchItems(40, "k")
	items = append(items, Item{Key: "k039", Body: []byte(`"again"`)}) // the same key twice: the later wins
	if _, err := s.PutBatch(bg, "t", items); err != nil {
		t.Fatal(err)
	}
	if got, want := last(), "cdm"; got != want {
		t.Errorf("PutBatch's batch has the tables %q in that order, want %q", got, want)
	}
	if r, err := s.Get(bg, "t", "k039"); err != nil || string(r.Body) != `"again"` {
		t.Errorf(`Get(k039) = %q, %v; want "again"`, r.Body, err)
	}

	hlc := doc.MakeTimestamp(time.Now().UnixMilli(), 1)
	var applies []ApplyItem
	for i := range 20 {
		body := fmt.Appendf(nil, `{"i":%d}`, i)
		v := doc.Derive(nil, 0xabcdef, hlc+doc.Timestamp(i), body, false)
		applies = append(applies, ApplyItem{Key: fmt.Sprintf("r%03d", i), Version: v, Body: body,
			Sync: &SyncUpdate{Backend: "fs", State: SyncState{Base: v, RemoteETag: fmt.Sprintf("e%d", i)}}})
	}
	errs, err := s.ApplyBatch(bg, "t", applies)
	if err != nil || slices.ContainsFunc(errs, func(e error) bool { return e != nil }) {
		t.Fatal(err, errs)
	}
	if got, want := last(), "cdsm"; got != want {
		t.Errorf("ApplyBatch's batch has the tables %q in that order, want %q", got, want)
	}
	checkConsistent(t, s)
}

// tableRuns returns the tables of b's keys in the batch's order, one letter
// per run of keys of one table, or an error if a run's keys ever go down.
func tableRuns(b *pebble.Batch) (string, error) {
	var runs []byte
	var prev []byte
	for r := b.Reader(); ; {
		_, key, _, ok, err := r.Next()
		if err != nil || !ok {
			return string(runs), err
		}
		if len(runs) == 0 || key[0] != runs[len(runs)-1] {
			runs = append(runs, key[0])
		} else if bytes.Compare(key, prev) < 0 {
			return string(runs), fmt.Errorf("key %q after %q in one run of table %q", key, prev, key[0])
		}
		prev = slices.Clone(key)
	}
}
