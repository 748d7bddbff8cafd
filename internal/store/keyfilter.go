package store

import (
	"context"
	"hash/maphash"
	"runtime"
	"slices"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
)

// The key filter answers "this document row certainly does not exist"
// without asking Pebble.
//
// Every write first needs the key's current version (its parent), and a PUT
// that creates a document asks Pebble for a row that is not there. Pebble
// answers that with an iterator and a seek through every memtable (which
// have no bloom filters) and the bloom filters of every level, the largest
// share of the store's CPU per durable PUT. The filter is a set of blocked
// Bloom filters (stages) holding every document row's key, kept in memory:
// a lookup of a key it has never seen costs one hash and a cache line per
// stage.
//
// Why it is exact enough: a false positive costs the Pebble lookup the
// store made before; a false negative would make a write forget the
// document's history, so the filter must hold every key that has a row.
//
//   - Every document row is written by the committer's stage, which adds the
//     key to the filter before the write can commit. Reading the filter is
//     therefore like reading Pebble at that moment, and prepare's argument
//     (committer.go) holds for it as it does for a read.
//   - The filter is built by buildFilter, once, at Open: the committer
//     first starts adding to it every key it stages, and every key in its
//     overlay (staged, maybe not yet committed); then buildFilter scans the
//     document rows through an iterator created after that, which holds
//     every row committed before (a key staged earlier and no longer in the
//     overlay was committed when it was pruned). Only then does the
//     committer publish the filter for lookups.
//   - Collected rows stay in the filter: a false positive.
//   - Growing never rescans: when the newest stage has been given as many
//     keys as it was sized for, the committer adds a stage of twice the size
//     for the keys to come, and a lookup asks every stage. Rebuilding a
//     bigger filter from a scan of every row instead would cost a bulk
//     ingest a scan of all its rows at every doubling, in CPU and memory.
//   - At the size cap (Options.KeyFilterBytes) the newest stage serves up to
//     twice its capacity; past that the filter is dropped for good (until
//     the next Open) and every lookup goes to Pebble again.
type keyFilter struct {
	words    []atomic.Uint64
	blocks   uint64
	capacity int64
	keys     atomic.Int64 // keys added as new: rows scanned plus documents created
}

const (
	filterBitsPerKey = 10      // ~1–2% false positives at capacity
	filterBlockWords = 8       // a block is one 64-byte cache line
	filterProbes     = 7       // bits set per key, all in the key's block
	filterMinKeys    = 1 << 20 // the first stage: 1.25 MiB
	// DefaultKeyFilterBytes caps the key filter: 16 MiB covers ~13 million
	// documents (and serves up to twice that).
	DefaultKeyFilterBytes = 16 << 20
)

func newKeyFilter(capacity int64) *keyFilter {
	blocks := filterBlocks(capacity)
	words, free := filterWords(int(blocks * filterBlockWords))
	f := &keyFilter{
		words:    words,
		blocks:   blocks,
		capacity: capacity,
	}
	// The bits may be outside the heap (filterWords): they are freed once
	// nothing reaches f, so every use of f.words ends with KeepAlive(f).
	runtime.AddCleanup(f, func(free func()) {
		free()
		filtersFreed.Add(1)
	}, free)
	return f
}

// filtersFreed counts the stages whose bits were freed (TestKeyFilterFreed).
var filtersFreed atomic.Int64

// filterBlocks is how many blocks a stage of capacity keys has.
func filterBlocks(capacity int64) uint64 {
	return (uint64(capacity)*filterBitsPerKey + 511) / 512
}

// filterCapacity is the capacity of the largest stage within bytes.
func filterCapacity(bytes int64) int64 {
	return bytes / (filterBlockWords * 8) * 512 / filterBitsPerKey // whole blocks only
}

