package store

import (
	"context"
	"hash/maphash"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
)

// The key filter answers "this document row certainly does not exist"
// without asking Pebble.
//
// Every write first needs the key's current version (its parent), and a PUT
// that creates a document asks Pebble for a row that is not there. Pebble
// answers that with an iterator and a seek through every memtable (which
// have no bloom filters) and the bloom filters of every level: in a durable
// PUT run over HTTP that lookup was 11% of the node's CPU, the largest part
// the store owned (docs/benchmarks.md § 2c). The filter is a blocked Bloom
// filter of every document row's key, kept in memory: a lookup of a key it
// has never seen costs one hash and one cache line.
//
// Why it is exact enough: a false positive costs the Pebble lookup the
// store made before; a false negative would make a write forget the
// document's history, so the filter must hold every key that has a row.
//
//   - Every document row is written by the committer's stage, which adds the
//     key to every filter it keeps before the write can commit. Reading the
//     filter is therefore like reading Pebble at that moment, and prepare's
//     argument (committer.go) holds for it as it does for a read.
//   - A filter is built by keepFilter: the committer first starts adding to
//     it every key it stages, and every key in its overlay (staged, maybe
//     not yet committed); then keepFilter scans the document rows through an
//     iterator created after that, which holds every row committed before
//     (a key staged earlier and no longer in the overlay was committed when
//     it was pruned). Only then is the filter published for lookups.
//   - Collected rows stay in the filter: a false positive.
//
// The filter grows: when the keys it was given (rows scanned plus documents
// created) pass its capacity, keepFilter builds one of twice the size, and
// the old one serves until the new one is published. At the size cap
// (Options.KeyFilterBytes) it serves up to twice its capacity, then is
// dropped and every lookup goes to Pebble again.
type keyFilter struct {
	seed     maphash.Seed
	words    []atomic.Uint64
	blocks   uint64
	capacity int64
	limit    int64        // keys beyond which the committer asks for a bigger filter
	keys     atomic.Int64 // keys added as new: rows scanned plus documents created
	asked    bool         // the committer has asked to replace this filter; committer-owned
}

const (
	filterBitsPerKey = 10      // ~1–2% false positives at capacity
	filterBlockWords = 8       // a block is one 64-byte cache line
	filterProbes     = 7       // bits set per key, all in the key's block
	filterMinKeys    = 1 << 20 // 1.25 MiB: rebuilds are rare below a million keys
	// DefaultKeyFilterBytes caps the key filter: 16 MiB covers ~13 million
	// documents (and serves up to twice that).
	DefaultKeyFilterBytes = 16 << 20
)

func newKeyFilter(capacity int64) *keyFilter {
	blocks := (uint64(capacity)*filterBitsPerKey + 511) / 512
	return &keyFilter{
		seed:     maphash.MakeSeed(),
		words:    make([]atomic.Uint64, blocks*filterBlockWords),
		blocks:   blocks,
		capacity: capacity,
		limit:    capacity,
	}
}

// filterCapacity is the capacity of a filter of size bytes.
func filterCapacity(bytes int64) int64 { return bytes * 8 / filterBitsPerKey }

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
}

func (f *keyFilter) has(h uint64) bool {
	block, x := f.locate(h)
	for range filterProbes {
		p := x & 511
		if block[p>>6].Load()&(1<<(p&63)) == 0 {
			return false
		}
		x >>= 9
	}
	return true
}

// The filter's key is the overlay key (tenant NUL key), which is the
// document row's Pebble key without its table byte.

func (f *keyFilter) add(ok string)             { f.insert(maphash.String(f.seed, ok)) }
func (f *keyFilter) addRow(dk []byte)          { f.insert(maphash.Bytes(f.seed, dk[1:])) }
func (f *keyFilter) mayHaveRow(dk []byte) bool { return f.has(maphash.Bytes(f.seed, dk[1:])) }
func (f *keyFilter) mayHave(ok string) bool    { return f.has(maphash.String(f.seed, ok)) }
func (f *keyFilter) full() bool                { return f.keys.Load() > f.limit }

