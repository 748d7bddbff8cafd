// Package cache_test compares cairn's document cache (internal/cache)
// with otter/v2, xsync/v4 Map and sync.Map.
package cache_test

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/maypok86/otter/v2"
	"github.com/puzpuzpuz/xsync/v4"

	"github.com/cairnstore/cairn/internal/cache"
)

// Benchmarks compare this cache with otter/v2, xsync/v4 Map and sync.Map on
// the same key set and the same access trace:
//
//   - 1<<20 keys over 64 tenants, all resident (no eviction in any cache);
//   - a Zipf(s=1.01) trace of 1<<20 key indexes, shared read-only; each
//     goroutine starts at its own random offset;
//   - BenchmarkGet: 100% reads; BenchmarkMixed: 90% Get / 10% Set, where a
//     Set allocates a fresh *Entry with a new Seq in every implementation.
//
// Peers are keyed by tenant+"/"+key precomputed; this cache by the Key
// struct precomputed, whose two strings are substrings of that very
// string, so every implementation hashes and compares the same bytes in
// the same memory. (Tenant and key used to be separate allocations here:
// one more cold cache line per Get for this cache than for its peers.)
// ns/op is per operation (Get or Set).

const (
	benchKeys  = 1 << 20
	benchTrace = 1 << 20
)

type benchFixture struct {
	keys    []cache.Key
	strKeys []string
	trace   []uint32
	body    []byte
	seq     atomic.Uint64

	cairn *cache.Cache
	otter *otter.Cache[string, *cache.Entry]
	xsync *xsync.Map[string, *cache.Entry]
	sm    sync.Map
}

var (
	fixtureOnce sync.Once
	fixture     *benchFixture
)

// benchData builds the fixture once per process: filling four maps with a
// million keys takes seconds and would otherwise be repeated by -count.
func benchData(b *testing.B) *benchFixture {
	fixtureOnce.Do(func() {
		f := &benchFixture{
			keys:    make([]cache.Key, benchKeys),
			strKeys: make([]string, benchKeys),
			trace:   make([]uint32, benchTrace),
			body:    make([]byte, 64),
		}
		for i := range f.keys {
			s := fmt.Sprintf("tenant-%02d/doc-%07d", i%64, i)
			f.strKeys[i] = s
			f.keys[i] = cache.Key{Tenant: s[:9], Key: s[10:]}
		}
		z := rand.NewZipf(rand.New(rand.NewPCG(1, 2)), 1.01, 1, benchKeys-1)
		perm := rand.New(rand.NewPCG(3, 4)).Perm(benchKeys) // hot keys spread over shards
		for i := range f.trace {
			f.trace[i] = uint32(perm[z.Uint64()])
		}
		f.cairn = cache.New(cache.Options{MaxBytes: 1 << 30, CompactInterval: -1})
		oc, err := otter.New(&otter.Options[string, *cache.Entry]{MaximumSize: 2 * benchKeys, InitialCapacity: benchKeys})
		if err != nil {
			panic(err)
		}
		f.otter = oc
		f.xsync = xsync.NewMap[string, *cache.Entry](xsync.WithPresize(benchKeys))
		for i := range f.keys {
			e := f.newEntry()
			f.cairn.Set(f.keys[i], e)
			f.otter.Set(f.strKeys[i], e)
			f.xsync.Store(f.strKeys[i], e)
			f.sm.Store(f.strKeys[i], e)
		}
		if st := f.cairn.Stats(); st.Entries != benchKeys {
			panic(fmt.Sprintf("cairn holds %d entries, want %d", st.Entries, benchKeys))
		}
		fixture = f
		// Collect the garbage of building the fixture now, so that no
		// benchmark pays for marking a multi-GB heap it did not allocate.
		runtime.GC()
	})
	b.ResetTimer()
	return fixture
}

func (f *benchFixture) newEntry() *cache.Entry {
	return &cache.Entry{Seq: f.seq.Add(1), ETag: "etag", Body: f.body}
}

// impl is one implementation under test: get and set by trace index.
type impl struct {
	name string
	get  func(f *benchFixture, i uint32) bool
	set  func(f *benchFixture, i uint32)
}

var impls = []impl{
	{"cairn",
		func(f *benchFixture, i uint32) bool { _, ok := f.cairn.Get(f.keys[i]); return ok },
		func(f *benchFixture, i uint32) { f.cairn.Set(f.keys[i], f.newEntry()) }},
	{"otter",
		func(f *benchFixture, i uint32) bool { _, ok := f.otter.GetIfPresent(f.strKeys[i]); return ok },
		func(f *benchFixture, i uint32) { f.otter.Set(f.strKeys[i], f.newEntry()) }},
	{"xsync",
		func(f *benchFixture, i uint32) bool { _, ok := f.xsync.Load(f.strKeys[i]); return ok },
		func(f *benchFixture, i uint32) { f.xsync.Store(f.strKeys[i], f.newEntry()) }},
	{"syncmap",
		func(f *benchFixture, i uint32) bool { _, ok := f.sm.Load(f.strKeys[i]); return ok },
		func(f *benchFixture, i uint32) { f.sm.Store(f.strKeys[i], f.newEntry()) }},
}

var offsets atomic.Uint64

func run(b *testing.B, im impl, writeEvery int) {
	f := benchData(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		pos := int(offsets.Add(0x9E3779B9)) & (benchTrace - 1)
		misses, n := 0, 0
		for pb.Next() {
			i := f.trace[pos]
			pos = (pos + 1) & (benchTrace - 1)
			n++
			if writeEvery > 0 && n%writeEvery == 0 {
				im.set(f, i)
				continue
			}
			if !im.get(f, i) {
				misses++
			}
		}
		if misses > 0 {
			panic(fmt.Sprintf("%s: %d misses on a fully resident key set", im.name, misses))
		}
	})
}

// BenchmarkGet: 100% reads, all hits.
func BenchmarkGet(b *testing.B) {
	for _, im := range impls {
		b.Run(im.name, func(b *testing.B) { run(b, im, 0) })
	}
}

// BenchmarkMixed: 90% reads, 10% writes.
func BenchmarkMixed(b *testing.B) {
	for _, im := range impls {
		b.Run(im.name, func(b *testing.B) { run(b, im, 10) })
	}
}