// locate returns the block of the key with hash h and the bits to probe in
// it (filterProbes 9-bit positions).
func (f *keyFilter) locate(h uint64) ([]atomic.Uint64, uint64) {
	b := (h >> 32) * f.blocks >> 32 // blocks < 2³²: fast range reduction
	x := h * 0x9e3779b97f4a7c15
	x ^= x >> 31
	return f.words[b*filterBlockWords : (b+1)*filterBlockWords], x
}

func (f *keyFilter) insert(h uint64) {
	block, x := f.locate(h)
	for range filterProbes {
		p := x & 511
		block[p>>6].Or(1 << (p & 63))
		x >>= 9
	}
	runtime.KeepAlive(f)
}

func (f *keyFilter) has(h uint64) bool {
	block, x := f.locate(h)
	found := true
	for range filterProbes {
		p := x & 511
		if block[p>>6].Load()&(1<<(p&63)) == 0 {
			found = false
			break
		}
		x >>= 9
	}
	runtime.KeepAlive(f)
	return found
}

// filterSet is the key filter: its stages, oldest first. A key is added to
// the newest stage only; a lookup asks them all. A set is never modified
// but by adding bits: growing makes a new set.
//
// The filter's key is the overlay key (tenant NUL key), which is the
// document row's Pebble key without its table byte. The stages share one
// seed, so a key is hashed once.
type filterSet struct {
	seed   maphash.Seed
	stages []*keyFilter
	limit  int64 // keys the newest stage may take before the set grows or is dropped
	budget int64 // bits' bytes the stages may still use (Options.KeyFilterBytes)
}

func (fs *filterSet) newest() *keyFilter { return fs.stages[len(fs.stages)-1] }

// mayHaveRow reports whether the document row with Pebble key dk may exist.
func (fs *filterSet) mayHaveRow(dk []byte) bool { return fs.has(maphash.Bytes(fs.seed, dk[1:])) }

// mayHave is mayHaveRow by overlay key.
func (fs *filterSet) mayHave(ok string) bool { return fs.has(maphash.String(fs.seed, ok)) }

// add puts the key ok in the newest stage.
func (fs *filterSet) add(ok string) { fs.newest().insert(maphash.String(fs.seed, ok)) }

func (fs *filterSet) has(h uint64) bool {
	for _, f := range fs.stages {
		if f.has(h) {
			return true
		}
	}
	return false
}

// newFilterSet is a set of one stage sized for capacity keys within budget
// bytes (filterBytes), or nil if not even a small stage fits.
func newFilterSet(capacity, budget int64) *filterSet {
	capacity = min(capacity, filterCapacity(budget))
	if capacity <= 0 {
		return nil
	}
	fs := &filterSet{seed: maphash.MakeSeed(), stages: []*keyFilter{newKeyFilter(capacity)}, budget: budget - filterBytes(capacity)}
	fs.limit = fs.limitFor(capacity)
	return fs
}

// limitFor is how many keys a newest stage of capacity keys takes: its
// capacity while a stage of at least that size still fits the budget,
// twice that once none does (more false positives rather than none of the
// filter).
func (fs *filterSet) limitFor(capacity int64) int64 {
	if filterCapacity(fs.budget) >= capacity {
		return capacity
	}
	return 2 * capacity
}

// filterBytes is the size of the bits of a stage of capacity keys.
func filterBytes(capacity int64) int64 {
	return int64(filterBlocks(capacity)) * filterBlockWords * 8
}

// grown is fs with one more stage, of twice the newest's capacity or what
// is left of the budget, whichever is smaller; nil when none fits (limitFor
// made sure that only happens past twice the newest's capacity).
func (fs *filterSet) grown() *filterSet {
	capacity := min(2*fs.newest().capacity, filterCapacity(fs.budget))
	if capacity < fs.newest().capacity {
		return nil
	}
	next := &filterSet{
		seed:   fs.seed,
		stages: append(slices.Clip(fs.stages), newKeyFilter(capacity)),
		budget: fs.budget - filterBytes(capacity),
	}
	next.limit = next.limitFor(capacity)
	return next
}

