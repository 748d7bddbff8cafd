package store

import (
	"fmt"
	"hash/maphash"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/cairnstore/cairn/internal/doc"
)

// Durable Put throughput, fsync on everywhere, small bodies, distinct keys.
//
//	store:  this package (one committer goroutine, one fsync per group)
//	store-nolinger: the same without the committer's linger (groups are
//	        handed to the syncer the moment it is idle)
//	pebble: the alternative design: each writer locks its key's stripe,
//	        reads the current version, derives the new one and commits its
//	        own batch with pebble.Sync, relying on Pebble's commit pipeline
//	        to share fsyncs. (It cannot keep Seq equal to commit order.)
//
// The bench module's BenchmarkPut measures bbolt beside this store.
//
// BenchmarkPut writes keys in no particular order, as documents named by
// ids (UUIDs, hashes, user names) arrive: key i is i times an odd constant,
// a bijection on uint64, printed in hex. BenchmarkPutAscending writes them
// in ascending order, the best case for a B+tree (every insert lands on its
// rightmost leaf, so a B+tree transaction rewrites a handful of pages
// however many writes it holds) and a case document keys rarely follow.
// Both are reported in docs/performance.md.
//
// go test -run '^$' -bench 'Put' -benchtime 3s -count 3 ./internal/store/
func BenchmarkPut(b *testing.B) {
	benchPut(b, func(i int) string { return fmt.Sprintf("key-%016x", uint64(i)*0x9e3779b97f4a7c15) })
}

func BenchmarkPutAscending(b *testing.B) {
	benchPut(b, func(i int) string { return fmt.Sprintf("key-%010d", i) })
}

func benchPut(b *testing.B, keyOf func(int) string) {
	body := []byte(`{"name":"` + strings.Repeat("x", 180) + `","n":1}`) // ~200 bytes
	for _, impl := range []string{"store", "store-nolinger", "pebble"} {
		for _, writers := range []int{1, 16, 64, 256} {
			b.Run(fmt.Sprintf("%s/writers=%d", impl, writers), func(b *testing.B) {
				put := map[string]func(testing.TB, int) func(key string){
					"store":          func(tb testing.TB, w int) func(string) { return benchStore(tb, Options{}) },
					"store-nolinger": func(tb testing.TB, w int) func(string) { return benchStore(tb, Options{noLinger: true}) },
					"pebble":         benchPebble,
				}[impl](b, writers)
				runWriters(b, writers, func(i int) { put(keyOf(i)) }, body)
			})
		}
	}
}

var benchBody []byte

// runWriters runs b.N writes split over writers goroutines and reports
// writes per second.
func runWriters(b *testing.B, writers int, write func(i int), body []byte) {
	benchBody = body
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range writers {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
				write(int(i))
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "writes/s")
}

func benchStore(tb testing.TB, opts Options) func(string) {
	var commits, writes, nanos atomic.Int64
	opts.OnCommit = func(n int, d time.Duration) {
		commits.Add(1)
		writes.Add(int64(n))
		nanos.Add(int64(d))
	}
	s, err := Open(tb.TempDir(), opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		s.Close()
		if b, ok := tb.(*testing.B); ok && commits.Load() > 0 {
			b.ReportMetric(float64(writes.Load())/float64(commits.Load()), "writes/commit")
			b.ReportMetric(float64(nanos.Load())/float64(commits.Load())/1e3, "µs/commit")
		}
	})
	return func(key string) {
		if _, err := s.Put(bg, "bench", key, benchBody, doc.Precondition{}); err != nil {
			tb.Error(err)
		}
	}
}

func benchPebble(tb testing.TB, _ int) func(string) {
	db, err := pebble.Open(filepath.Join(tb.TempDir(), "pebble"), pebbleOptions(nil, 0, 0))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	var stripes [256]sync.Mutex // per-key locks for the read-check-write
	seed := maphash.MakeSeed()
	var seq atomic.Uint64
	clock := doc.NewClock(nil)
	return func(key string) {
		k := docKey("bench", key)
		mu := &stripes[maphash.Bytes(seed, k)%uint64(len(stripes))]
		mu.Lock()
		defer mu.Unlock()
		var parent *doc.Version
		if val, closer, err := db.Get(k); err == nil {
			_, v, _, _ := decodeRecordValue(val)
			closer.Close()
			parent = &v
		}
		v := doc.Derive(parent, 1, clock.Now(), benchBody, false)
		n := seq.Add(1)
		batch := db.NewBatch()
		batch.Set(k, appendRecordValue(nil, n, &v, benchBody), nil)
		batch.Set(changeKey("bench", n), appendChangeValue(nil, key, &v), nil)
		batch.Set(metaSeq, encodeUint64(n), nil)
		if err := batch.Commit(pebble.Sync); err != nil {
			tb.Error(err)
		}
		batch.Close()
	}
}

// The committed-state lookup every write makes (readCurrent), by both of its
// ways, on a store of 200,000 documents compacted to L6, for keys that are
// absent (a PUT that creates) and present (an update). cpu-ns/op is the
// calling thread's CPU time, which a loaded machine inflates less than the
// wall time (ns/op).
//
// go test -run '^$' -bench Lookup -benchtime 200000x ./internal/store/
func BenchmarkLookup(b *testing.B) {
	s, err := Open(b.TempDir(), Options{Durability: Buffered})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const docs = 200_000
	body := []byte(`{"name":"` + strings.Repeat("x", 180) + `","n":1}`)
	key := func(i int) string { return fmt.Sprintf("bench/w%d/%d", i%64, i/64) } // as cairn bench --op put names them
	items := make([]Item, 0, 1000)
	for i := range docs {
		items = append(items, Item{Key: key(i), Body: body})
		if len(items) == cap(items) {
			if _, err := s.PutBatch(bg, "bench", items); err != nil {
				b.Fatal(err)
			}
			items = items[:0]
		}
	}
	if err := s.db.Compact(bg, []byte{0}, []byte{0xff}, true); err != nil {
		b.Fatal(err)
	}
	for _, way := range []struct {
		name  string
		score int64
	}{{"get", -missScoreMax}, {"filtered", missScoreMax}} {
		for _, present := range []bool{false, true} {
			name := way.name + "/absent"
			if present {
				name = way.name + "/present"
			}
			b.Run(name, func(b *testing.B) {
				keys := make([][]byte, b.N)
				for i := range keys {
					n := docs + i
					if present {
						n = (i * 7919) % docs
					}
					keys[i] = docKey("bench", key(n))
				}
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				cpu0 := threadCPU()
				b.ResetTimer()
				for i := range b.N {
					s.missScore.Store(way.score) // pin the way
					c, err := s.readCurrent(keys[i])
					if err != nil || c.exists != present {
						b.Fatalf("%s: %+v, %v", keys[i], c, err)
					}
				}
				b.StopTimer()
				b.ReportMetric(float64(threadCPU()-cpu0)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

// threadCPU is the calling OS thread's CPU time (user and system): Linux's
// RUSAGE_THREAD, which package syscall does not name.
func threadCPU() time.Duration {
	const rusageThread = 1
	var ru syscall.Rusage
	_ = syscall.Getrusage(rusageThread, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
