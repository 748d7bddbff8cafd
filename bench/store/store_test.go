// Package store_test compares the durable writes of cairn's store
// (internal/store) with bbolt's.
package store_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/store"
)

// Durable Put throughput, fsync on everywhere, small bodies, distinct keys.
//
//	store:  cairn's store (one committer goroutine, one fsync per group),
//	        as internal/store's BenchmarkPut measures it
//	bbolt:  DB.Batch with MaxBatchSize = writers, MaxBatchDelay default
//	        (10ms), the document and a change-log entry per write.
//
// BenchmarkPut writes keys in no particular order, as documents named by
// ids (UUIDs, hashes, user names) arrive: key i is i times an odd constant,
// a bijection on uint64, printed in hex. BenchmarkPutAscending writes them
// in ascending order, the best case for a B+tree (every insert lands on its
// rightmost leaf, so a bbolt transaction rewrites a handful of pages however
// many writes it holds) and a case document keys rarely follow.
//
// From the bench directory:
//
//	go test -run '^$' -bench 'Put' -benchtime 3s -count 3 ./store/
func BenchmarkPut(b *testing.B) {
	benchPut(b, func(i int) string { return fmt.Sprintf("key-%016x", uint64(i)*0x9e3779b97f4a7c15) })
}

func BenchmarkPutAscending(b *testing.B) {
	benchPut(b, func(i int) string { return fmt.Sprintf("key-%010d", i) })
}

func benchPut(b *testing.B, keyOf func(int) string) {
	body := []byte(`{"name":"` + strings.Repeat("x", 180) + `","n":1}`) // ~200 bytes
	for _, impl := range []string{"store", "bbolt"} {
		for _, writers := range []int{1, 16, 64, 256} {
			b.Run(fmt.Sprintf("%s/writers=%d", impl, writers), func(b *testing.B) {
				put := map[string]func(testing.TB, int) func(key string){
					"store": func(tb testing.TB, w int) func(string) { return benchStore(tb, store.Options{}) },
					"bbolt": benchBolt,
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

func benchStore(tb testing.TB, opts store.Options) func(string) {
	var commits, writes, nanos atomic.Int64
	opts.OnCommit = func(n int, d time.Duration) {
		commits.Add(1)
		writes.Add(int64(n))
		nanos.Add(int64(d))
	}
	s, err := store.Open(tb.TempDir(), opts)
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
		if _, err := s.Put(context.Background(), "bench", key, benchBody, doc.Precondition{}); err != nil {
			tb.Error(err)
		}
	}
}

func benchBolt(tb testing.TB, writers int) func(string) {
	db, err := bolt.Open(filepath.Join(tb.TempDir(), "bolt.db"), 0o600, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	db.MaxBatchSize = writers // its fair setting; MaxBatchDelay stays at the 10ms default
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range []string{"docs", "changes"} {
			if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	var seq atomic.Uint64
	return func(key string) {
		n := seq.Add(1)
		err := db.Batch(func(tx *bolt.Tx) error {
			if err := tx.Bucket([]byte("docs")).Put([]byte(key), benchBody); err != nil {
				return err
			}
			return tx.Bucket([]byte("changes")).Put(binary.BigEndian.AppendUint64(nil, n), []byte(key))
		})
		if err != nil {
			tb.Error(err)
		}
	}
}