// filterMsg is keepFilter's request to the committer: start adding to add
// (answering on done once the overlay is in it), or stop adding to retire.
type filterMsg struct {
	add, retire *keyFilter
	done        chan struct{}
}

// applyFilterMsg runs on the committer goroutine.
func (s *Store) applyFilterMsg(m filterMsg) {
	if m.add != nil {
		s.filters = append(s.filters, m.add)
		for ok := range s.overlay {
			m.add.add(ok)
		}
	}
	if m.retire != nil {
		for i, f := range s.filters {
			if f == m.retire {
				s.filters = append(s.filters[:i], s.filters[i+1:]...)
				break
			}
		}
	}
	if m.done != nil {
		close(m.done)
	}
}

// filterStaged tells the committer's filters of a staged document row;
// created says the key had none.
func (s *Store) filterStaged(ok string, created bool) {
	for _, f := range s.filters {
		f.add(ok)
		if created {
			f.keys.Add(1)
		}
	}
	if f := s.filter.Load(); f != nil && !f.asked && f.full() {
		f.asked = true
		select {
		case s.filterGrow <- struct{}{}:
		default:
		}
	}
}

// keepFilter is the filter's builder goroutine: it builds the first filter,
// then a bigger one each time the committer says the published one is
// full, until ctx is canceled (Close). It closes filterDone when it returns.
func (s *Store) keepFilter(ctx context.Context, rows int64) {
	defer close(s.filterDone)
	maxKeys := filterCapacity(s.filterMax)
	capacity := min(max(s.filterMin, 2*rows), maxKeys)
	var serving *keyFilter
	for {
		f := newKeyFilter(capacity)
		if capacity == maxKeys {
			f.limit = 2 * capacity // cannot grow: serve with more false positives
		}
		if !s.sendFilterMsg(ctx, filterMsg{add: f, done: make(chan struct{})}) {
			return
		}
		if s.filterHook != nil {
			s.filterHook("activated")
		}
		n, err := s.scanRows(ctx, f)
		if err != nil {
			// Canceled, or Pebble failed to read: lookups keep going to
			// Pebble (or to the filter serving now, which stays right).
			s.sendFilterMsg(ctx, filterMsg{retire: f})
			return
		}
		f.keys.Add(n)
		s.filter.Store(f)
		if serving != nil {
			s.sendFilterMsg(ctx, filterMsg{retire: serving})
		}
		serving = f
		if s.filterHook != nil {
			s.filterHook("published")
		}
		select {
		case <-ctx.Done():
			return
		case <-s.filterGrow:
		}
		if serving.capacity >= maxKeys {
			// Too many documents for the cap: back to Pebble for every
			// lookup rather than a filter that answers "maybe" to most.
			s.filter.Store(nil)
			s.sendFilterMsg(ctx, filterMsg{retire: serving})
			if s.filterHook != nil {
				s.filterHook("dropped")
			}
			return
		}
		capacity = min(2*serving.keys.Load(), maxKeys)
	}
}

func (s *Store) sendFilterMsg(ctx context.Context, m filterMsg) bool {
	select {
	case s.filterCh <- m:
	case <-ctx.Done():
		return false
	}
	if m.done != nil {
		select {
		case <-m.done:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// scanRows adds the key of every document row to f, through an iterator
// created now (after the committer started adding to f).
func (s *Store) scanRows(ctx context.Context, f *keyFilter) (int64, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{
		LowerBound: []byte{tableDoc},
		UpperBound: []byte{tableDoc + 1},
	})
	if err != nil {
		return 0, err
	}
	var n int64
	for valid := it.First(); valid; valid = it.Next() {
		f.addRow(it.Key())
		n++
		if n%4096 == 0 && ctx.Err() != nil {
			it.Close()
			return n, ctx.Err()
		}
	}
	return n, it.Close()
}