// filterMsg is buildFilter's request to the committer: start a filter of
// one stage of capacity keys and answer it on started (once the overlay is
// in it); or publish the filter, whose first stage scanned rows went into.
type filterMsg struct {
	capacity int64
	started  chan *filterSet
	publish  bool
	scanned  int64
}

// applyFilterMsg runs on the committer goroutine.
func (s *Store) applyFilterMsg(m filterMsg) {
	switch {
	case m.started != nil:
		s.fset = newFilterSet(m.capacity, s.filterMax)
		if s.fset != nil {
			for ok := range s.overlay {
				s.fset.add(ok)
			}
		}
		m.started <- s.fset
	case m.publish:
		if s.fset == nil {
			return // dropped while the rows were scanned
		}
		s.fset.stages[0].keys.Add(m.scanned)
		s.filter.Store(s.fset)
		s.filterEvent("published")
		s.checkFilter()
	}
}

// filterStaged tells the filter of a staged document row; created says the
// key had none. It runs on the committer goroutine.
func (s *Store) filterStaged(ok string, created bool) {
	if s.fset == nil {
		return
	}
	s.fset.add(ok)
	if created {
		s.fset.newest().keys.Add(1)
		s.checkFilter()
	}
}

// checkFilter grows or drops the filter once its newest stage is full.
// Only a published filter changes: until then the scan's count is missing.
func (s *Store) checkFilter() {
	if s.filter.Load() != s.fset || s.fset.newest().keys.Load() <= s.fset.limit {
		return
	}
	if next := s.fset.grown(); next != nil {
		s.fset = next
		s.filter.Store(next)
		s.filterEvent("grown")
		return
	}
	s.fset = nil
	s.filter.Store(nil)
	s.filterEvent("dropped")
}

func (s *Store) filterEvent(stage string) {
	if s.filterHook != nil {
		s.filterHook(stage)
	}
}

// buildFilter is the filter's builder goroutine, started by Open: it has
// the committer start a filter sized for the rows the store may hold (Seq
// counts every write, an upper bound), scans the rows into it and has the
// committer publish it. It returns early if ctx is canceled (Close), and
// closes filterDone when it returns.
func (s *Store) buildFilter(ctx context.Context, rows int64) {
	defer close(s.filterDone)
	s.filterEvent("starting")
	started := make(chan *filterSet, 1)
	if !s.sendFilterMsg(ctx, filterMsg{capacity: max(s.filterMin, 2*rows), started: started}) {
		return
	}
	var fs *filterSet
	select {
	case fs = <-started:
	case <-ctx.Done():
		return
	}
	if fs == nil {
		return // no stage fits Options.KeyFilterBytes
	}
	s.filterEvent("activated")
	n, err := s.scanRows(ctx, fs)
	if err != nil {
		// Canceled, or Pebble failed to read: the filter is never
		// published, and lookups keep going to Pebble.
		return
	}
	s.sendFilterMsg(ctx, filterMsg{publish: true, scanned: n})
}

func (s *Store) sendFilterMsg(ctx context.Context, m filterMsg) bool {
	select {
	case s.filterCh <- m:
		return true
	case <-ctx.Done():
		return false
	}
}

// scanRows adds the key of every document row to fs's first stage (whose
// count publish adds the result to), through an iterator created now
// (after the committer started adding to fs).
func (s *Store) scanRows(ctx context.Context, fs *filterSet) (int64, error) {
	f := fs.stages[0]
	it, err := s.db.NewIter(&pebble.IterOptions{
		LowerBound: []byte{tableDoc},
		UpperBound: []byte{tableDoc + 1},
	})
	if err != nil {
		return 0, err
	}
	var n int64
	for valid := it.First(); valid; valid = it.Next() {
		f.insert(maphash.Bytes(fs.seed, it.Key()[1:]))
		n++
		if n%4096 == 0 && ctx.Err() != nil {
			it.Close()
			return n, ctx.Err()
		}
	}
	return n, it.Close()
}
