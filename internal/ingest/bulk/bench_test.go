package bulk

import (
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/ingest"
	"github.com/cairnstore/cairn/internal/store"
)

// BenchmarkLoad loads 200,000 generated MarketData records (about 34 MB,
// the shape of scripts/gen-ndjson) into a fresh store with sync durability,
// through the pipeline and Loader as 'cairn import' does: the CPU and
// allocations per record of the bulk path, Pebble's flushes and
// compactions included.
//
//	go test -run '^$' -bench Load -benchmem -cpuprofile cpu.out ./internal/ingest/bulk/
func BenchmarkLoad(b *testing.B) {
	const n = 200_000
	data := marketData(n)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	cpu0 := processCPU()
	for b.Loop() {
		b.StopTimer()
		st, err := store.Open(b.TempDir(), store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		ctx := context.Background()
		l := &Loader{Ctx: ctx, W: st, Tenant: "demo", Market: true}
		opts := ingest.Options{Schema: ingest.MarketDataSchema, MaxRecordSize: 1 << 20, Ordered: true}
		stats, err := ingest.ProcessBytes(ctx, data, opts, l.Handle)
		if werr := l.Wait(); err == nil {
			err = werr
		}
		if err == nil {
			err = st.Close()
		}
		if err != nil || stats.Records != n {
			b.Fatal(err, stats.Records)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
	// The process's CPU time, Pebble's background flushes and compactions
	// included: steadier than the wall time on a shared machine.
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N*n), "cpu-ns/record")
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// marketData is n lines shaped as scripts/gen-ndjson writes them: every
// symbol unique, so each record creates a document, as in the bulk loads
// of docs/performance.md.
func marketData(n int) []byte {
	r := rand.New(rand.NewPCG(7, 7))
	feed := make([]byte, 36)
	var out []byte
	for i := 1; i <= n; i++ {
		for j := range feed {
			feed[j] = byte(r.Uint32())
		}
		out = fmt.Appendf(out, `{"symbol":"SYM%09d","price":%d.%02d,"volume":%d,"metadata":{"exchange":"NYSE","data_source":"direct-feed"},"raw_feed":"%s"}`+"\n",
			i, 10+r.IntN(990), r.IntN(100), r.IntN(1_000_000), base64.StdEncoding.EncodeToString(feed))
	}
	return out
}
