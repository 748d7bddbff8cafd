package ingest

import (
	"context"
	"runtime"
	"sync"
	"testing"
)

// The benchmarks share one input: 100,000 generated MarketData records,
// the input of the bench module's BenchmarkMarketData, which compares the
// decoder with other JSON decoders (docs/performance.md, ingest decoding).
//
//	go test -run '^$' -bench MarketDataProcess -benchmem ./internal/ingest/

const benchRecords = 100_000

var benchInput = sync.OnceValue(func() []byte { return genRecords(benchRecords, 7) })

// BenchmarkMarketDataProcess measures the whole pipeline (framing, parallel
// decode, ordered delivery) over the same input, in memory.
func BenchmarkMarketDataProcess(b *testing.B) {
	data := benchInput()
	for _, w := range []int{1, runtime.GOMAXPROCS(0)} {
		b.Run("workers="+string(rune('0'+w)), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			h := func(context.Context, *Batch) error { return nil }
			for b.Loop() {
				st, err := ProcessBytes(context.Background(), data, Options{Schema: MarketDataSchema, Workers: w}, h)
				if err != nil || st.Records != benchRecords {
					b.Fatal(err, st.Records)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchRecords), "ns/record")
		})
	}
}
